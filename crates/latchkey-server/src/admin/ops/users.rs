//! Accounts as a whole: read, disable and enable, reset factors, send a password-reset link,
//! end sessions, system administration, export and erase.

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String)]
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub disabled: bool,
    pub system_admin: bool,
    pub has_password: bool,
    pub created_at: i64,
    #[schema(value_type = Vec<String>)]
    pub labs: Vec<LabId>,
    pub factors: Factors,
}

async fn user_labs(state: &AppState, user: &UserId) -> R<(UserInfo, Vec<LabId>)> {
    let info = state
        .store
        .user_info(user)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such user".into()))?;
    // `user_labs` is sign-in's too, by `&str`: converted here.
    let labs = state
        .store
        .user_labs(user.as_str())
        .await?
        .into_iter()
        .map(LabId::from)
        .collect();
    Ok((info, labs))
}

/// Loads a user and checks the caller may act on them as a whole. Lab administrators get
/// "not found" rather than "forbidden" for users outside their labs only when the user does
/// not exist at all; otherwise forbidden.
async fn authorised_user(
    state: &AppState,
    admin: &Admin,
    user: &UserId,
) -> R<(UserInfo, Vec<LabId>)> {
    admin.require_any()?;
    let (info, labs) = user_labs(state, user).await?;
    admin.require_user(&labs)?;
    if info.system_admin && !admin.system {
        return Err(AdminError::Forbidden(
            "only system administrators may act on a system administrator".into(),
        ));
    }
    Ok((info, labs))
}

pub async fn list_users(state: &AppState, admin: &Admin) -> R<Vec<UserInfo>> {
    admin.require_system()?;
    Ok(state.store.list_users().await?)
}

pub async fn get_user(state: &AppState, admin: &Admin, user: &UserId) -> R<UserView> {
    let (info, labs) = authorised_user(state, admin, user).await?;
    let factors = Factors::of(
        state.enrolled(user.as_str()).await?,
        Rules::of(&state.config),
    );
    Ok(UserView {
        id: info.id,
        email: info.email,
        name: info.name,
        disabled: info.disabled,
        system_admin: info.system_admin,
        has_password: info.has_password,
        created_at: info.created_at,
        labs,
        factors,
    })
}

pub async fn set_disabled(
    state: &AppState,
    admin: &Admin,
    user: &UserId,
    disabled: bool,
) -> R<UserView> {
    let (info, _) = authorised_user(state, admin, user).await?;
    if matches!(&admin.actor, crate::admin::Actor::User(me) if me == user) && disabled {
        return Err(AdminError::Conflict(
            "you cannot disable your own account".into(),
        ));
    }
    let event = admin.event(
        if disabled {
            Action::UserDisable
        } else {
            Action::UserEnable
        },
        user.as_str(),
        json!({"before": {"disabled": info.disabled}, "after": {"disabled": disabled}}),
    );
    state
        .store
        .set_user_disabled(user.as_str(), disabled, &[event])
        .await?;
    get_user(state, admin, user).await
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Count {
    pub count: usize,
}

pub async fn reset_factors(state: &AppState, admin: &Admin, user: &UserId) -> R<Count> {
    let (info, _) = authorised_user(state, admin, user).await?;
    let before = Factors::of(
        state.enrolled(user.as_str()).await?,
        Rules::of(&state.config),
    );
    let notice = crate::mail::compose(
        state,
        &info.email,
        Some(user.as_str()),
        &crate::mail::Content::FactorRemoved {
            what:
                "Every second factor (authenticator app, passkeys, security keys, recovery codes)"
                    .into(),
            from: "by an administrator".into(),
        },
    );
    let event = admin
        .event(
            Action::UserResetFactors,
            user.as_str(),
            json!({"before": before, "after": Factors { best_acr: "pwd".into(), ..Factors::default() }}),
        )
        .with_mail(notice);
    let n = state.store.reset_factors(user, &[event]).await?;
    Ok(Count { count: n })
}

/// Clears the user's sign-in attempts: the password budgets of their account (from every
/// source and browser) and their count of wrong second-factor codes, including a block
/// reached at `authentication.max_code_failures`. The shared per-source and global budgets
/// are not the account's and stay.
pub async fn reset_attempts(state: &AppState, admin: &Admin, user: &UserId) -> R<Count> {
    let (info, _) = authorised_user(state, admin, user).await?;
    let account = state.throttle_account(&info.email);
    let key = crate::protocol::throttle::account_key(&account);
    let prefix = format!("{key}:");
    let (actor, target) = (admin.actor_id().to_owned(), user.as_str().to_owned());
    let (forget_key, forget_prefix) = (key.clone(), prefix.clone());
    let n = state
        .store
        .reset_attempts(user.as_str(), vec![key], vec![prefix], move |n| {
            vec![Event::new(
                actor,
                Action::UserResetAttempts,
                target,
                json!({"cleared": n}),
            )]
        })
        .await?;
    // After the commit (an attempt in between would remember the old counters): this node
    // forgets them at once, the others within `SPENT_TTL` seconds.
    state.spent.forget(&[forget_key], &[forget_prefix]);
    Ok(Count { count: n })
}

/// Mails the user a password-reset link (rather than setting a password they would have to
/// be told): the link works once, for `mail.reset_link_minutes`; using it ends every session.
/// Refused for a disabled account, and past `mail.resets_per_hour` links in an hour.
pub async fn send_password_reset(state: &AppState, admin: &Admin, user: &UserId) -> R<ResetSent> {
    let (info, _) = authorised_user(state, admin, user).await?;
    if info.disabled {
        return Err(AdminError::Conflict(
            "this account is disabled: enable it first".into(),
        ));
    }
    let account = state
        .store
        .get_user(user.as_str())
        .await?
        .ok_or_else(|| AdminError::NotFound("no such user".into()))?;
    let sent = crate::mail::links::reset_link(state, &account, json!({}), Some(admin.actor_id()))
        .await
        .map_err(|e| match e {
            crate::mail::links::LinkError::Store(e) => AdminError::from(e),
            e => AdminError::Internal(e.to_string()),
        })?;
    if sent == crate::mail::links::Sent::Not {
        return Err(AdminError::Conflict(format!(
            "{} reset links were sent to this account in the last hour already: wait, or ask them to use the newest one",
            state.config.mail.resets_per_hour + crate::mail::links::ADMIN_HEADROOM
        )));
    }
    Ok(ResetSent {
        email: account.email,
        expires_in_minutes: state.config.mail.reset_link_minutes,
    })
}

/// Changes a user's address (for someone who lost the old mailbox): the new address is
/// unconfirmed until they open the link mailed to it; the old address is told. Every open
/// mailed link of the account stops working. System administrators only: a lab
/// administrator who could point a member's address at their own mailbox could then reset
/// the member's password and own the account.
pub async fn set_email(state: &AppState, admin: &Admin, user: &UserId, new: &str) -> R<EmailSet> {
    admin.require_system()?;
    let (info, _) = authorised_user(state, admin, user).await?;
    let email = checked_email(new)?;
    if email == info.email {
        return Err(AdminError::invalid(
            "email",
            "that is the account's address already",
        ));
    }
    let notice = crate::mail::compose(
        state,
        &info.email,
        Some(user.as_str()),
        &crate::mail::Content::AddressChanged { new: email.clone() },
    );
    let (actor, target, after) = (
        admin.actor_id().to_owned(),
        user.as_str().to_owned(),
        email.clone(),
    );
    let old = state
        .store
        .set_email(user.as_str(), &email, move |old| {
            vec![
                Event::new(
                    actor.clone(),
                    Action::EmailChanged,
                    target,
                    json!({"before": old, "after": after, "by": actor}),
                )
                .with_mail(notice),
            ]
        })
        .await
        .map_err(|e| match AdminError::from(e) {
            AdminError::Conflict(m) => AdminError::invalid("email", m),
            e => e,
        })?
        .ok_or_else(|| AdminError::NotFound("no such user".into()))?;
    if let Some(account) = state.store.get_user(user.as_str()).await? {
        crate::mail::links::confirmation_link(state, &account, json!({"by": admin.actor_id()}))
            .await
            .map_err(|e| match e {
                crate::mail::links::LinkError::Store(e) => AdminError::from(e),
                e => AdminError::Internal(e.to_string()),
            })?;
    }
    Ok(EmailSet {
        email,
        previous: old,
        email_verified: false,
    })
}

/// An address changed by an administrator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmailSet {
    pub email: String,
    pub previous: String,
    /// Always false: a confirmation link is on its way to the new address.
    pub email_verified: bool,
}

/// The body of `PUT /api/v1/users/{user}/email`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEmail {
    pub email: String,
}

/// A password-reset link on its way.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetSent {
    /// The address it was sent to.
    pub email: String,
    pub expires_in_minutes: i64,
}

pub async fn end_sessions(state: &AppState, admin: &Admin, user: &UserId) -> R<Count> {
    authorised_user(state, admin, user).await?;
    let (actor, target) = (admin.actor_id().to_owned(), user.as_str().to_owned());
    let n = state
        .store
        .end_user_sessions(user, move |n| {
            vec![Event::new(
                actor,
                Action::UserEndSessions,
                target,
                json!({"sessions": n}),
            )]
        })
        .await?;
    Ok(Count { count: n })
}

pub async fn set_system_admin(
    state: &AppState,
    admin: &Admin,
    user: &UserId,
    on: bool,
) -> R<UserView> {
    admin.require_system()?;
    let (info, _) = user_labs(state, user).await?;
    if matches!(&admin.actor, crate::admin::Actor::User(me) if me == user) && !on {
        return Err(AdminError::Conflict(
            "you cannot remove your own system administration".into(),
        ));
    }
    let event = admin.event(
        Action::UserSystemAdmin,
        user.as_str(),
        json!({"before": info.system_admin, "after": on}),
    );
    state.store.set_system_admin(user, on, &[event]).await?;
    get_user(state, admin, user).await
}

/// Everything Latchkey holds about a person (GDPR articles 15 and 20), plus what they
/// administer.
pub async fn export_user(state: &AppState, admin: &Admin, user: &UserId) -> R<serde_json::Value> {
    let (info, _) = authorised_user(state, admin, user).await?;
    let mut v = state
        .store
        .export_user(user)
        .await?
        .ok_or_else(|| AdminError::NotFound("no such user".into()))?;
    let rights = state.store.admin_rights(user).await?.unwrap_or_default();
    v["administration"] = json!({"system": info.system_admin, "labs": rights.labs});
    // A read records no change of its own: a standalone entry.
    state
        .store
        .audit(admin.event(Action::UserExported, user.as_str(), json!({})))
        .await?;
    Ok(v)
}

/// Erases a person's personal data (GDPR article 17); the audit log stays verifiable and
/// names them only by their id from now on.
pub async fn erase_user(state: &AppState, admin: &Admin, user: &UserId) -> R<()> {
    authorised_user(state, admin, user).await?;
    if matches!(&admin.actor, crate::admin::Actor::User(me) if me == user) {
        return Err(AdminError::Conflict(
            "you cannot erase your own account here".into(),
        ));
    }
    if !state.store.erase_user(user, admin.actor_id()).await? {
        return Err(AdminError::NotFound("no such user".into()));
    }
    Ok(())
}
