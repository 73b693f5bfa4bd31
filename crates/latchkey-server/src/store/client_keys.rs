//! `private_key_jwt` clients (RFC 7523, OIDC Core section 9): where a client's public keys
//! come from (replaced with the client's other settings, [`super::clients::ClientEdit`]), and
//! the one-use record of its assertions' `jti`.

use super::schema::client_assertions;
use super::{Store, StoreError};
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

/// Where a `private_key_jwt` client's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// A JWK Set registered with the client (JSON text, checked when registered).
    Jwks(String),
    /// A URL the client serves its JWK Set at: fetched when needed, cached, fetched again
    /// when an assertion names a key it does not hold (the client rotated).
    JwksUri(String),
}

impl ClientKeys {
    /// From the `jwks` and `jwks_uri` columns (at most one is set).
    pub fn from_columns(jwks: Option<String>, jwks_uri: Option<String>) -> Option<ClientKeys> {
        match (jwks, jwks_uri) {
            (Some(j), _) => Some(ClientKeys::Jwks(j)),
            (None, Some(u)) => Some(ClientKeys::JwksUri(u)),
            (None, None) => None,
        }
    }

    pub fn jwks(&self) -> Option<&str> {
        match self {
            ClientKeys::Jwks(j) => Some(j),
            ClientKeys::JwksUri(_) => None,
        }
    }

    pub fn jwks_uri(&self) -> Option<&str> {
        match self {
            ClientKeys::JwksUri(u) => Some(u),
            ClientKeys::Jwks(_) => None,
        }
    }
}

impl Store {
    /// Records that `client_id` used an assertion with this `jti` (its SHA-256), valid until
    /// `expires_at`: `Some(false)` when it was used before and has not yet expired (a replay,
    /// refused on every node sharing the database), `None` when the client no longer exists
    /// (deleted on another node, or from the command line, while this one still caches it).
    pub async fn record_client_assertion(
        &self,
        client_id: &str,
        jti_hash: &[u8],
        expires_at: i64,
    ) -> Result<Option<bool>, StoreError> {
        use super::schema::clients;
        use diesel::OptionalExtension;
        let db = self.db.clone();
        let (client, hash) = (client_id.to_owned(), jti_hash.to_vec());
        let t = super::now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let exists = clients::table
                    .find(&client)
                    .select(clients::id)
                    .first::<String>(&mut *conn)
                    .await
                    .optional()?
                    .is_some();
                if !exists {
                    return Ok(None);
                }
                // A record whose assertion expired (not yet purged) refuses nothing.
                diesel::delete(
                    client_assertions::table
                        .filter(client_assertions::client_id.eq(&client))
                        .filter(client_assertions::jti_hash.eq(&hash))
                        .filter(client_assertions::expires_at.lt(t)),
                )
                .execute(&mut *conn)
                .await?;
                let n = diesel::insert_into(client_assertions::table)
                    .values((
                        client_assertions::client_id.eq(&client),
                        client_assertions::jti_hash.eq(&hash),
                        client_assertions::expires_at.eq(expires_at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(&mut *conn)
                    .await?;
                Ok(Some(n == 1))
            })
        })
        .await
    }
}
