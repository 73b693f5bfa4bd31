//! A client's life cycle after registration: edit, disable and enable, rotate the secret,
//! delete. Each checks the caller (system administrators), refuses the built-in clients, runs
//! one store transaction with its audit entry, and evicts the client from this node's cache.

use super::super::*;
use super::{client_record, provision_error};
use crate::secret::{OpaqueToken, TokenKind};
use crate::store::clients::{Client, ClientEdit};

/// Longest lifetime a client may be given (`expires_in`): 400 days.
pub const MAX_CLIENT_LIFETIME: i64 = 400 * 86_400;
/// Longest overlap of a secret rotation: 30 days.
pub const MAX_SECRET_OVERLAP: i64 = 30 * 86_400;
/// The overlap when none is given: one hour.
pub const DEFAULT_SECRET_OVERLAP: i64 = 3_600;

/// A duration as `90d`, `12h`, `30m`, `45s` or plain seconds, between `min` and `max` seconds.
pub fn duration(field: &str, v: &str, min: i64, max: i64) -> R<i64> {
    let v = v.trim();
    let (digits, unit) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c),
        _ => (v, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => 0,
    };
    let secs = digits
        .parse::<i64>()
        .ok()
        .filter(|_| scale > 0 && !digits.starts_with('+'))
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| {
            AdminError::invalid(
                field,
                format!("`{v}` is not a duration: give a number with s, m, h or d (`1h`, `90d`)"),
            )
        })?;
    if !(min..=max).contains(&secs) {
        return Err(AdminError::invalid(
            field,
            format!("give between {min} and {max} seconds (`{v}` is {secs})"),
        ));
    }
    Ok(secs)
}

/// Drops a client from this node's cache, so that a change applies here at once.
pub(super) fn forget(state: &AppState, client: &ClientId) {
    if let Ok(mut map) = state.clients.map.write() {
        map.remove(client.as_str());
    }
}

/// Refuses to change a built-in client, naming it.
fn not_builtin(client: &ClientId, what: &str) -> R<()> {
    if Client::is_builtin(client.as_str()) {
        return Err(AdminError::Conflict(format!(
            "`{client}` is built in (the admin console or the account pages) and cannot be {what}"
        )));
    }
    Ok(())
}

/// What may be edited; fields left out stay as they are.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdateBody {
    pub name: Option<String>,
    /// Replaces the whole list.
    pub redirect_uris: Option<Vec<String>>,
    /// Replaces the whole list.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Replaces the labs it serves (ids or names, or `["*"]` for every lab). Its grants for a
    /// lab it no longer serves end at once.
    pub labs: Option<Vec<String>>,
    /// Replaces the features it declares.
    pub features: Option<Vec<String>>,
    /// A `private_key_jwt` client's new JWK Set (in place of its keys, or of its `jwks_uri`).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// A `private_key_jwt` client's new `jwks_uri` (in place of its registered keys, or of its
    /// `jwks_uri`).
    pub jwks_uri: Option<String>,
    /// Let a legacy confidential client leave PKCE out (`true`), or require it again.
    pub pkce_optional: Option<bool>,
    /// Refuse (`true`) or accept again its authorization requests that were not pushed to
    /// `/par` (RFC 9126).
    pub require_par: Option<bool>,
    /// Refuse (`true`) or accept again its token requests without a DPoP proof (RFC 9449).
    pub require_dpop: Option<bool>,
    /// Where it receives logout tokens (OpenID Connect Back-Channel Logout 1.0); `""` stops
    /// back-channel logout to it.
    pub backchannel_logout_uri: Option<String>,
    /// Its resource URI (RFC 8707): tokens other clients get for its service carry it as
    /// `aud`; `""` makes it no longer a resource server.
    pub resource_uri: Option<String>,
    /// Replaces the resources it may get tokens for (`[]`: none, only tokens for itself).
    pub resources: Option<Vec<String>>,
}

/// Edits a client's registration (`PATCH /clients/{client}`, `latchkey client update`): name,
/// redirect URIs, labs, features, keys, whether PKCE is optional, PAR or DPoP required, and
/// where its logout tokens go, and its resources (RFC 8707).
pub async fn update_client(
    state: &AppState,
    admin: &Admin,
    client: &ClientId,
    body: ClientUpdateBody,
) -> R<ClientView> {
    admin.require_system()?;
    not_builtin(client, "edited")?;
    let before = client_record(state, client).await?;
    if body.name.is_none()
        && body.redirect_uris.is_none()
        && body.post_logout_redirect_uris.is_none()
        && body.labs.is_none()
        && body.features.is_none()
        && body.jwks.is_none()
        && body.jwks_uri.is_none()
        && body.pkce_optional.is_none()
        && body.require_par.is_none()
        && body.require_dpop.is_none()
        && body.backchannel_logout_uri.is_none()
        && body.resource_uri.is_none()
        && body.resources.is_none()
    {
        return Err(AdminError::invalid(
            "body",
            "nothing to change: give name, redirect_uris, post_logout_redirect_uris, labs, \
             features, jwks, jwks_uri, pkce_optional, require_par, require_dpop, \
             backchannel_logout_uri, resource_uri or resources",
        ));
    }
    if body.pkce_optional == Some(true) && before.is_public() {
        return Err(AdminError::invalid(
            "pkce_optional",
            "a public client always uses PKCE; only a confidential client may make it optional",
        ));
    }
    let keys = crate::provision::check_client_keys(body.jwks.map(|j| j.to_string()), body.jwks_uri)
        .map_err(provision_error)?;
    if keys.is_some() && before.keys.is_none() {
        return Err(AdminError::Conflict(format!(
            "`{client}` authenticates with {}, not private_key_jwt: register a new client \
             with jwks or jwks_uri instead",
            if before.is_public() {
                "no secret (public)"
            } else {
                "its secret"
            }
        )));
    }
    let name = body.name.map(|n| n.trim().to_owned());
    if let Some(n) = &name {
        crate::provision::check_client_name(n).map_err(provision_error)?;
    }
    if let Some(uris) = &body.redirect_uris {
        crate::provision::check_client_uris(crate::provision::Field::RedirectUris, uris)
            .map_err(provision_error)?;
        if uris.is_empty() && before.allows_grant("authorization_code") {
            return Err(AdminError::invalid(
                "redirect_uris",
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
    }
    if let Some(uris) = &body.post_logout_redirect_uris {
        crate::provision::check_client_uris(crate::provision::Field::PostLogoutRedirectUris, uris)
            .map_err(provision_error)?;
    }
    // The logout URI stays on the origin of a redirect URI (Back-Channel Logout section 2.2),
    // whichever of the two changes.
    let redirects = body.redirect_uris.as_ref().unwrap_or(&before.redirect_uris);
    let backchannel_logout_uri = match body.backchannel_logout_uri.as_deref().map(str::trim) {
        Some("") => Some(None),
        Some(u) => Some(Some(
            crate::provision::check_backchannel_logout_uri(u, redirects)
                .map_err(provision_error)?,
        )),
        None => {
            if let (Some(u), Some(_)) = (&before.backchannel_logout_uri, &body.redirect_uris) {
                crate::provision::check_backchannel_logout_uri(u, redirects)
                    .map_err(provision_error)?;
            }
            None
        }
    };
    let resource_uri = match body.resource_uri.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(u) => Some(Some(
            crate::provision::check_resource_uri(
                &state.store,
                u,
                Some(&state.issuer),
                Some(client.as_str()),
            )
            .await
            .map_err(provision_error)?,
        )),
    };
    let resources = match &body.resources {
        Some(r) => Some(
            crate::provision::check_resources(&state.store, r)
                .await
                .map_err(provision_error)?,
        ),
        None => None,
    };
    let labs = match &body.labs {
        Some(l) => Some(
            crate::provision::resolve_client_labs(&state.store, l, before.signs_users_in())
                .await
                .map_err(provision_error)?,
        ),
        None => None,
    };
    let features = body
        .features
        .as_deref()
        .map(crate::provision::check_features)
        .transpose()
        .map_err(provision_error)?;
    let edit = ClientEdit {
        name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        labs,
        features,
        keys,
        pkce_optional: body.pkce_optional,
        require_par: body.require_par,
        require_dpop: body.require_dpop,
        backchannel_logout_uri,
        resource_uri,
        resources,
    };
    let keys_view = |k: Option<&crate::store::client_keys::ClientKeys>| {
        json!({
            "jwks": k.and_then(|k| k.jwks()).and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()),
            "jwks_uri": k.and_then(|k| k.jwks_uri()),
        })
    };
    let event = admin.event(
        Action::ClientUpdate,
        client.as_str(),
        json!({
            "before": {
                "name": before.name,
                "redirect_uris": before.redirect_uris,
                "post_logout_redirect_uris": before.post_logout_redirect_uris,
                "labs": before.labs,
                "features": before.features,
                "keys": keys_view(before.keys.as_ref()),
                "pkce_optional": before.pkce_optional,
                "require_par": before.require_par,
                "require_dpop": before.require_dpop,
                "backchannel_logout_uri": before.backchannel_logout_uri,
                "resource_uri": before.resource_uri,
                "resources": before.resources,
            },
            "after": {
                "name": edit.name.as_ref().unwrap_or(&before.name),
                "redirect_uris": edit.redirect_uris.as_ref().unwrap_or(&before.redirect_uris),
                "post_logout_redirect_uris": edit
                    .post_logout_redirect_uris
                    .as_ref()
                    .unwrap_or(&before.post_logout_redirect_uris),
                "labs": edit.labs.as_ref().unwrap_or(&before.labs),
                "features": edit.features.as_ref().unwrap_or(&before.features),
                "keys": keys_view(edit.keys.as_ref().or(before.keys.as_ref())),
                "pkce_optional": edit.pkce_optional.unwrap_or(before.pkce_optional),
                "require_par": edit.require_par.unwrap_or(before.require_par),
                "require_dpop": edit.require_dpop.unwrap_or(before.require_dpop),
                "backchannel_logout_uri": edit
                    .backchannel_logout_uri
                    .clone()
                    .unwrap_or(before.backchannel_logout_uri.clone()),
                "resource_uri": edit.resource_uri.clone().unwrap_or(before.resource_uri.clone()),
                "resources": edit.resources.as_ref().unwrap_or(&before.resources),
            },
        }),
    );
    if state
        .store
        .update_client(client, &edit, &[event])
        .await?
        .is_none()
    {
        return Err(AdminError::NotFound(format!("no client `{client}`")));
    }
    forget(state, client);
    super::get_client(state, admin, client).await
}

/// Disables a client (`disabled`) or enables it again: a disabled client cannot
/// authenticate, and its tokens are inactive at introspection and userinfo.
pub async fn set_client_disabled(
    state: &AppState,
    admin: &Admin,
    client: &ClientId,
    disabled: bool,
) -> R<ClientView> {
    admin.require_system()?;
    not_builtin(client, if disabled { "disabled" } else { "enabled" })?;
    let before = client_record(state, client).await?;
    let event = admin.event(
        if disabled {
            Action::ClientDisable
        } else {
            Action::ClientEnable
        },
        client.as_str(),
        json!({
            "before": {"disabled": before.lifecycle.disabled_at.is_some()},
            "after": {"disabled": disabled},
        }),
    );
    let at = disabled.then(|| before.lifecycle.disabled_at.unwrap_or_else(now));
    if !state
        .store
        .set_client_disabled(client, at, &[event])
        .await?
    {
        return Err(AdminError::NotFound(format!("no client `{client}`")));
    }
    forget(state, client);
    super::get_client(state, admin, client).await
}

/// How long the old secret keeps working.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretBody {
    /// `1h` (the default), `30m`, `7d`, … up to 30 days; `0` stops the old secret at once
    /// (a leaked secret).
    pub overlap: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotatedSecretView {
    pub client: ClientView,
    /// The new secret: shown only in this response.
    pub client_secret: String,
    /// Until when the old secret still works (Unix seconds); `null`: it stopped at once.
    pub old_secret_until: Option<i64>,
}

/// Gives a confidential client a new secret; the old one keeps working for the overlap.
pub async fn rotate_client_secret(
    state: &AppState,
    admin: &Admin,
    client: &ClientId,
    body: RotateSecretBody,
) -> R<RotatedSecretView> {
    admin.require_system()?;
    not_builtin(client, "given a secret")?;
    let overlap = match body.overlap.as_deref() {
        None => DEFAULT_SECRET_OVERLAP,
        Some(v) => duration("overlap", v, 0, MAX_SECRET_OVERLAP)?,
    };
    let before = client_record(state, client).await?;
    if before.is_public() {
        return Err(AdminError::Conflict(format!(
            "`{client}` is a public client: it has no secret to rotate"
        )));
    }
    if before.keys.is_some() {
        return Err(AdminError::Conflict(format!(
            "`{client}` authenticates with private_key_jwt and has no secret: replace its \
             keys (jwks or jwks_uri) instead"
        )));
    }
    let secret = OpaqueToken::generate(TokenKind::ClientSecret);
    let until = (overlap > 0).then(|| now() + overlap);
    let event = admin.event(
        Action::ClientSecretRotate,
        client.as_str(),
        json!({"overlap_secs": overlap, "old_secret_until": until}),
    );
    if !state
        .store
        .rotate_client_secret(client, secret.hash(), until, &[event])
        .await?
    {
        return Err(AdminError::NotFound(format!("no client `{client}`")));
    }
    forget(state, client);
    Ok(RotatedSecretView {
        client: super::get_client(state, admin, client).await?,
        client_secret: secret.expose().to_owned(),
        old_secret_until: until,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeletedClientView {
    #[schema(value_type = String)]
    pub client_id: ClientId,
    /// Grants (with their refresh tokens) that ended.
    pub grants: usize,
    /// Consents that ended.
    pub consents: usize,
}

/// Deletes a client: its grants, refresh tokens, codes and consents end at once, and its
/// access tokens are inactive at introspection and userinfo.
pub async fn delete_client(
    state: &AppState,
    admin: &Admin,
    client: &ClientId,
) -> R<DeletedClientView> {
    admin.require_system()?;
    not_builtin(client, "deleted")?;
    let before = client_record(state, client).await?;
    let event = admin.event(
        Action::ClientDelete,
        client.as_str(),
        json!({"before": ClientView::from(before)}),
    );
    let Some((grants, consents)) = state.store.delete_client(client, &[event]).await? else {
        return Err(AdminError::NotFound(format!("no client `{client}`")));
    };
    forget(state, client);
    Ok(DeletedClientView {
        client_id: client.clone(),
        grants,
        consents,
    })
}
