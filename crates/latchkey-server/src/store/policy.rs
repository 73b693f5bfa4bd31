//! MFA policy: a lab's minimum acr and enrolment grace, roles' minimum acr and who holds them,
//! and each member's grace clock. (Clients' minimums live on the client row.)

use super::schema::{lab_policies, mfa_grace, roles, user_roles};
use super::{Store, StoreError, now};
use crate::audit::Event;
use diesel::{BoolExpressionMethods, ExpressionMethods, JoinOnDsl, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::Acr;
use latchkey_core::names::{LabId, UserId};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabPolicy {
    pub lab: String,
    pub min_acr: Acr,
    pub grace_days: Option<i64>,
    pub grace_logins: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolePolicy {
    pub lab: String,
    pub role: String,
    pub min_acr: Option<Acr>,
}

/// Everything policy says about one member of one lab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberPolicy {
    pub lab: Option<LabPolicy>,
    /// The strictest minimum among the member's roles.
    pub role_min: Option<Acr>,
    /// When the enrolment grace started: the lab policy was set or the member joined,
    /// whichever is later (`None` without a lab policy).
    pub grace_started_at: Option<i64>,
    /// Sign-ins on which the member deferred enrolment.
    pub grace_logins: i64,
}

/// Inside a write transaction: a not-found error unless `$lab` exists.
#[macro_export]
macro_rules! require_lab {
    ($conn:expr, $lab:expr) => {{
        use $crate::store::schema::labs;
        let n: i64 = labs::table
            .filter(labs::id.eq($lab))
            .count()
            .get_result($conn)
            .await?;
        if n == 0 {
            return Err($crate::store::StoreError::NotFound(format!(
                "no lab `{}`",
                $lab
            )));
        }
    }};
}

/// Inside a write transaction: a not-found error unless `$user` is a member of `$lab`.
#[macro_export]
macro_rules! require_member {
    ($conn:expr, $user:expr, $lab:expr) => {{
        use $crate::store::schema::memberships;
        let n: i64 = memberships::table
            .filter(memberships::user_id.eq($user))
            .filter(memberships::lab_id.eq($lab))
            .count()
            .get_result($conn)
            .await?;
        if n == 0 {
            return Err($crate::store::StoreError::NotFound(format!(
                "the user is not a member of lab `{}`",
                $lab
            )));
        }
    }};
}

/// Inside a write transaction: creates role `$role` of `$lab` (no minimum) unless it exists.
#[macro_export]
macro_rules! ensure_role {
    ($conn:expr, $lab:expr, $role:expr, $now:expr) => {{
        use $crate::store::schema::roles;
        diesel::insert_into(roles::table)
            .values((
                roles::lab_id.eq($lab),
                roles::name.eq($role),
                roles::created_at.eq($now),
            ))
            .on_conflict_do_nothing()
            .execute($conn)
            .await?;
    }};
}

fn parse_acr(s: &str) -> Result<Acr, StoreError> {
    s.parse()
        .map_err(|e: latchkey_core::acr::UnknownAcr| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Sets a lab's policy; `None` removes it.
    pub async fn set_lab_policy(
        &self,
        lab: &LabId,
        min_acr: Option<Acr>,
        grace_days: Option<i64>,
        grace_logins: Option<i64>,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let lab = lab.as_str().to_owned();
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::require_lab!(conn, &lab);
                diesel::delete(lab_policies::table.find(&lab)).execute(conn).await?;
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                let Some(min_acr) = min_acr else {
                    return Ok(());
                };
                diesel::insert_into(lab_policies::table)
                    .values((
                        lab_policies::lab_id.eq(&lab),
                        lab_policies::min_acr.eq(min_acr.as_str()),
                        lab_policies::grace_days.eq(grace_days),
                        lab_policies::grace_logins.eq(grace_logins),
                        lab_policies::updated_at.eq(t),
                    ))
                    .execute(conn)
                    .await?;
                // A new policy starts every member's grace afresh.
                diesel::delete(mfa_grace::table.filter(mfa_grace::lab_id.eq(&lab)))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn lab_policy(&self, lab: &LabId) -> Result<Option<LabPolicy>, StoreError> {
        let db = self.db.clone();
        let lab = lab.as_str().to_owned();
        type R = (String, String, Option<i64>, Option<i64>, i64);
        let row: Option<R> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => lab_policies::table
                    .find(&lab)
                    .select((
                        lab_policies::lab_id,
                        lab_policies::min_acr,
                        lab_policies::grace_days,
                        lab_policies::grace_logins,
                        lab_policies::updated_at,
                    ))
                    .first::<R>(conn)
                    .await
                    .optional()?))
            })
            .await?;
        row.map(|r| {
            Ok(LabPolicy {
                lab: r.0,
                min_acr: parse_acr(&r.1)?,
                grace_days: r.2,
                grace_logins: r.3,
                updated_at: r.4,
            })
        })
        .transpose()
    }

    /// Sets a role's minimum acr, creating the role if the lab has none of that name.
    pub async fn set_role_policy(
        &self,
        lab: &LabId,
        role: &str,
        min_acr: Option<Acr>,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (lab, role) = (lab.as_str().to_owned(), role.to_owned());
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::require_lab!(conn, &lab);
                let n = diesel::update(roles::table.find((&lab, &role)))
                    .set(roles::min_acr.eq(min_acr.map(|a| a.as_str())))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    diesel::insert_into(roles::table)
                        .values((
                            roles::lab_id.eq(&lab),
                            roles::name.eq(&role),
                            roles::min_acr.eq(min_acr.map(|a| a.as_str())),
                            roles::created_at.eq(t),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    pub async fn role_policies(&self, lab: &LabId) -> Result<Vec<RolePolicy>, StoreError> {
        let db = self.db.clone();
        let lab = lab.as_str().to_owned();
        let rows: Vec<(String, String, Option<String>)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => roles::table
                    .filter(roles::lab_id.eq(&lab))
                    .order(roles::name.asc())
                    .select((roles::lab_id, roles::name, roles::min_acr))
                    .load(conn)
                    .await?))
            })
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(RolePolicy {
                    lab: r.0,
                    role: r.1,
                    min_acr: r.2.as_deref().map(parse_acr).transpose()?,
                })
            })
            .collect()
    }

    /// Gives a member of `lab` a role of that lab (created without a policy if missing).
    pub async fn assign_role(
        &self,
        user_id: &UserId,
        lab: &LabId,
        role: &str,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (user, lab, role) = (
            user_id.as_str().to_owned(),
            lab.as_str().to_owned(),
            role.to_owned(),
        );
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::require_member!(conn, &user, &lab);
                crate::ensure_role!(conn, &lab, &role, t);
                diesel::insert_into(user_roles::table)
                    .values((
                        user_roles::user_id.eq(&user),
                        user_roles::lab_id.eq(&lab),
                        user_roles::role.eq(&role),
                        user_roles::created_at.eq(t),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// The lab's and the member's roles' policy, and the member's grace clock.
    pub async fn member_policy(
        &self,
        user_id: &str,
        lab: &str,
    ) -> Result<MemberPolicy, StoreError> {
        let lab_policy = self.lab_policy(&LabId::new(lab)).await?;
        let db = self.db.clone();
        let (user, lab_id) = (user_id.to_owned(), lab.to_owned());
        type Fetched = (Vec<Option<String>>, Option<(i64, i64)>, Option<i64>);
        let (mins, grace, joined): Fetched = self
            .run(async move {
                crate::with_conn!(&db, conn => {
                    let mins: Vec<Option<String>> = user_roles::table
                        .inner_join(
                            roles::table.on(roles::lab_id
                                .eq(user_roles::lab_id)
                                .and(roles::name.eq(user_roles::role))),
                        )
                        .filter(user_roles::user_id.eq(&user))
                        .filter(user_roles::lab_id.eq(&lab_id))
                        .select(roles::min_acr)
                        .load(conn)
                        .await?;
                    let grace: Option<(i64, i64)> = mfa_grace::table
                        .find((&user, &lab_id))
                        .select((mfa_grace::started_at, mfa_grace::logins))
                        .first(conn)
                        .await
                        .optional()?;
                    let joined: Option<i64> = super::schema::memberships::table
                        .find((&user, &lab_id))
                        .select(super::schema::memberships::created_at)
                        .first(conn)
                        .await
                        .optional()?;
                    Ok::<_, StoreError>((mins, grace, joined))
                })
            })
            .await?;
        let mut role_min = None;
        for m in mins.iter().flatten() {
            role_min = role_min.max(Some(parse_acr(m)?));
        }
        // The grace clock runs from when the policy was set or the member joined the lab,
        // whichever is later (a new policy restarts it).
        let started = lab_policy
            .as_ref()
            .map(|p| p.updated_at.max(joined.unwrap_or(0)));
        Ok(MemberPolicy {
            lab: lab_policy,
            role_min,
            grace_started_at: started,
            grace_logins: grace.map_or(0, |g| g.1),
        })
    }

    /// Whether the lab has a policy or any role with a minimum.
    pub async fn lab_has_policy(&self, lab: &str) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let lab = lab.to_owned();
        self.run(async move {
            crate::with_conn!(&db, conn => {
                let n: i64 = lab_policies::table.filter(lab_policies::lab_id.eq(&lab)).count().get_result(conn).await?;
                let r: i64 = roles::table
                    .filter(roles::lab_id.eq(&lab))
                    .filter(roles::min_acr.is_not_null())
                    .count()
                    .get_result(conn)
                    .await?;
                Ok(n + r > 0)
            })
        })
        .await
    }

    /// The level policy demands of a member's tokens now: the lab's and their roles'
    /// minimums, unless the lab's enrolment grace is open for a member who has no factor
    /// that reaches them.
    pub async fn policy_floor(
        &self,
        user_id: &str,
        lab: &str,
        rules: crate::protocol::strength::Rules,
        hardware: &(dyn Fn(&crate::store::factors::WebauthnRow) -> bool + Sync),
        now: i64,
    ) -> Result<Option<Acr>, StoreError> {
        let p = self.member_policy(user_id, lab).await?;
        let Some(floor) = p.lab.as_ref().map(|l| l.min_acr).max(p.role_min) else {
            return Ok(None);
        };
        if let Some(l) = &p.lab
            && (l.grace_days.is_some() || l.grace_logins.is_some())
        {
            let grace = crate::protocol::strength::Grace {
                days: l.grace_days,
                logins: l.grace_logins,
                started_at: p.grace_started_at,
                used_logins: p.grace_logins,
            };
            let enrolled = self.enrolled(user_id, hardware).await?;
            if grace.open(now) && !crate::protocol::strength::offer(&enrolled, floor, rules).any() {
                return Ok(None);
            }
        }
        Ok(Some(floor))
    }

    /// Counts a sign-in on which the member deferred enrolment.
    pub async fn count_grace_login(&self, user_id: &str, lab: &str) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (user, lab) = (user_id.to_owned(), lab.to_owned());
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(mfa_grace::table.find((&user, &lab)))
                    .set(mfa_grace::logins.eq(mfa_grace::logins + 1))
                    .execute(conn)
                    .await?;
                if n == 0 {
                    diesel::insert_into(mfa_grace::table)
                        .values((
                            mfa_grace::user_id.eq(&user),
                            mfa_grace::lab_id.eq(&lab),
                            mfa_grace::started_at.eq(t),
                            mfa_grace::logins.eq(1),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }
}
