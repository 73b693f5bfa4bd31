//! Remembered consent, per user and client: the scopes the user has allowed, and the labs the
//! user has signed in to the client in (read from the client's grants).

use super::schema::{consents, grants};
use super::{Store, StoreError, now};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

impl Store {
    /// True when the user has already allowed every scope in `scopes` for this client.
    pub async fn consent_covers(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let (u, c) = (user_id.to_owned(), client_id.to_owned());
        let granted: Option<String> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => consents::table
                    .find((&u, &c))
                    .select(consents::scope)
                    .first::<String>(conn)
                    .await
                    .optional()?))
            })
            .await?;
        Ok(granted.is_some_and(|g| {
            let have: Vec<&str> = g.split(' ').collect();
            scopes.iter().all(|s| have.contains(&s.as_str()))
        }))
    }

    /// Records consent, merging with scopes allowed before.
    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (u, c) = (user_id.to_owned(), client_id.to_owned());
        let scopes = scopes.to_vec();
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let old: Option<String> = consents::table
                    .find((&u, &c))
                    .select(consents::scope)
                    .first::<String>(conn)
                    .await
                    .optional()?;
                let mut all: Vec<String> = old
                    .map(|o| o.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default();
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
                        consents::created_at.eq(t),
                    ))
                    .on_conflict((consents::user_id, consents::client_id))
                    .do_update()
                    .set(consents::scope.eq(&joined))
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
