//! Invitations: a lab administrator invites an email address into the lab with some roles; the
//! link (an opaque token, stored hashed) lets that person choose a password once, before it
//! expires.

use super::schema::{invitations, memberships, roles, user_roles, users};
use super::{Store, StoreError, conflict, from_json_text, now, to_json_text};
use crate::audit::Event;
use crate::secret::TokenHash;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::names::LabId;
use serde::Serialize;

/// Accepting an invitation for an address that has an account meanwhile.
pub const ACCOUNT_EXISTS: &str = "an account with this email exists already; sign in instead";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    pub id: String,
    pub lab: String,
    pub email: String,
    pub roles: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

fn from_row(r: Row) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: r.0,
        lab: r.1,
        email: r.2,
        roles: from_json_text(&r.3)?,
        created_by: r.4,
        created_at: r.5,
        expires_at: r.6,
        accepted_at: r.7,
    })
}

macro_rules! columns {
    () => {
        (
            invitations::id,
            invitations::lab_id,
            invitations::email,
            invitations::roles,
            invitations::created_by,
            invitations::created_at,
            invitations::expires_at,
            invitations::accepted_at,
        )
    };
}

impl Store {
    /// Records an invitation (roles must exist in the lab). With `refuse_existing` (a system
    /// administrator's invitation, whose link the answer shows them), an email that has an
    /// account is a conflict, and the link counts as disclosed; without it (a lab
    /// administrator's invitation, whose answer must not tell whether the address has an
    /// account, and whose link is only mailed) it is recorded all the same, and accepting it
    /// is refused.
    pub async fn create_invitation(
        &self,
        inv: &Invitation,
        token: TokenHash,
        refuse_existing: bool,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let inv = inv.clone();
        let events = events.to_vec();
        let t = inv.created_at;
        self.run(async move {
            crate::with_tx!(&db, conn => {
                crate::require_lab!(conn, &inv.lab);
                for r in &inv.roles {
                    let n: i64 = roles::table
                        .filter(roles::lab_id.eq(&inv.lab))
                        .filter(roles::name.eq(r))
                        .count()
                        .get_result(conn)
                        .await?;
                    if n == 0 {
                        return Err(StoreError::NoSuchRole(r.clone()));
                    }
                }
                let taken: i64 = users::table
                    .filter(users::email.eq(&inv.email))
                    .count()
                    .get_result(conn)
                    .await?;
                if refuse_existing && taken > 0 {
                    return Err(StoreError::Conflict(
                        "this email already has an account: add it as a member instead".into(),
                    ));
                }
                diesel::insert_into(invitations::table)
                    .values((
                        invitations::id.eq(&inv.id),
                        invitations::token_hash.eq(token.0.to_vec()),
                        invitations::lab_id.eq(&inv.lab),
                        invitations::email.eq(&inv.email),
                        invitations::roles.eq(to_json_text(&inv.roles)),
                        invitations::created_by.eq(&inv.created_by),
                        invitations::created_at.eq(inv.created_at),
                        invitations::expires_at.eq(inv.expires_at),
                        invitations::link_disclosed.eq(refuse_existing),
                    ))
                    .execute(conn)
                    .await
                    .map_err(|e| conflict(e, "invitation exists"))?;
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(())
            })
        })
        .await
    }

    /// A lab's open (not accepted) invitations, newest first.
    pub async fn lab_invitations(&self, lab: &LabId) -> Result<Vec<Invitation>, StoreError> {
        let db = self.db.clone();
        let lab = lab.as_str().to_owned();
        let rows: Vec<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => invitations::table
                    .filter(invitations::lab_id.eq(&lab))
                    .filter(invitations::accepted_at.is_null())
                    .order(invitations::created_at.desc())
                    .select(columns!())
                    .load(conn)
                    .await?))
            })
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    pub async fn get_invitation(&self, id: &str) -> Result<Option<Invitation>, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let row: Option<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => invitations::table
                    .find(&id)
                    .select(columns!())
                    .first(conn)
                    .await
                    .optional()?))
            })
            .await?;
        row.map(from_row).transpose()
    }

    /// The open, unexpired invitation a link's token names.
    pub async fn invitation_by_token(
        &self,
        token: TokenHash,
    ) -> Result<Option<Invitation>, StoreError> {
        let db = self.db.clone();
        let t = now();
        let row: Option<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => invitations::table
                    .filter(invitations::token_hash.eq(token.0.to_vec()))
                    .filter(invitations::accepted_at.is_null())
                    .filter(invitations::expires_at.gt(t))
                    .select(columns!())
                    .first(conn)
                    .await
                    .optional()?))
            })
            .await?;
        row.map(from_row).transpose()
    }

    /// Withdraws an open invitation; false when there was none.
    pub async fn delete_invitation(&self, id: &str, events: &[Event]) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::delete(
                    invitations::table
                        .filter(invitations::id.eq(&id))
                        .filter(invitations::accepted_at.is_null()),
                )
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

    /// Replaces the token of an open, unexpired invitation (a link issued again to an
    /// administrator or the operator, so disclosed: the previous one stops working); false
    /// when there is no such invitation.
    pub async fn reissue_invitation(
        &self,
        id: &str,
        token: TokenHash,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.to_owned();
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    invitations::table
                        .filter(invitations::id.eq(&id))
                        .filter(invitations::accepted_at.is_null())
                        .filter(invitations::expires_at.gt(t)),
                )
                .set((invitations::token_hash.eq(token.0.to_vec()), invitations::link_disclosed.eq(true)))
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

    /// Accepts the open, unexpired invitation `inv` through the link whose token hashes to
    /// `token`: creates the user `user_id` with `password_hash`, makes them a member with the
    /// invitation's roles (a role deleted since is skipped), closes the invitation and appends
    /// `events`, all in one transaction. Not-found when the link is no longer valid (used,
    /// withdrawn, replaced or expired); a conflict when the email has an account by now.
    /// Whether the address is confirmed by it: a link that was only mailed reached the
    /// mailbox it names; one an administrator was shown did not necessarily.
    pub async fn accept_invitation(
        &self,
        inv: &Invitation,
        token: TokenHash,
        user_id: &str,
        name: Option<&str>,
        password_hash: String,
        events: &[Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (id, i, name) = (user_id.to_owned(), inv.clone(), name.map(str::to_owned));
        let events = events.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(
                    invitations::table
                        .filter(invitations::id.eq(&i.id))
                        .filter(invitations::token_hash.eq(token.0.to_vec()))
                        .filter(invitations::accepted_at.is_null())
                        .filter(invitations::expires_at.gt(t)),
                )
                .set((invitations::accepted_at.eq(Some(t)), invitations::accepted_by.eq(Some(&id))))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Err(StoreError::NotFound("this invitation is no longer valid".into()));
                }
                let disclosed: bool = invitations::table
                    .find(&i.id)
                    .select(invitations::link_disclosed)
                    .first(conn)
                    .await?;
                diesel::insert_into(users::table)
                    .values((
                        users::id.eq(&id),
                        users::email.eq(&i.email),
                        users::name.eq(&name),
                        users::password_hash.eq(Some(&password_hash)),
                        users::disabled.eq(false),
                        users::created_at.eq(t),
                        users::email_verified_at.eq((!disclosed).then_some(t)),
                    ))
                    .execute(conn)
                    .await
                    .map_err(|e| conflict(e, ACCOUNT_EXISTS))?;
                diesel::insert_into(memberships::table)
                    .values((
                        memberships::user_id.eq(&id),
                        memberships::lab_id.eq(&i.lab),
                        memberships::created_at.eq(t),
                    ))
                    .execute(conn)
                    .await?;
                for r in &i.roles {
                    let exists: i64 = roles::table
                        .filter(roles::lab_id.eq(&i.lab))
                        .filter(roles::name.eq(r))
                        .count()
                        .get_result(conn)
                        .await?;
                    if exists == 0 {
                        continue;
                    }
                    diesel::insert_into(user_roles::table)
                        .values((
                            user_roles::user_id.eq(&id),
                            user_roles::lab_id.eq(&i.lab),
                            user_roles::role.eq(r),
                            user_roles::created_at.eq(t),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(!disclosed)
            })
        })
        .await
    }
}
