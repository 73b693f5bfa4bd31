//! Signing-key rows: the private key sealed by the KEK, the public JWK, and the key's state
//! (`active` signs; issue #4 adds `staged` and `retiring`).

use super::schema::signing_keys as sk;
use super::{Store, StoreError, key_lock_sql};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub state: String,
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
}

type Row = (String, String, String, Vec<u8>, String, i64, Option<i64>);

impl Store {
    pub async fn list_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => sk::table
                    .filter(sk::state.ne("removed"))
                    .order(sk::created_at.asc())
                    .select((sk::kid, sk::alg, sk::state, sk::private_key, sk::public_jwk, sk::created_at, sk::activated_at))
                    .load::<Row>(conn)
                    .await?))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| KeyRow {
                kid: r.0,
                alg: r.1,
                state: r.2,
                private_key: r.3,
                public_jwk: r.4,
                created_at: r.5,
                activated_at: r.6,
            })
            .collect())
    }

    /// Inserts `candidate` as the active key for its algorithm unless another node already
    /// did: several processes may start on an empty database at the same moment.
    pub async fn insert_active_key_if_missing(
        &self,
        candidate: KeyRow,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::sql_query(key_lock_sql(&*conn)).execute(conn).await?;
                let existing: i64 = sk::table
                    .filter(sk::alg.eq(&candidate.alg))
                    .filter(sk::state.eq("active"))
                    .count()
                    .get_result(conn)
                    .await?;
                if existing > 0 {
                    return Ok(false);
                }
                diesel::insert_into(sk::table)
                    .values((
                        sk::kid.eq(&candidate.kid),
                        sk::alg.eq(&candidate.alg),
                        sk::state.eq("active"),
                        sk::private_key.eq(&candidate.private_key),
                        sk::public_jwk.eq(&candidate.public_jwk),
                        sk::created_at.eq(candidate.created_at),
                        sk::activated_at.eq(candidate.activated_at),
                    ))
                    .execute(conn)
                    .await?;
                Ok(true)
            })
        })
        .await
    }
}
