//! Changes to a registered client: edits, disabling, secret rotation and deletion, each with
//! its audit events in one transaction.

use super::{ClientLabs, to_json_text};
use crate::audit::Event;
use crate::secret::TokenHash;
use crate::store::client_keys::ClientKeys;
use crate::store::schema::{client_labs, clients};
use crate::store::{Store, StoreError};
use diesel::{BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::names::ClientId;

/// The `clients` columns an edit sets; `None` leaves a column as it is.
#[derive(Debug, Default, PartialEq, diesel::AsChangeset)]
#[diesel(table_name = clients)]
struct ClientColumns<'a> {
    name: Option<&'a str>,
    redirect_uris: Option<String>,
    post_logout_redirect_uris: Option<String>,
    features: Option<String>,
    all_labs: Option<bool>,
    /// `Some(None)` clears the column (the client's keys moved to the other one).
    jwks: Option<Option<&'a str>>,
    jwks_uri: Option<Option<&'a str>>,
    pkce_optional: Option<bool>,
    require_par: Option<bool>,
    require_dpop: Option<bool>,
    /// `Some(None)` clears it.
    backchannel_logout_uri: Option<Option<&'a str>>,
    /// `Some(None)` clears it.
    resource_uri: Option<Option<&'a str>>,
    resources: Option<String>,
}

/// The parts of a registration an administrator may edit; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientEdit {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// The labs it serves. Its grants for a lab it no longer serves end with the change.
    pub labs: Option<ClientLabs>,
    pub features: Option<Vec<String>>,
    /// A `private_key_jwt` client's new keys (only such a client's: the caller checks).
    pub keys: Option<ClientKeys>,
    pub pkce_optional: Option<bool>,
    pub require_par: Option<bool>,
    pub require_dpop: Option<bool>,
    /// `Some(None)` stops back-channel logout to the client.
    pub backchannel_logout_uri: Option<Option<String>>,
    /// `Some(None)`: the client is no longer a resource server (RFC 8707).
    pub resource_uri: Option<Option<String>>,
    /// The resources it may get tokens for.
    pub resources: Option<Vec<String>>,
}

impl Store {
    /// Edits a client's name, redirect URIs, labs, features and keys, with `events`, in one
    /// transaction. Returns how many grants ended (those for labs it no longer serves), or
    /// `None` when there is no such client; the events' details gain `grants_ended`.
    pub async fn update_client(
        &self,
        id: &ClientId,
        edit: &ClientEdit,
        events: &[Event],
    ) -> Result<Option<usize>, StoreError> {
        use crate::store::schema::{grants, refresh_tokens};
        let db = self.db.clone();
        let id = id.as_str().to_owned();
        let edit = edit.clone();
        let mut events = events.to_vec();
        let t = crate::store::now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let exists = clients::table
                    .find(&id)
                    .select(clients::id)
                    .first::<String>(&mut *conn)
                    .await
                    .optional()?
                    .is_some();
                if !exists {
                    return Ok(None);
                }
                let columns = ClientColumns {
                    name: edit.name.as_deref(),
                    redirect_uris: edit.redirect_uris.as_deref().map(to_json_text),
                    post_logout_redirect_uris: edit
                        .post_logout_redirect_uris
                        .as_deref()
                        .map(to_json_text),
                    features: edit.features.as_deref().map(to_json_text),
                    all_labs: edit.labs.as_ref().map(|l| *l == ClientLabs::All),
                    jwks: edit.keys.as_ref().map(ClientKeys::jwks),
                    jwks_uri: edit.keys.as_ref().map(ClientKeys::jwks_uri),
                    pkce_optional: edit.pkce_optional,
                    require_par: edit.require_par,
                    require_dpop: edit.require_dpop,
                    backchannel_logout_uri: edit
                        .backchannel_logout_uri
                        .as_ref()
                        .map(Option::as_deref),
                    resource_uri: edit.resource_uri.as_ref().map(Option::as_deref),
                    resources: edit.resources.as_deref().map(to_json_text),
                };
                if columns != ClientColumns::default() {
                    diesel::update(clients::table.find(&id))
                        .set(&columns)
                        .execute(&mut *conn)
                        .await?;
                }
                let mut ended = 0;
                if let Some(labs) = &edit.labs {
                    diesel::delete(client_labs::table.filter(client_labs::client_id.eq(&id)))
                        .execute(&mut *conn)
                        .await?;
                    if let ClientLabs::Only(set) = labs {
                        let listed: Vec<String> = set.iter().map(|l| l.as_str().to_owned()).collect();
                        for lab in &listed {
                            diesel::insert_into(client_labs::table)
                                .values((
                                    client_labs::client_id.eq(&id),
                                    client_labs::lab_id.eq(lab),
                                ))
                                .execute(&mut *conn)
                                .await?;
                        }
                        // Its grants for labs it no longer serves (or for no lab) end now.
                        let gone: Vec<String> = grants::table
                            .filter(grants::client_id.eq(&id))
                            .filter(grants::lab_id.is_null().or(grants::lab_id.ne_all(&listed)))
                            .select(grants::id)
                            .load(&mut *conn)
                            .await?;
                        diesel::delete(refresh_tokens::table.filter(refresh_tokens::grant_id.eq_any(&gone)))
                            .execute(&mut *conn)
                            .await?;
                        ended = diesel::delete(grants::table.filter(grants::id.eq_any(&gone)))
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                if edit.labs.is_some() {
                    for e in &mut events {
                        if let Some(d) = e.details.as_object_mut() {
                            d.insert("grants_ended".into(), ended.into());
                        }
                    }
                }
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(Some(ended))
            })
        })
        .await
    }

    /// Disables (`Some(time)`) or enables (`None`) a client, with `events`; false when there
    /// is no such client.
    pub async fn set_client_disabled(
        &self,
        id: &ClientId,
        disabled_at: Option<i64>,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.as_str().to_owned();
        let events = events.to_vec();
        let t = crate::store::now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(clients::table.find(&id))
                    .set(clients::disabled_at.eq(disabled_at))
                    .execute(&mut *conn)
                    .await?;
                if n == 1 {
                    crate::store::audit::append_all(&mut *conn, t, &events).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// Replaces a client's secret: the current hash becomes the previous one, accepted until
    /// `previous_until` (`None`: the old secret stops at once). A secret an earlier rotation
    /// replaced stops now. With `events`; false when there is no such client.
    pub async fn rotate_client_secret(
        &self,
        id: &ClientId,
        new_hash: TokenHash,
        previous_until: Option<i64>,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.as_str().to_owned();
        let events = events.to_vec();
        let t = crate::store::now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let current = clients::table
                    .find(&id)
                    .select(clients::secret_hash)
                    .first::<Option<Vec<u8>>>(&mut *conn)
                    .await
                    .optional()?;
                let Some(current) = current else {
                    return Ok(false);
                };
                let previous = previous_until.and(current);
                diesel::update(clients::table.find(&id))
                    .set((
                        clients::secret_hash.eq(Some(new_hash.to_vec())),
                        clients::previous_secret_expires_at
                            .eq(previous.as_ref().and(previous_until)),
                        clients::previous_secret_hash.eq(previous),
                    ))
                    .execute(&mut *conn)
                    .await?;
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Deletes a client with its grants (and their refresh tokens), authorization codes and
    /// consents, and records `events` (their details gain `grants` and `consents`: how many
    /// ended), in one transaction. Returns those counts, or `None` when there is no such
    /// client.
    pub async fn delete_client(
        &self,
        id: &ClientId,
        events: &[Event],
    ) -> Result<Option<(usize, usize)>, StoreError> {
        use crate::store::schema::{authorization_codes, consents, grants, refresh_tokens};
        let db = self.db.clone();
        let id = id.as_str().to_owned();
        let events = events.to_vec();
        let t = crate::store::now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let grant_ids: Vec<String> = grants::table
                    .filter(grants::client_id.eq(&id))
                    .select(grants::id)
                    .load(&mut *conn)
                    .await?;
                diesel::delete(
                    refresh_tokens::table.filter(refresh_tokens::grant_id.eq_any(&grant_ids)),
                )
                .execute(&mut *conn)
                .await?;
                let g = diesel::delete(grants::table.filter(grants::client_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                diesel::delete(
                    authorization_codes::table.filter(authorization_codes::client_id.eq(&id)),
                )
                .execute(&mut *conn)
                .await?;
                let c = diesel::delete(consents::table.filter(consents::client_id.eq(&id)))
                    .execute(&mut *conn)
                    .await?;
                let n = diesel::delete(clients::table.find(&id))
                    .execute(&mut *conn)
                    .await?;
                if n == 0 {
                    return Ok(None);
                }
                let mut events = events;
                for e in &mut events {
                    if let Some(d) = e.details.as_object_mut() {
                        d.insert("grants".into(), g.into());
                        d.insert("consents".into(), c.into());
                    }
                }
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(Some((g, c)))
            })
        })
        .await
    }
}
