//! Remembered consent, per user and client: the scopes the user has allowed, and the labs the
//! user has signed in to the client in (read from the client's grants).

use super::schema::{authorization_codes, clients, consents, grants};
use super::{Store, StoreError, now};
use crate::audit::Event;
use diesel::{ExpressionMethods, JoinOnDsl, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

impl Store {
    /// The applications the user has allowed, with the consent's scopes and when it was last
    /// given: `(client id, client name, scope, given at)`, newest first.
    pub async fn consents_of(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let db = self.db.clone();
        let u = user_id.to_owned();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => consents::table
                .inner_join(clients::table.on(clients::id.eq(consents::client_id)))
                .filter(consents::user_id.eq(&u))
                .order(consents::created_at.desc())
                .select((consents::client_id, clients::name, consents::scope, consents::created_at))
                .load(conn)
                .await?))
        })
        .await
    }

    /// Withdraws the user's consent to a client: the consent is forgotten, codes not yet
    /// exchanged are deleted and every grant of the user to that client (refresh tokens
    /// included) is revoked, with `event` (made of the
    /// number of grants revoked) in the same transaction. `None` when there was no consent.
    pub async fn withdraw_consent(
        &self,
        user_id: &str,
        client_id: &str,
        event: impl FnOnce(usize) -> Event + Send + 'static,
    ) -> Result<Option<usize>, StoreError> {
        let db = self.db.clone();
        let (u, c) = (user_id.to_owned(), client_id.to_owned());
        let t = now();
        self.run_access_change(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::delete(consents::table.find((&u, &c)))
                    .execute(&mut *conn)
                    .await?;
                if n == 0 {
                    return Ok(None);
                }
                // Codes issued but not yet exchanged would become grants after this: forgotten
                // (an exchange then gets invalid_grant).
                diesel::delete(
                    authorization_codes::table
                        .filter(authorization_codes::user_id.eq(&u))
                        .filter(authorization_codes::client_id.eq(&c))
                        .filter(authorization_codes::consumed_at.is_null()),
                )
                .execute(&mut *conn)
                .await?;
                let revoked = diesel::update(
                    grants::table
                        .filter(grants::user_id.eq(&u))
                        .filter(grants::client_id.eq(&c))
                        .filter(grants::revoked_at.is_null()),
                )
                .set(grants::revoked_at.eq(Some(t)))
                .execute(&mut *conn)
                .await?;
                crate::store::audit::append(&mut *conn, t, &event(revoked)).await?;
                Ok(Some(revoked))
            })
        })
        .await
    }

    /// True when the user has allowed every scope in `scopes` and every resource (RFC 8707)
    /// in `resources` for this client, in a consent given (or renewed) at or after `since`
    /// (older consent has expired).
    pub async fn consent_covers(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        resources: &[String],
        since: i64,
    ) -> Result<bool, StoreError> {
        let (u, c) = (user_id.to_owned(), client_id.to_owned());
        let granted: Option<(String, String)> = crate::quick_read!(self, conn => Ok(consents::table
            .find((&u, &c))
            .filter(consents::created_at.ge(since))
            .select((consents::scope, consents::resources))
            .first::<(String, String)>(conn)
            .await
            .optional()?))?;
        Ok(granted.is_some_and(|(g, r)| {
            let have: Vec<&str> = g.split(' ').collect();
            let allowed: Vec<&str> = r.split(' ').collect();
            scopes.iter().all(|s| have.contains(&s.as_str()))
                && resources.iter().all(|r| allowed.contains(&r.as_str()))
        }))
    }

    /// Records consent now, merging with scopes allowed in a consent that has not expired
    /// (given at or after `since`); an expired consent's scopes are dropped, not renewed. The
    /// merged consent keeps its old time unless this consent covered all its scopes.
    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        resources: &[String],
        since: i64,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (u, c) = (user_id.to_owned(), client_id.to_owned());
        let scopes = scopes.to_vec();
        let resources = resources.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let old: Option<(String, i64, String)> = consents::table
                    .find((&u, &c))
                    .filter(consents::created_at.ge(since))
                    .select((consents::scope, consents::created_at, consents::resources))
                    .first::<(String, i64, String)>(conn)
                    .await
                    .optional()?;
                let mut services = old
                    .as_ref()
                    .map(|(_, _, r)| crate::protocol::resource::split(r))
                    .unwrap_or_default();
                for r in resources {
                    if !services.contains(&r) {
                        services.push(r);
                    }
                }
                let services = crate::protocol::resource::join(&services);
                let mut all: Vec<String> = old
                    .as_ref()
                    .map(|(o, _, _)| {
                        o.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()
                    })
                    .unwrap_or_default();
                // The consent is renewed only when the user saw every scope it holds on this
                // consent page; scopes kept from before keep their consent's age, so the
                // whole consent expires when the oldest scope in it would.
                let given = match &old {
                    Some((_, at, _)) if !all.iter().all(|s| scopes.contains(s)) => *at,
                    _ => t,
                };
                for s in scopes {
                    if !all.contains(&s) {
                        all.push(s);
                    }
                }
                let joined = all.join(" ");
                diesel::insert_into(consents::table)
                    .values((
                        consents::user_id.eq(&u),
                        consents::client_id.eq(&c),
                        consents::scope.eq(&joined),
                        consents::created_at.eq(given),
                        consents::resources.eq(&services),
                    ))
                    .on_conflict((consents::user_id, consents::client_id))
                    .do_update()
                    .set((
                        consents::scope.eq(&joined),
                        consents::created_at.eq(given),
                        consents::resources.eq(&services),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// The labs the user has signed in to this client in (any grant of the client naming
    /// the lab, live or not): the labs a `prompt=none` request may choose by hint.
    pub async fn labs_chosen_for(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let db = self.db.clone();
        let (u, c) = (user_id.to_owned(), client_id.to_owned());
        let labs: Vec<Option<String>> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => grants::table
                    .filter(grants::user_id.eq(&u))
                    .filter(grants::client_id.eq(&c))
                    .filter(grants::lab_id.is_not_null())
                    .select(grants::lab_id)
                    .distinct()
                    .load(conn)
                    .await?))
            })
            .await?;
        Ok(labs.into_iter().flatten().collect())
    }
}
