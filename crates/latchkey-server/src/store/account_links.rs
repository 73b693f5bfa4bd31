//! Single-use links mailed to a person (`account_links`, stored as SHA-256 of the token):
//! a password reset, the confirmation of the account's address, and the two confirmations of
//! an address change (one to the old address, one to the new, paired by `change_id`). Each
//! use is one transaction with its effect and its audit entry (which may carry a notice).

use super::schema::{account_links as al, users};
use super::{Store, StoreError, conflict};
use crate::audit::Event;
use crate::secret::TokenHash;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    ConfirmAddress,
    /// Sent to the new address of a change.
    ChangeNew,
    /// Sent to the old address of a change.
    ChangeOld,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "password_reset",
            Purpose::ConfirmAddress => "confirm_address",
            Purpose::ChangeNew => "change_new",
            Purpose::ChangeOld => "change_old",
        }
    }

    fn parse(s: &str) -> Option<Purpose> {
        [
            Purpose::PasswordReset,
            Purpose::ConfirmAddress,
            Purpose::ChangeNew,
            Purpose::ChangeOld,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// A link to record.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub token: TokenHash,
    pub user_id: String,
    pub purpose: Purpose,
    /// The address the link confirms (the new one, for both links of a change).
    pub email: String,
    pub change_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// At most `max` links of `purpose` created after `since`.
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    pub purpose: Purpose,
    pub since: i64,
    pub max: i64,
}

/// An open link: unused and unexpired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub user_id: String,
    pub purpose: Purpose,
    pub email: String,
    pub change_id: Option<String>,
    pub expires_at: i64,
}

/// What confirming one side of an address change came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ChangeStep {
    /// This side is confirmed; the other (`old` or `new`) is still awaited.
    Waiting,
    /// Both sides confirmed: the address is now `new` (it was `old`).
    Changed { old: String, new: String },
    /// Both confirmed, but another account has the new address by now: nothing changed.
    Taken,
}

type LinkRow = (String, String, String, Option<String>, i64);

fn link(r: LinkRow) -> Result<Link, StoreError> {
    Ok(Link {
        user_id: r.0,
        purpose: Purpose::parse(&r.1)
            .ok_or_else(|| StoreError::Corrupt(format!("account link purpose `{}`", r.1)))?,
        email: r.2,
        change_id: r.3,
        expires_at: r.4,
    })
}

/// Inside a write transaction: the open link `$hash` names, marked used (so no concurrent
/// use can have it too), or `None`.
macro_rules! take_link {
    ($conn:expr, $hash:expr, $now:expr) => {{
        let row: Option<LinkRow> = al::table
            .find($hash)
            .filter(al::used_at.is_null())
            .filter(al::expires_at.gt($now))
            .select((
                al::user_id,
                al::purpose,
                al::email,
                al::change_id,
                al::expires_at,
            ))
            .first(&mut *$conn)
            .await
            .optional()?;
        match row {
            Some(r) => {
                let n = diesel::update(al::table.find($hash).filter(al::used_at.is_null()))
                    .set(al::used_at.eq(Some($now)))
                    .execute(&mut *$conn)
                    .await?;
                if n == 1 { Some(link(r)?) } else { None }
            }
            None => None,
        }
    }};
}

impl Store {
    /// How many links of `purpose` were made for `user_id` since `since`.
    pub async fn links_since(
        &self,
        user_id: &str,
        purpose: Purpose,
        since: i64,
    ) -> Result<i64, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => al::table
                .filter(al::user_id.eq(&id))
                .filter(al::purpose.eq(purpose.as_str()))
                .filter(al::created_at.gt(since))
                .count()
                .get_result(conn)
                .await?))
        })
        .await
    }

    /// Records `links` (earlier open links of the same user and purposes stop working) and
    /// `events`, with the mail they carry, in one transaction. With a `cap`, nothing is
    /// recorded (false) when the user has that many links of its purpose since its time
    /// already: counted under the user's row lock, so racing requests cannot pass it.
    pub async fn create_links(
        &self,
        links: Vec<NewLink>,
        events: Vec<Event>,
        cap: Option<Cap>,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let Some(first) = <[NewLink]>::first(&links) else { return Ok(false) };
                let t = first.created_at;
                if let Some(cap) = &cap {
                    // The user's row first: concurrent requests for one account queue here.
                    diesel::update(users::table.find(&first.user_id))
                        .set(users::email.eq(users::email))
                        .execute(&mut *conn)
                        .await?;
                    let n: i64 = al::table
                        .filter(al::user_id.eq(&first.user_id))
                        .filter(al::purpose.eq(cap.purpose.as_str()))
                        .filter(al::created_at.gt(cap.since))
                        .count()
                        .get_result(&mut *conn)
                        .await?;
                    if n >= cap.max {
                        return Ok(false);
                    }
                }
                // A new change replaces a pending one (both of its links); a new reset or
                // confirmation replaces the earlier one of its kind.
                let purposes: Vec<&str> = links
                    .iter()
                    .flat_map(|l| match l.purpose {
                        Purpose::ChangeNew | Purpose::ChangeOld => {
                            vec![Purpose::ChangeNew.as_str(), Purpose::ChangeOld.as_str()]
                        }
                        p => vec![p.as_str()],
                    })
                    .collect();
                diesel::update(
                    al::table
                        .filter(al::user_id.eq(&first.user_id))
                        .filter(al::purpose.eq_any(&purposes))
                        .filter(al::used_at.is_null()),
                )
                .set(al::expires_at.eq(t))
                .execute(&mut *conn)
                .await?;
                for l in &links {
                    diesel::insert_into(al::table)
                        .values((
                            al::token_hash.eq(l.token.0.to_vec()),
                            al::user_id.eq(&l.user_id),
                            al::purpose.eq(l.purpose.as_str()),
                            al::email.eq(&l.email),
                            al::change_id.eq(&l.change_id),
                            al::created_at.eq(l.created_at),
                            al::expires_at.eq(l.expires_at),
                        ))
                        .execute(&mut *conn)
                        .await?;
                }
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(true)
            })
        })
        .await
    }

    /// The open link `token` names, without using it (the page that asks for a new
    /// password; a mail scanner's visit must not spend the link).
    pub async fn peek_link(&self, token: TokenHash, now: i64) -> Result<Option<Link>, StoreError> {
        let db = self.db.clone();
        let row: Option<LinkRow> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => al::table
                    .find(token.0.to_vec())
                    .filter(al::used_at.is_null())
                    .filter(al::expires_at.gt(now))
                    .select((al::user_id, al::purpose, al::email, al::change_id, al::expires_at))
                    .first(conn)
                    .await
                    .optional()?))
            })
            .await?;
        row.map(link).transpose()
    }

    /// Resets a password with a reset link, in one transaction: the link is spent (with every
    /// other open reset link of the account), the hash stored, every session and grant ended,
    /// and `event(user_id, sessions_ended)` appended. The count of wrong second-factor codes
    /// stays (a mailbox alone must not buy more guesses at the second factor). `None`:
    /// the link was used, replaced or expired, or the account is disabled.
    pub async fn reset_password(
        &self,
        token: TokenHash,
        hash: &str,
        now: i64,
        event: impl FnOnce(&str, usize) -> Event + Send + 'static,
    ) -> Result<Option<(String, usize)>, StoreError> {
        let db = self.db.clone();
        let hash = hash.to_owned();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let key = token.0.to_vec();
                let Some(l) = take_link!(conn, &key, now) else { return Ok(None) };
                if l.purpose != Purpose::PasswordReset {
                    return Ok(None);
                }
                let n = diesel::update(
                    users::table
                        .find(&l.user_id)
                        .filter(users::disabled.eq(false))
                        .filter(users::erased_at.is_null()),
                )
                .set(users::password_hash.eq(Some(&hash)))
                .execute(&mut *conn)
                .await?;
                if n != 1 {
                    return Err(StoreError::NotFound("account disabled".into()));
                }
                diesel::update(
                    al::table
                        .filter(al::user_id.eq(&l.user_id))
                        .filter(al::purpose.eq(Purpose::PasswordReset.as_str()))
                        .filter(al::used_at.is_null()),
                )
                .set(al::expires_at.eq(now))
                .execute(&mut *conn)
                .await?;
                let ended = crate::end_sessions_and_grants!(&mut *conn, &l.user_id, now);
                crate::store::audit::append(&mut *conn, now, &event(&l.user_id, ended)).await?;
                Ok(Some((l.user_id, ended)))
            })
        })
        .await
        .or_else(|e| match e {
            StoreError::NotFound(_) => Ok(None),
            e => Err(e),
        })
    }

    /// Confirms the account's address with a confirmation link, if the account still has
    /// the address the link was sent to. The confirmed address, or `None`.
    pub async fn confirm_address(
        &self,
        token: TokenHash,
        now: i64,
        event: impl FnOnce(&str, &str) -> Event + Send + 'static,
    ) -> Result<Option<String>, StoreError> {
        let db = self.db.clone();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let key = token.0.to_vec();
                let Some(l) = take_link!(conn, &key, now) else { return Ok(None) };
                if l.purpose != Purpose::ConfirmAddress {
                    return Ok(None);
                }
                let n = diesel::update(
                    users::table
                        .find(&l.user_id)
                        .filter(users::email.eq(&l.email))
                        .filter(users::disabled.eq(false))
                        .filter(users::erased_at.is_null()),
                )
                .set(users::email_verified_at.eq(Some(now)))
                .execute(&mut *conn)
                .await?;
                if n != 1 {
                    return Ok(None);
                }
                crate::store::audit::append(&mut *conn, now, &event(&l.user_id, &l.email)).await?;
                Ok(Some(l.email))
            })
        })
        .await
    }

    /// Confirms one side of an address change. Once both sides are confirmed the address
    /// changes (confirmed, since the new mailbox opened its link) and `changed(user, old,
    /// new)` is appended; `confirmed(user, side)` is appended for each side. `None`: the link
    /// was used, replaced or expired.
    pub async fn confirm_change(
        &self,
        token: TokenHash,
        now: i64,
        confirmed: impl FnOnce(&str, &str) -> Event + Send + 'static,
        changed: impl FnOnce(&str, &str, &str) -> Event + Send + 'static,
    ) -> Result<Option<ChangeStep>, StoreError> {
        let db = self.db.clone();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let key = token.0.to_vec();
                let Some(l) = take_link!(conn, &key, now) else { return Ok(None) };
                let other = match l.purpose {
                    Purpose::ChangeNew => Purpose::ChangeOld,
                    Purpose::ChangeOld => Purpose::ChangeNew,
                    _ => return Ok(None),
                };
                let side = if l.purpose == Purpose::ChangeOld { "old" } else { "new" };
                crate::store::audit::append(&mut *conn, now, &confirmed(&l.user_id, side)).await?;
                let other_used: Option<Option<i64>> = al::table
                    .filter(al::user_id.eq(&l.user_id))
                    .filter(al::change_id.eq(&l.change_id))
                    .filter(al::purpose.eq(other.as_str()))
                    .select(al::used_at)
                    .first(&mut *conn)
                    .await
                    .optional()?;
                if !matches!(other_used, Some(Some(_))) {
                    return Ok(Some(ChangeStep::Waiting));
                }
                let old: Option<String> = users::table
                    .find(&l.user_id)
                    .filter(users::erased_at.is_null())
                    .filter(users::disabled.eq(false))
                    .select(users::email)
                    .first(&mut *conn)
                    .await
                    .optional()?;
                let Some(old) = old else { return Ok(None) };
                let taken: i64 = users::table
                    .filter(users::email.eq(&l.email))
                    .filter(users::id.ne(&l.user_id))
                    .count()
                    .get_result(&mut *conn)
                    .await?;
                if taken > 0 {
                    return Ok(Some(ChangeStep::Taken));
                }
                diesel::update(users::table.find(&l.user_id))
                    .set((users::email.eq(&l.email), users::email_verified_at.eq(Some(now))))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| conflict(e, "this address has an account by now"))?;
                // Links sent to the old address for other purposes stop working.
                diesel::update(
                    al::table
                        .filter(al::user_id.eq(&l.user_id))
                        .filter(al::used_at.is_null()),
                )
                .set(al::expires_at.eq(now))
                .execute(&mut *conn)
                .await?;
                crate::store::audit::append(&mut *conn, now, &changed(&l.user_id, &old, &l.email))
                    .await?;
                Ok(Some(ChangeStep::Changed { old, new: l.email }))
            })
        })
        .await
    }
}

impl Store {
    /// Sets `user_id`'s address to `email` (an administrator's change): unconfirmed until a
    /// link mailed to it is opened, and every open mailed link of the account stops working;
    /// `events(old)` are appended in the same transaction. The old address, or `None` for no
    /// such (or an erased) account; a conflict when another account has `email`.
    pub async fn set_email(
        &self,
        user_id: &str,
        email: &str,
        events: impl FnOnce(&str) -> Vec<Event> + Send + 'static,
    ) -> Result<Option<String>, StoreError> {
        let db = self.db.clone();
        let (id, email) = (user_id.to_owned(), email.to_owned());
        let t = super::now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let old: Option<String> = users::table
                    .find(&id)
                    .filter(users::erased_at.is_null())
                    .select(users::email)
                    .first(&mut *conn)
                    .await
                    .optional()?;
                let Some(old) = old else { return Ok(None) };
                let taken: i64 = users::table
                    .filter(users::email.eq(&email))
                    .filter(users::id.ne(&id))
                    .count()
                    .get_result(&mut *conn)
                    .await?;
                if taken > 0 {
                    return Err(StoreError::Conflict("another account has this address".into()));
                }
                diesel::update(users::table.find(&id))
                    .set((users::email.eq(&email), users::email_verified_at.eq(None::<i64>)))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| conflict(e, "another account has this address"))?;
                diesel::update(al::table.filter(al::user_id.eq(&id)).filter(al::used_at.is_null()))
                    .set(al::expires_at.eq(t))
                    .execute(&mut *conn)
                    .await?;
                crate::store::audit::append_all(&mut *conn, t, &events(&old)).await?;
                Ok(Some(old))
            })
        })
        .await
    }
}
