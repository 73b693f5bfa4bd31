//! The DPoP proofs seen (RFC 9449 section 11.1): each proof is accepted once, on every node
//! sharing the database, for as long as its `iat` keeps it acceptable.

use super::schema::dpop_proofs;
use super::{Store, StoreError};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

impl Store {
    /// Records a proof (`proof_hash`: SHA-256 of its key's thumbprint and its `jti`) until
    /// `expires_at`; `false` when it was recorded before and has not expired: a replay.
    pub async fn record_dpop_proof(
        &self,
        proof_hash: &[u8],
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let hash = proof_hash.to_vec();
        let t = super::now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                // A record whose proof is too old to be accepted (not yet purged) refuses nothing.
                diesel::delete(
                    dpop_proofs::table
                        .filter(dpop_proofs::proof_hash.eq(&hash))
                        .filter(dpop_proofs::expires_at.lt(t)),
                )
                .execute(&mut *conn)
                .await?;
                let n = diesel::insert_into(dpop_proofs::table)
                    .values((
                        dpop_proofs::proof_hash.eq(&hash),
                        dpop_proofs::expires_at.eq(expires_at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(&mut *conn)
                    .await?;
                Ok(n == 1)
            })
        })
        .await
    }
}
