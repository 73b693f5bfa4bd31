//! Feature grants: the features of each role, and per-member allows and denies. What a
//! member may do is `protocol::grants::effective` over these rows.

use super::schema::{member_features, role_features};
use super::{Store, StoreError, now};
use crate::audit::Event;
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::names::{LabId, UserId};
use std::collections::BTreeSet;

/// What a member holds in one lab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberGrants {
    pub roles: Vec<String>,
    pub features: BTreeSet<String>,
    /// The member's own allows (true) and denies (false).
    pub overrides: Vec<(String, bool)>,
    /// Whether the user is a member of the lab at all.
    pub member: bool,
}

/// The rows [`MemberGrants`] is made of: role and feature pairs, the member's overrides, and
/// whether a membership exists.
pub(crate) type MemberRows = (Vec<(String, Option<String>)>, Vec<(String, bool)>, bool);

impl MemberGrants {
    /// The member's grants from its roles, its roles' features and its own overrides.
    pub(crate) fn new<'a>(
        mut roles: Vec<String>,
        role_features: impl Iterator<Item = &'a str>,
        overrides: Vec<(String, bool)>,
        member: bool,
    ) -> MemberGrants {
        roles.sort();
        roles.dedup();
        let features = crate::protocol::grants::effective(role_features, &overrides);
        MemberGrants {
            roles,
            features,
            overrides,
            member,
        }
    }

    pub(crate) fn of((rows, overrides, member): MemberRows) -> MemberGrants {
        let roles = rows.iter().map(|(r, _)| r.clone()).collect();
        MemberGrants::new(
            roles,
            rows.iter().filter_map(|(_, f)| f.as_deref()),
            overrides,
            member,
        )
    }
}

/// Reads [`MemberRows`] of user `$user` in lab `$lab` on connection `$c`, for either backend
/// (`[.await]` for diesel-async, `[]` inside a blocking SQLite call).
#[macro_export]
macro_rules! member_grant_rows {
    ($c:expr, $user:expr, $lab:expr, [$($aw:tt)*]) => {{
        use $crate::store::schema::{member_features, memberships, role_features, user_roles};
        use diesel::{
            BoolExpressionMethods, ExpressionMethods, JoinOnDsl, NullableExpressionMethods,
            QueryDsl,
        };
        let rows: Vec<(String, Option<String>)> = user_roles::table
            .left_join(
                role_features::table.on(role_features::lab_id
                    .eq(user_roles::lab_id)
                    .and(role_features::role.eq(user_roles::role))),
            )
            .filter(user_roles::user_id.eq($user))
            .filter(user_roles::lab_id.eq($lab))
            .select((user_roles::role, role_features::feature.nullable()))
            .load($c) $($aw)* ?;
        let overrides: Vec<(String, bool)> = member_features::table
            .filter(member_features::user_id.eq($user))
            .filter(member_features::lab_id.eq($lab))
            .select((member_features::feature, member_features::allow))
            .load($c) $($aw)* ?;
        let member: i64 = memberships::table
            .filter(memberships::user_id.eq($user))
            .filter(memberships::lab_id.eq($lab))
            .count()
            .get_result($c) $($aw)* ?;
        (rows, overrides, member > 0)
    }};
}

impl Store {
    /// Adds (`add`) or removes a feature of a role, creating the role if missing.
    pub async fn set_role_feature(
        &self,
        lab: &LabId,
        role: &str,
        feature: &str,
        add: bool,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (lab, role, feature) = (lab.as_str().to_owned(), role.to_owned(), feature.to_owned());
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::ensure_role!(conn, &lab, &role, t);
                diesel::delete(
                    role_features::table
                        .filter(role_features::lab_id.eq(&lab))
                        .filter(role_features::role.eq(&role))
                        .filter(role_features::feature.eq(&feature)),
                )
                .execute(conn)
                .await?;
                if add {
                    diesel::insert_into(role_features::table)
                        .values((
                            role_features::lab_id.eq(&lab),
                            role_features::role.eq(&role),
                            role_features::feature.eq(&feature),
                            role_features::created_at.eq(t),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Allows (`Some(true)`), denies (`Some(false)`) or clears (`None`) one feature for one
    /// member of a lab.
    pub async fn set_member_feature(
        &self,
        user_id: &UserId,
        lab: &LabId,
        feature: &str,
        allow: Option<bool>,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (user, lab, feature) = (
            user_id.as_str().to_owned(),
            lab.as_str().to_owned(),
            feature.to_owned(),
        );
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::require_member!(conn, &user, &lab);
                diesel::delete(
                    member_features::table
                        .filter(member_features::user_id.eq(&user))
                        .filter(member_features::lab_id.eq(&lab))
                        .filter(member_features::feature.eq(&feature)),
                )
                .execute(conn)
                .await?;
                if let Some(allow) = allow {
                    diesel::insert_into(member_features::table)
                        .values((
                            member_features::user_id.eq(&user),
                            member_features::lab_id.eq(&lab),
                            member_features::feature.eq(&feature),
                            member_features::allow.eq(allow),
                            member_features::created_at.eq(t),
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

    /// The member's roles and effective features in `lab` (one connection, three queries).
    pub async fn member_grants(
        &self,
        user_id: &str,
        lab: &str,
    ) -> Result<MemberGrants, StoreError> {
        let (user, lab) = (user_id.to_owned(), lab.to_owned());
        let fetched = crate::quick_read!(self, conn => {
            Ok::<_, StoreError>(crate::member_grant_rows!(conn, &user, &lab, [.await]))
        })?;
        Ok(MemberGrants::of(fetched))
    }
}
