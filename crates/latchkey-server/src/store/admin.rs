//! What administration reads and writes beyond grants and policy: who administers what,
//! lab members, roles as a whole, sessions and factors ended by an administrator, and queries
//! of the audit log.

use super::schema::{
    audit_events, labs, memberships, recovery_codes, role_features, roles, totp_credentials,
    user_roles, users, webauthn_credentials,
};
use super::{Store, StoreError, conflict, now};
use crate::audit::Event;
use diesel::{
    BoolExpressionMethods, EscapeExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl,
    TextExpressionMethods,
};
use diesel_async::RunQueryDsl;
use latchkey_core::Acr;
use latchkey_core::names::{LabId, UserId};
use serde::Serialize;
use std::collections::BTreeMap;

/// Who [`Store::add_member`] adds: an existing account (by user id) or a new one.
#[derive(Debug, Clone)]
pub enum Joiner {
    Existing(UserId),
    New {
        email: String,
        name: Option<String>,
        /// None: the person signs in only once a password is set.
        password_hash: Option<String>,
    },
}

/// Sets a member's roles in a lab to exactly `$wanted`, inside the caller's transaction;
/// not-found naming the first role the lab does not define.
macro_rules! set_roles {
    ($conn:expr, $user:expr, $lab:expr, $wanted:expr, $now:expr) => {{
        let (conn, user, lab, wanted) = ($conn, $user, $lab, $wanted);
        for r in wanted {
            let n: i64 = roles::table
                .filter(roles::lab_id.eq(lab))
                .filter(roles::name.eq(r))
                .count()
                .get_result(&mut *conn)
                .await?;
            if n == 0 {
                return Err(StoreError::NoSuchRole(r.clone()));
            }
        }
        diesel::delete(
            user_roles::table
                .filter(user_roles::user_id.eq(user))
                .filter(user_roles::lab_id.eq(lab)),
        )
        .execute(&mut *conn)
        .await?;
        for r in wanted {
            diesel::insert_into(user_roles::table)
                .values((
                    user_roles::user_id.eq(user),
                    user_roles::lab_id.eq(lab),
                    user_roles::role.eq(r),
                    user_roles::created_at.eq($now),
                ))
                .execute(&mut *conn)
                .await?;
        }
    }};
}

/// What a user may administer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminRights {
    pub disabled: bool,
    pub system: bool,
    /// Labs the user administers.
    pub labs: Vec<LabId>,
}

/// One member of a lab, as administrators see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub disabled: bool,
    pub admin: bool,
    pub joined_at: i64,
}

/// A user row without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    #[schema(value_type = String)]
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub disabled: bool,
    pub system_admin: bool,
    pub has_password: bool,
    pub created_at: i64,
}

/// A role of a lab: its features and its MFA minimum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    pub name: String,
    pub min_acr: Option<Acr>,
    pub features: Vec<String>,
}

/// Filters of an audit query; every one optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action_prefix: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only the candidates for this lab's view (a lab id): entries whose details name the lab,
    /// entries about the lab itself, and entries about one of its current members that are the
    /// member's own security events (actor = target) or account actions (`user.*`). The exact
    /// rule is applied by `admin::ops::lab_audit_log`; this narrows the read in SQL.
    pub lab: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: Option<i64>,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

type UserRow = (String, String, Option<String>, bool, bool, bool, i64);

fn user_info(r: UserRow) -> UserInfo {
    UserInfo {
        id: UserId::new(r.0),
        email: r.1,
        name: r.2,
        disabled: r.3,
        system_admin: r.4,
        has_password: r.5,
        created_at: r.6,
    }
}

fn parse_acr(a: Option<String>) -> Result<Option<Acr>, StoreError> {
    a.map(|a| a.parse())
        .transpose()
        .map_err(|e: latchkey_core::acr::UnknownAcr| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// What `user_id` administers; `None` when no such user.
    pub async fn admin_rights(&self, user_id: &UserId) -> Result<Option<AdminRights>, StoreError> {
        let db = self.db.clone();
        let id = user_id.as_str().to_owned();
        self.run(async move {
            crate::with_conn!(&db, conn => {
                let Some((disabled, system)) = users::table
                    .find(&id)
                    .select((users::disabled, users::system_admin))
                    .first::<(bool, bool)>(conn)
                    .await
                    .optional()?
                else {
                    return Ok(None);
                };
                let labs = memberships::table
                    .filter(memberships::user_id.eq(&id))
                    .filter(memberships::admin.eq(true))
                    .order(memberships::lab_id.asc())
                    .select(memberships::lab_id)
                    .load::<String>(conn)
                    .await?;
                let labs = labs.into_iter().map(LabId::from).collect();
                Ok(Some(AdminRights { disabled, system, labs }))
            })
        })
        .await
    }

    /// Whether any account, enabled or not, is a system administrator (the landing page and
    /// `latchkey admin bootstrap` ask).
    pub async fn has_system_admin(&self) -> Result<bool, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            crate::with_conn!(&db, conn => {
                let n: i64 = users::table
                    .filter(users::system_admin.eq(true))
                    .count()
                    .get_result(conn)
                    .await?;
                Ok(n > 0)
            })
        })
        .await
    }

    /// Creates an account that belongs to no lab and is a system administrator, and records
    /// the audit entries `events` gives for its id: one transaction (`latchkey admin
    /// bootstrap`). A conflict when the email has an account. With `first_only`, `None` (and
    /// nothing written) when a system administrator exists: the check and the insert run
    /// under one lock (PostgreSQL advisory lock; SQLite's `BEGIN IMMEDIATE`), so of two
    /// bootstraps at once only one makes an administrator.
    pub async fn create_system_admin(
        &self,
        email: &str,
        name: Option<&str>,
        password_hash: &str,
        first_only: bool,
        events: impl FnOnce(&UserId) -> Vec<Event> + Send + 'static,
    ) -> Result<Option<UserId>, StoreError> {
        let db = self.db.clone();
        let email = super::users::normalize_email(email);
        let (name, hash) = (name.map(str::to_owned), password_hash.to_owned());
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                if first_only {
                    diesel::sql_query(super::bootstrap_lock_sql(&*conn))
                        .execute(&mut *conn)
                        .await?;
                    let admins: i64 = users::table
                        .filter(users::system_admin.eq(true))
                        .count()
                        .get_result(&mut *conn)
                        .await?;
                    if admins > 0 {
                        return Ok(None);
                    }
                }
                let uid = uuid::Uuid::now_v7().to_string();
                diesel::insert_into(users::table)
                    .values((
                        users::id.eq(&uid),
                        users::email.eq(&email),
                        users::name.eq(&name),
                        users::password_hash.eq(Some(&hash)),
                        users::disabled.eq(false),
                        users::system_admin.eq(true),
                        users::created_at.eq(t),
                    ))
                    .execute(conn)
                    .await
                    .map_err(|e| conflict(e, "a user with this email already exists"))?;
                let uid = UserId::new(uid);
                crate::store::audit::append_all(&mut *conn, t, &events(&uid)).await?;
                Ok(Some(uid))
            })
        })
        .await
    }

    /// Makes a user a system administrator or not, recording `events` with the change; false
    /// when no such user (then nothing is recorded).
    pub async fn set_system_admin(
        &self,
        user_id: &UserId,
        on: bool,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = user_id.as_str().to_owned();
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(users::table.find(&id))
                    .set(users::system_admin.eq(on))
                    .execute(conn)
                    .await?;
                if n == 1 {
                    crate::store::audit::append_all(&mut *conn, t, &events).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// Makes a member a lab administrator or not; not-found when they are not a member.
    pub async fn set_lab_admin(
        &self,
        user_id: &UserId,
        lab: &LabId,
        on: bool,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (id, lab) = (user_id.as_str().to_owned(), lab.as_str().to_owned());
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    memberships::table
                        .filter(memberships::user_id.eq(&id))
                        .filter(memberships::lab_id.eq(&lab)),
                )
                .set(memberships::admin.eq(on))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Err(StoreError::NotFound("the user is not a member of this lab".into()));
                }
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn list_labs(&self) -> Result<Vec<super::labs::Lab>, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => labs::table
                .order(labs::name.asc())
                .select((labs::id, labs::name, labs::created_at))
                .load::<(String, String, i64)>(conn)
                .await?)
            .into_iter()
            .map(|(id, name, created_at)| super::labs::Lab {
                id,
                name,
                created_at,
            })
            .collect())
        })
        .await
    }

    pub async fn get_lab(&self, id: &LabId) -> Result<Option<super::labs::Lab>, StoreError> {
        Ok(self
            .find_lab(id.as_str())
            .await?
            .filter(|l| *id == *l.id.as_str()))
    }

    /// A lab's members, by email.
    pub async fn lab_members(&self, lab: &LabId) -> Result<Vec<Member>, StoreError> {
        let db = self.db.clone();
        let lab = lab.as_str().to_owned();
        let rows: Vec<(String, String, Option<String>, bool, bool, i64)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => memberships::table
                    .inner_join(users::table)
                    .filter(memberships::lab_id.eq(&lab))
                    .order(users::email.asc())
                    .select((
                        users::id,
                        users::email,
                        users::name,
                        users::disabled,
                        memberships::admin,
                        memberships::created_at,
                    ))
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Member {
                user_id: UserId::new(r.0),
                email: r.1,
                name: r.2,
                disabled: r.3,
                admin: r.4,
                joined_at: r.5,
            })
            .collect())
    }

    /// Every user (system administrators' view), by email.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<UserRow> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => users::table
                    .order(users::email.asc())
                    .select((
                        users::id,
                        users::email,
                        users::name,
                        users::disabled,
                        users::system_admin,
                        users::password_hash.is_not_null(),
                        users::created_at,
                    ))
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(rows.into_iter().map(user_info).collect())
    }

    pub async fn user_info(&self, id: &UserId) -> Result<Option<UserInfo>, StoreError> {
        let db = self.db.clone();
        let id = id.as_str().to_owned();
        let row: Option<UserRow> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => users::table
                    .find(&id)
                    .select((
                        users::id,
                        users::email,
                        users::name,
                        users::disabled,
                        users::system_admin,
                        users::password_hash.is_not_null(),
                        users::created_at,
                    ))
                    .first(conn)
                    .await
                    .optional()?))
            })
            .await?;
        Ok(row.map(user_info))
    }

    /// Adds a member to `lab` with exactly `roles`, creating the account when `who` is new, and
    /// records the audit entries `events` gives for the member's user id: one transaction, so
    /// a refusal (no such lab or role, the email taken, already a member) leaves nothing
    /// behind. Returns the member's user id.
    pub async fn add_member(
        &self,
        lab: &LabId,
        who: Joiner,
        roles: &[String],
        events: impl FnOnce(&UserId) -> Vec<Event> + Send + 'static,
    ) -> Result<UserId, StoreError> {
        let db = self.db.clone();
        let (lab, roles) = (lab.as_str().to_owned(), roles.to_vec());
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::require_lab!(conn, &lab);
                let uid = match who {
                    Joiner::Existing(uid) => {
                        let uid = uid.into_string();
                        let n: i64 = memberships::table
                            .filter(memberships::user_id.eq(&uid))
                            .filter(memberships::lab_id.eq(&lab))
                            .count()
                            .get_result(conn)
                            .await?;
                        if n > 0 {
                            return Err(StoreError::Conflict(
                                "this person is already a member of the lab".into(),
                            ));
                        }
                        uid
                    }
                    Joiner::New { email, name, password_hash } => {
                        let uid = uuid::Uuid::now_v7().to_string();
                        diesel::insert_into(users::table)
                            .values((
                                users::id.eq(&uid),
                                users::email.eq(super::users::normalize_email(&email)),
                                users::name.eq(&name),
                                users::password_hash.eq(&password_hash),
                                users::disabled.eq(false),
                                users::created_at.eq(t),
                            ))
                            .execute(conn)
                            .await
                            .map_err(|e| conflict(e, "a user with this email already exists"))?;
                        uid
                    }
                };
                diesel::insert_into(memberships::table)
                    .values((
                        memberships::user_id.eq(&uid),
                        memberships::lab_id.eq(&lab),
                        memberships::created_at.eq(t),
                    ))
                    .execute(conn)
                    .await?;
                set_roles!(&mut *conn, &uid, &lab, &roles, t);
                let uid = UserId::new(uid);
                crate::store::audit::append_all(&mut *conn, t, &events(&uid)).await?;
                Ok(uid)
            })
        })
        .await
    }

    /// A lab's roles with their features, by name.
    pub async fn lab_roles(&self, lab: &LabId) -> Result<Vec<Role>, StoreError> {
        let db = self.db.clone();
        let lab = lab.as_str().to_owned();
        type Fetched = (Vec<(String, Option<String>)>, Vec<(String, String)>);
        let (rows, feats): Fetched = self
            .run(async move {
                crate::with_conn!(&db, conn => {
                    let rows = roles::table
                        .filter(roles::lab_id.eq(&lab))
                        .order(roles::name.asc())
                        .select((roles::name, roles::min_acr))
                        .load(conn)
                        .await?;
                    let feats = role_features::table
                        .filter(role_features::lab_id.eq(&lab))
                        .order((role_features::role.asc(), role_features::feature.asc()))
                        .select((role_features::role, role_features::feature))
                        .load(conn)
                        .await?;
                    Ok::<_, StoreError>((rows, feats))
                })
            })
            .await?;
        let mut by_role: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (r, f) in feats {
            by_role.entry(r).or_default().push(f);
        }
        rows.into_iter()
            .map(|(name, min)| {
                Ok(Role {
                    features: by_role.remove(&name).unwrap_or_default(),
                    min_acr: parse_acr(min)?,
                    name,
                })
            })
            .collect()
    }

    /// Creates or replaces a role: exactly `features`, and `min_acr`.
    pub async fn put_role(
        &self,
        lab: &LabId,
        name: &str,
        features: &[String],
        min_acr: Option<Acr>,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (lab, name, features) = (lab.as_str().to_owned(), name.to_owned(), features.to_vec());
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::require_lab!(conn, &lab);
                crate::ensure_role!(conn, &lab, &name, t);
                diesel::update(roles::table.filter(roles::lab_id.eq(&lab)).filter(roles::name.eq(&name)))
                    .set(roles::min_acr.eq(min_acr.map(|a| a.as_str())))
                    .execute(conn)
                    .await?;
                diesel::delete(
                    role_features::table
                        .filter(role_features::lab_id.eq(&lab))
                        .filter(role_features::role.eq(&name)),
                )
                .execute(conn)
                .await?;
                for f in &features {
                    diesel::insert_into(role_features::table)
                        .values((
                            role_features::lab_id.eq(&lab),
                            role_features::role.eq(&name),
                            role_features::feature.eq(f),
                            role_features::created_at.eq(t),
                        ))
                        .execute(conn)
                        .await?;
                }
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(())
            })
        })
        .await
    }

    /// Deletes a role: its features go and its holders lose it. False when no such role.
    pub async fn delete_role(
        &self,
        lab: &LabId,
        name: &str,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (lab, name) = (lab.as_str().to_owned(), name.to_owned());
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::delete(
                    user_roles::table
                        .filter(user_roles::lab_id.eq(&lab))
                        .filter(user_roles::role.eq(&name)),
                )
                .execute(conn)
                .await?;
                diesel::delete(
                    role_features::table
                        .filter(role_features::lab_id.eq(&lab))
                        .filter(role_features::role.eq(&name)),
                )
                .execute(conn)
                .await?;
                let n = diesel::delete(roles::table.filter(roles::lab_id.eq(&lab)).filter(roles::name.eq(&name)))
                    .execute(conn)
                    .await?;
                if n == 1 {
                    crate::store::audit::append_all(&mut *conn, t, &events).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }

    /// Sets a member's roles in a lab to exactly `roles` (each must exist).
    pub async fn set_member_roles(
        &self,
        user_id: &UserId,
        lab: &LabId,
        wanted: &[String],
        events: &[Event],
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (user, lab, wanted) = (
            user_id.as_str().to_owned(),
            lab.as_str().to_owned(),
            wanted.to_vec(),
        );
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::require_member!(conn, &user, &lab);
                set_roles!(&mut *conn, &user, &lab, &wanted, t);
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(())
            })
        })
        .await
    }

    /// Ends every live session of a user and revokes every grant (refresh-token family);
    /// returns how many sessions ended. `events` gets that number and gives the audit entries.
    pub async fn end_user_sessions(
        &self,
        user_id: &UserId,
        events: impl FnOnce(usize) -> Vec<Event> + Send + 'static,
    ) -> Result<usize, StoreError> {
        let db = self.db.clone();
        let id = user_id.as_str().to_owned();
        let t = now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let n = crate::end_sessions_and_grants!(conn, &id, t);
                crate::store::audit::append_all(&mut *conn, t, &events(n)).await?;
                Ok(n)
            })
        })
        .await
    }

    /// Removes every second factor of a user (TOTP, passkeys and security keys, recovery
    /// codes) and ends their sessions, so that they enrol again at their next sign-in.
    /// Returns how many factors went.
    pub async fn reset_factors(
        &self,
        user_id: &UserId,
        events: &[Event],
    ) -> Result<usize, StoreError> {
        let db = self.db.clone();
        let id = user_id.as_str().to_owned();
        let events = events.to_vec();
        let t = now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let a = diesel::delete(totp_credentials::table.filter(totp_credentials::user_id.eq(&id)))
                    .execute(conn)
                    .await?;
                let b = diesel::delete(webauthn_credentials::table.filter(webauthn_credentials::user_id.eq(&id)))
                    .execute(conn)
                    .await?;
                diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(&id)))
                    .execute(conn)
                    .await?;
                crate::end_sessions_and_grants!(conn, &id, t);
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(a + b)
            })
        })
        .await
    }

    /// Audit entries matching `q`, newest first.
    pub async fn query_audit(&self, q: AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<(Option<i64>, i64, String, String, String, String)> = self
            .run(async move {
                crate::with_conn!(&db, conn => {
                    let mut query = audit_events::table.into_boxed();
                    if let Some(p) = &q.action_prefix {
                        query = query.filter(audit_events::action.like(format!("{}%", escape_like(p))).escape('\\'));
                    }
                    if let Some(a) = &q.actor {
                        query = query.filter(audit_events::actor.eq(a.clone()));
                    }
                    if let Some(t) = &q.target {
                        query = query.filter(audit_events::target.eq(t.clone()));
                    }
                    if let Some(s) = q.since {
                        query = query.filter(audit_events::at.ge(s));
                    }
                    if let Some(u) = q.until {
                        query = query.filter(audit_events::at.lt(u));
                    }
                    if let Some(lab) = &q.lab {
                        // `"lab":"<id>"` as serde_json writes it (compact), anywhere in details.
                        let named = format!(
                            "%{}%",
                            escape_like(&format!("\"lab\":{}", serde_json::Value::from(lab.as_str())))
                        );
                        let members = memberships::table
                            .filter(memberships::lab_id.eq(lab.clone()))
                            .select(memberships::user_id);
                        query = query.filter(
                            audit_events::details
                                .like(named)
                                .escape('\\')
                                .or(audit_events::target.eq(lab.clone()))
                                .or(audit_events::target.eq_any(members).and(
                                    audit_events::actor
                                        .eq(audit_events::target)
                                        .or(audit_events::action.like("user.%")),
                                )),
                        );
                    }
                    Ok::<_, StoreError>(query
                        .order((audit_events::seq.desc(), audit_events::at.desc()))
                        .limit(q.limit.clamp(1, 1000))
                        .select((
                            audit_events::seq,
                            audit_events::at,
                            audit_events::actor,
                            audit_events::action,
                            audit_events::target,
                            audit_events::details,
                        ))
                        .load(conn)
                        .await?)
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditRecord {
                seq: r.0,
                at: r.1,
                actor: r.2,
                action: r.3,
                target: r.4,
                details: serde_json::from_str(&r.5).unwrap_or(serde_json::Value::String(r.5)),
            })
            .collect())
    }
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
