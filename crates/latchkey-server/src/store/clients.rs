//! OAuth clients (relying services). Secrets are stored as SHA-256 hashes: they are
//! server-generated with 256 bits of entropy, so a slow hash would add nothing but latency.

use super::schema::clients;
use super::{Store, StoreError, conflict, from_json_text, to_json_text};
use crate::audit::Event;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::SigningAlg;
use latchkey_core::names::{ClientId, LabId};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_hash: Option<Vec<u8>>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub access_token_ttl_secs: Option<i64>,
    pub id_token_alg: SigningAlg,
    pub skip_consent: bool,
    pub created_at: i64,
    /// The weakest authentication this client accepts (its MFA policy).
    pub min_acr: Option<latchkey_core::Acr>,
    /// What the client may administer through the admin API with `client_credentials` and
    /// scope `latchkey:admin`; `None` nothing.
    pub admin_of: Option<AdminOf>,
}

/// What an automation client administers. Stored as text: `*` for every lab, else the lab's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOf {
    /// Every lab, every user, clients and keys: a system administrator.
    AllLabs,
    /// One lab (its id): a lab administrator.
    Lab(LabId),
}

impl AdminOf {
    const ALL: &'static str = "*";

    /// Reads the stored form (`*` or a lab id).
    pub fn from_stored(s: &str) -> AdminOf {
        if s == Self::ALL {
            AdminOf::AllLabs
        } else {
            AdminOf::Lab(LabId::new(s))
        }
    }

    /// The stored form, which is also how the API and the command line show it.
    pub fn as_stored(&self) -> &str {
        match self {
            AdminOf::AllLabs => Self::ALL,
            AdminOf::Lab(id) => id.as_str(),
        }
    }
}

impl serde::Serialize for AdminOf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_stored())
    }
}

impl Client {
    /// Public clients (no secret) authenticate with `none` and must use PKCE.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

type Row = (
    String,
    String,
    Option<Vec<u8>>,
    String,
    String,
    String,
    Option<i64>,
    String,
    bool,
    i64,
    Option<String>,
    Option<String>,
);

fn from_row(r: Row) -> Result<Client, StoreError> {
    Ok(Client {
        id: r.0,
        name: r.1,
        secret_hash: r.2,
        redirect_uris: from_json_text(&r.3)?,
        post_logout_redirect_uris: from_json_text(&r.4)?,
        grant_types: from_json_text(&r.5)?,
        access_token_ttl_secs: r.6,
        id_token_alg: r
            .7
            .parse()
            .map_err(|e: latchkey_core::alg::UnsupportedAlg| StoreError::Corrupt(e.to_string()))?,
        skip_consent: r.8,
        created_at: r.9,
        min_acr: r
            .10
            .map(|a| a.parse())
            .transpose()
            .map_err(|e: latchkey_core::acr::UnknownAcr| StoreError::Corrupt(e.to_string()))?,
        admin_of: r.11.as_deref().map(AdminOf::from_stored),
    })
}

impl Store {
    /// Registers a client and records `events` with it, in one transaction.
    pub async fn create_client(&self, client: &Client, events: &[Event]) -> Result<(), StoreError> {
        let db = self.db.clone();
        let c = client.clone();
        let events = events.to_vec();
        let t = c.created_at;
        self.run(async move {
            crate::with_tx!(&db, conn => {
                diesel::insert_into(clients::table)
                    .values((
                        clients::id.eq(&c.id),
                        clients::name.eq(&c.name),
                        clients::secret_hash.eq(&c.secret_hash),
                        clients::redirect_uris.eq(to_json_text(&c.redirect_uris)),
                        clients::post_logout_redirect_uris.eq(to_json_text(&c.post_logout_redirect_uris)),
                        clients::grant_types.eq(to_json_text(&c.grant_types)),
                        clients::access_token_ttl_secs.eq(c.access_token_ttl_secs),
                        clients::id_token_alg.eq(c.id_token_alg.as_str()),
                        clients::skip_consent.eq(c.skip_consent),
                        clients::created_at.eq(c.created_at),
                        clients::min_acr.eq(c.min_acr.map(|a| a.as_str())),
                        clients::admin_of.eq(c.admin_of.as_ref().map(AdminOf::as_stored)),
                    ))
                    .execute(conn)
                    .await
                    .map_err(|e| conflict(e, "a client with this id already exists"))?;
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let db = self.db.clone();
        let id = id.as_str().to_owned();
        let row: Option<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => clients::table
                    .find(&id)
                    .select((
                        clients::id,
                        clients::name,
                        clients::secret_hash,
                        clients::redirect_uris,
                        clients::post_logout_redirect_uris,
                        clients::grant_types,
                        clients::access_token_ttl_secs,
                        clients::id_token_alg,
                        clients::skip_consent,
                        clients::created_at,
                        clients::min_acr,
                        clients::admin_of,
                    ))
                    .first::<Row>(conn)
                    .await
                    .optional()?))
            })
            .await?;
        row.map(from_row).transpose()
    }

    /// Every registered client, by name.
    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let db = self.db.clone();
        let rows: Vec<Row> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => clients::table
                    .order((clients::name.asc(), clients::id.asc()))
                    .select((
                        clients::id,
                        clients::name,
                        clients::secret_hash,
                        clients::redirect_uris,
                        clients::post_logout_redirect_uris,
                        clients::grant_types,
                        clients::access_token_ttl_secs,
                        clients::id_token_alg,
                        clients::skip_consent,
                        clients::created_at,
                        clients::min_acr,
                        clients::admin_of,
                    ))
                    .load::<Row>(conn)
                    .await?))
            })
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// Sets (or clears) a client's minimum acr; false when no such client.
    pub async fn set_client_min_acr(
        &self,
        id: &ClientId,
        min: Option<latchkey_core::Acr>,
        events: &[crate::audit::Event],
    ) -> Result<bool, StoreError> {
        let db = self.db.clone();
        let id = id.as_str().to_owned();
        let events = events.to_vec();
        let t = super::now();
        self.run(async move {
            crate::with_tx!(&db, conn => {
                let n = diesel::update(clients::table.find(&id))
                    .set(clients::min_acr.eq(min.map(|a| a.as_str())))
                    .execute(&mut *conn)
                    .await?;
                if n == 1 {
                    super::audit::append_all(&mut *conn, t, &events).await?;
                }
                Ok(n == 1)
            })
        })
        .await
    }
}

/// The admin console's client id (a built-in public client that signs in like any other).
pub const ADMIN_CLIENT_ID: &str = "latchkey:admin";

/// Access tokens the console holds live this long; after that it signs in again (silently,
/// while the Latchkey session lasts).
pub const CONSOLE_TOKEN_TTL: i64 = 900;

/// The console as a client: public (PKCE), code flow only, first-party (no consent), and
/// accepting no sign-in weaker than `min_acr` (`[admin] min_acr`): a person without a factor
/// that reaches it is refused (`unmet_authentication_requirements`), never given a grace.
pub fn console_client(issuer: &str, min_acr: latchkey_core::Acr) -> Client {
    Client {
        id: ADMIN_CLIENT_ID.into(),
        name: "the Latchkey admin console".into(),
        secret_hash: None,
        redirect_uris: vec![console_callback_uri(issuer)],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into()],
        access_token_ttl_secs: Some(CONSOLE_TOKEN_TTL),
        id_token_alg: latchkey_core::SigningAlg::ES256,
        skip_consent: true,
        created_at: 0,
        min_acr: Some(min_acr),
        admin_of: None,
    }
}

/// Where the console receives its authorization code.
pub fn console_callback_uri(issuer: &str) -> String {
    format!("{issuer}/admin/callback")
}
