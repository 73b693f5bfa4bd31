//! Server secrets: random keys the service needs beyond the signing keys (today the recovery
//! codes' HMAC key), stored sealed under the KEK so that every node shares them, a stolen
//! database alone does not reveal them, and `latchkey keys rewrap` re-seals them (a key
//! derived from the KEK itself would change with the KEK and void every recovery code).

use super::schema::server_secrets;
use super::{Store, StoreError, now};
use crate::crypto::Kek;
use crate::secret::random_bytes;
use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;

/// The associated data a secret is sealed with: its name, so one cannot stand for another.
pub fn secret_aad(name: &str) -> Vec<u8> {
    format!("latchkey server secret\0{name}").into_bytes()
}

impl Store {
    /// The server secret `name` (32 random bytes), created on first use; every node that
    /// races to create it gets the one stored first.
    pub async fn server_secret(&self, name: &str, kek: &Kek) -> Result<Vec<u8>, StoreError> {
        let db = self.db.clone();
        let n = name.to_owned();
        let aad = secret_aad(name);
        let fresh = kek.seal(&aad, &random_bytes(32));
        let t = now();
        let sealed: Vec<u8> = self
            .run(async move {
                crate::with_tx!(&db, conn => {
                    diesel::insert_into(server_secrets::table)
                        .values((
                            server_secrets::name.eq(&n),
                            server_secrets::sealed.eq(&fresh),
                            server_secrets::created_at.eq(t),
                        ))
                        .on_conflict_do_nothing()
                        .execute(&mut *conn)
                        .await?;
                    Ok(server_secrets::table
                        .find(&n)
                        .select(server_secrets::sealed)
                        .first::<Vec<u8>>(&mut *conn)
                        .await?)
                })
            })
            .await?;
        kek.open(&aad, &sealed).map_err(|e| {
            StoreError::Corrupt(format!(
                "server secret {name}: {e} (is this the KEK the database was set up with?)"
            ))
        })
    }
}
