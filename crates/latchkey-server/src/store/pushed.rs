//! Pushed authorization requests (RFC 9126): the parameters a client pushed to `/par`, kept
//! under the hash of their `request_uri` until `/authorize` takes them (once) or they expire.

use super::schema::pushed_requests;
use super::{Store, StoreError, now};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;

impl Store {
    /// Keeps `params` (JSON) pushed by `client_id` under `uri_hash` until `expires_at`.
    pub async fn push_request(
        &self,
        uri_hash: &[u8],
        client_id: &str,
        params: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        let (hash, client, params) = (uri_hash.to_vec(), client_id.to_owned(), params.to_owned());
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                // Opportunistic clean-up: requests nobody brought to /authorize in time.
                diesel::delete(pushed_requests::table.filter(pushed_requests::expires_at.lt(t)))
                    .execute(conn)
                    .await?;
                diesel::insert_into(pushed_requests::table)
                    .values((
                        pushed_requests::uri_hash.eq(&hash),
                        pushed_requests::client_id.eq(&client),
                        pushed_requests::params.eq(&params),
                        pushed_requests::expires_at.eq(expires_at),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Takes the parameters pushed under `uri_hash` by `client_id`, if they have not expired:
    /// once (of two racing requests, one gets them). Another client's `request_uri` takes
    /// nothing and leaves the request in place.
    pub async fn take_pushed_request(
        &self,
        uri_hash: &[u8],
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let db = self.db.clone();
        let (hash, client) = (uri_hash.to_vec(), client_id.to_owned());
        let t = now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let row: Option<(String, String, i64)> = pushed_requests::table
                    .find(&hash)
                    .select((
                        pushed_requests::client_id,
                        pushed_requests::params,
                        pushed_requests::expires_at,
                    ))
                    .first(&mut *conn)
                    .await
                    .optional()?;
                let Some((owner, params, expires_at)) = row else {
                    return Ok(None);
                };
                if owner != client || expires_at <= t {
                    return Ok(None);
                }
                let n = diesel::delete(pushed_requests::table.find(&hash))
                    .execute(&mut *conn)
                    .await?;
                Ok((n == 1).then_some(params))
            })
        })
        .await
    }
}
