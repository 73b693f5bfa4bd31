//! Users and their lab memberships. Email addresses are stored lower-cased and are unique.

use super::labs::Lab;
use super::schema::{grants, labs, memberships, sessions, users};
use super::{Store, StoreError, conflict, now};
use crate::audit::Event;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use latchkey_core::names::{LabId, UserId};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    /// When a link mailed to `email` was last opened (`None`: the address is not confirmed).
    pub email_verified_at: Option<i64>,
    /// When the person asked for the account to be deleted (`None`: they did not).
    pub deletion_requested_at: Option<i64>,
}

/// What `latchkey user create` prints: never the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub lab: String,
}

pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
    pub lab_id: String,
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Store {
    pub async fn create_user(&self, new: NewUser) -> Result<UserSummary, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let email = normalize_email(&new.email);
        let summary = UserSummary {
            id: id.clone(),
            email: email.clone(),
            name: new.name.clone(),
            lab: new.lab_id.clone(),
        };
        let db = self.db.clone();
        self.run(async move {
            let t = now();
            crate::with_tx!(&db, conn => {
                diesel::insert_into(users::table)
                    .values((
                        users::id.eq(&id),
                        users::email.eq(&email),
                        users::name.eq(&new.name),
                        users::password_hash.eq(Some(&new.password_hash)),
                        users::disabled.eq(false),
                        users::created_at.eq(t),
                    ))
                    .execute(conn)
                    .await
                    .map_err(|e| conflict(e, "a user with this email already exists"))?;
                diesel::insert_into(memberships::table)
                    .values((
                        memberships::user_id.eq(&id),
                        memberships::lab_id.eq(&new.lab_id),
                        memberships::created_at.eq(t),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await?;
        Ok(summary)
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = normalize_email(email);
        crate::quick_read!(self, conn => Ok(users::table
            .filter(users::email.eq(&email))
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?))
    }

    pub async fn get_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_owned();
        crate::quick_read!(self, conn => Ok(users::table
            .find(&id)
            .select(User::as_select())
            .first(conn)
            .await
            .optional()?))
    }

    pub async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (id, hash) = (user_id.to_owned(), hash.to_owned());
        self.run_quick(async move {
            crate::with_tx!(&db, conn => {
                diesel::update(users::table.find(&id))
                    .set(users::password_hash.eq(Some(&hash)))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Replaces password hash `old` (the one the current password was checked against;
    /// `None`: the account had none) with `hash`, and appends `event` (made of the number of
    /// sessions ended and grants revoked), in one transaction. Unless `keep_others`, every
    /// other session of the user ends and every grant not issued from session `current` is
    /// revoked (refresh tokens included, `offline_access` or not). `None`, and nothing
    /// written, when the stored hash is no longer `old` or session `current` has ended (a
    /// change or sign-out committed meanwhile).
    pub async fn change_password(
        &self,
        user_id: &str,
        old: Option<&str>,
        hash: &str,
        current: &str,
        keep_others: bool,
        event: impl FnOnce(usize, usize) -> Event + Send + 'static,
    ) -> Result<Option<(usize, usize)>, StoreError> {
        let db = self.db.clone();
        let (id, hash, current) = (user_id.to_owned(), hash.to_owned(), current.to_owned());
        let old = old.map(str::to_owned);
        let t = now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                // The user's row first (a no-op write takes its lock on PostgreSQL; SQLite's
                // write transaction is already exclusive), so racing changes from any of the
                // user's sessions queue in one order and cannot deadlock.
                diesel::update(users::table.find(&id))
                    .set(users::password_hash.eq(users::password_hash))
                    .execute(&mut *conn)
                    .await?;
                let live = diesel::update(
                    sessions::table
                        .filter(sessions::id.eq(&current))
                        .filter(sessions::user_id.eq(&id))
                        .filter(sessions::ended_at.is_null()),
                )
                .set(sessions::last_seen_at.eq(t))
                .execute(&mut *conn)
                .await?;
                if live != 1 {
                    return Ok(None);
                }
                let swapped = match &old {
                    Some(o) => {
                        diesel::update(users::table.find(&id).filter(users::password_hash.eq(o)))
                            .set(users::password_hash.eq(Some(&hash)))
                            .execute(&mut *conn)
                            .await?
                    }
                    None => {
                        diesel::update(users::table.find(&id).filter(users::password_hash.is_null()))
                            .set(users::password_hash.eq(Some(&hash)))
                            .execute(&mut *conn)
                            .await?
                    }
                };
                if swapped != 1 {
                    return Ok(None);
                }
                // A reset link mailed before the change must not undo it.
                diesel::update(
                    super::schema::account_links::table
                        .filter(super::schema::account_links::user_id.eq(&id))
                        .filter(super::schema::account_links::purpose.eq("password_reset"))
                        .filter(super::schema::account_links::used_at.is_null()),
                )
                .set(super::schema::account_links::expires_at.eq(t))
                .execute(&mut *conn)
                .await?;
                let (mut ended, mut revoked) = (0, 0);
                if !keep_others {
                    let others: Vec<String> = sessions::table
                        .filter(sessions::user_id.eq(&id))
                        .filter(sessions::id.ne(&current))
                        .filter(sessions::ended_at.is_null())
                        .select(sessions::id)
                        .load(&mut *conn)
                        .await?;
                    // Their relying parties are told (back-channel logout).
                    ended = crate::end_listed_sessions!(&mut *conn, &others, t);
                    revoked = diesel::update(
                        grants::table
                            .filter(grants::user_id.eq(&id))
                            .filter(grants::session_id.ne(&current))
                            .filter(grants::revoked_at.is_null()),
                    )
                    .set(grants::revoked_at.eq(Some(t)))
                    .execute(&mut *conn)
                    .await?;
                }
                crate::store::audit::append(&mut *conn, t, &event(ended, revoked)).await?;
                Ok(Some((ended, revoked)))
            })
        })
        .await
    }

    /// Disables or re-enables a user. Disabling ends every session and revokes every grant of
    /// the user at once (their refresh tokens die; their access tokens are refused by
    /// Latchkey's endpoints and expire within their short lifetime elsewhere).
    pub async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let events = events.to_vec();
        let t = now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(users::table.find(&id))
                    .set(users::disabled.eq(disabled))
                    .execute(conn)
                    .await?;
                if n == 1 && disabled {
                    crate::end_sessions_and_grants!(conn, &id, t);
                }
                if n == 1 {
                    crate::store::audit::append_all(&mut *conn, t, &events).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// Adds a user to a lab (nothing happens when they already are a member). False when the
    /// user or the lab does not exist.
    pub async fn add_membership(
        &self,
        user_id: &str,
        lab: &str,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (user, lab) = (user_id.to_owned(), lab.to_owned());
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let users_n: i64 = users::table
                    .filter(users::id.eq(&user))
                    .count()
                    .get_result(conn)
                    .await?;
                let labs_n: i64 = labs::table
                    .filter(labs::id.eq(&lab))
                    .count()
                    .get_result(conn)
                    .await?;
                if users_n == 0 || labs_n == 0 {
                    return Ok(false);
                }
                diesel::insert_into(memberships::table)
                    .values((
                        memberships::user_id.eq(&user),
                        memberships::lab_id.eq(&lab),
                        memberships::created_at.eq(t),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Removes a user from a lab: their roles and feature overrides there go, every grant
    /// (refresh-token family) issued for that lab is revoked, and every browser session of the
    /// user ends, all at once. Sessions are not per lab, so the user signs in again for their
    /// other labs too (their grants for those labs live on). False when they were not a
    /// member (then nothing changes).
    pub async fn remove_membership(
        &self,
        user_id: &UserId,
        lab: &LabId,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        use super::schema::{member_features, user_roles};
        let db = self.db.clone();
        let (user, lab) = (user_id.as_str().to_owned(), lab.as_str().to_owned());
        let events = events.to_vec();
        let t = now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                diesel::delete(
                    user_roles::table
                        .filter(user_roles::user_id.eq(&user))
                        .filter(user_roles::lab_id.eq(&lab)),
                )
                .execute(conn)
                .await?;
                diesel::delete(
                    member_features::table
                        .filter(member_features::user_id.eq(&user))
                        .filter(member_features::lab_id.eq(&lab)),
                )
                .execute(conn)
                .await?;
                let n = diesel::delete(
                    memberships::table
                        .filter(memberships::user_id.eq(&user))
                        .filter(memberships::lab_id.eq(&lab)),
                )
                .execute(conn)
                .await?;
                diesel::update(
                    grants::table
                        .filter(grants::user_id.eq(&user))
                        .filter(grants::lab_id.eq(&lab))
                        .filter(grants::revoked_at.is_null()),
                )
                .set(grants::revoked_at.eq(Some(t)))
                .execute(conn)
                .await?;
                if n == 1 {
                    let live: Vec<String> = sessions::table
                        .filter(sessions::user_id.eq(&user))
                        .filter(sessions::ended_at.is_null())
                        .select(sessions::id)
                        .load(&mut *conn)
                        .await?;
                    // Their relying parties are told (back-channel logout).
                    crate::end_listed_sessions!(&mut *conn, &live, t);
                    crate::store::audit::append_all(&mut *conn, t, &events).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// The labs a user belongs to (id and name), oldest membership first.
    pub async fn member_labs(&self, user_id: &str) -> Result<Vec<Lab>, StoreError> {
        let id = user_id.to_owned();
        crate::quick_read!(self, conn => Ok(memberships::table
            .inner_join(labs::table)
            .filter(memberships::user_id.eq(&id))
            .order((memberships::created_at.asc(), memberships::lab_id.asc()))
            .select(Lab::as_select())
            .load::<Lab>(conn)
            .await?))
    }

    /// The labs a user belongs to, oldest membership first.
    pub async fn user_labs(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => memberships::table
                .filter(memberships::user_id.eq(&id))
                .order((memberships::created_at.asc(), memberships::lab_id.asc()))
                .select(memberships::lab_id)
                .load::<String>(conn)
                .await?))
        })
        .await
    }
}

impl Store {
    /// Records (`Some(now)`) or withdraws (`None`) the person's request to delete their
    /// account, with its audit entry (and notice). Whether anything changed.
    pub async fn set_deletion_request(
        &self,
        user_id: &str,
        at: Option<i64>,
        event: Event,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = user_id.to_owned();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let q = users::table.find(&id).filter(users::erased_at.is_null());
                let n = match at {
                    Some(_) => diesel::update(q.filter(users::deletion_requested_at.is_null()))
                        .set(users::deletion_requested_at.eq(at))
                        .execute(&mut *conn)
                        .await?,
                    None => diesel::update(q.filter(users::deletion_requested_at.is_not_null()))
                        .set(users::deletion_requested_at.eq(None::<i64>))
                        .execute(&mut *conn)
                        .await?,
                };
                if n == 1 {
                    crate::store::audit::append(&mut *conn, t, &event).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// The accounts whose deletion was requested before `before` and not yet done (never a
    /// system administrator's: one made so after asking is left for another to erase).
    pub async fn deletions_due(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => users::table
                .filter(users::deletion_requested_at.lt(before))
                .filter(users::system_admin.eq(false))
                .filter(users::erased_at.is_null())
                .select(users::id)
                .load(conn)
                .await?))
        })
        .await
    }
}
