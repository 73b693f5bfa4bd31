//! OAuth clients (relying services). Secrets are stored as SHA-256 hashes: they are
//! server-generated with 256 bits of entropy, so a slow hash would add nothing but latency.
//!
//! A client's life cycle: it is registered, edited, disabled and enabled again, has its secret
//! rotated (the old secret keeps working beside the new one until its overlap ends), and is
//! deleted (its grants, refresh tokens, codes and consents with it). An automation client with
//! administration rights expires. [`Store::get_client`] is the client as the protocol sees it
//! (active only); [`Store::client_record`] is the registration as administration sees it.

mod edit;

pub use edit::ClientEdit;

use super::client_keys::ClientKeys;
use super::schema::{client_labs, clients};
use super::{Store, StoreError, conflict, from_json_text, to_json_text};
use crate::audit::Event;
use crate::secret::TokenHash;
use diesel::{BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::RunQueryDsl;
use latchkey_core::SigningAlg;
use latchkey_core::names::{ClientId, LabId};
use serde::Serialize;
use std::collections::BTreeSet;

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
    /// A legacy confidential client that may leave PKCE out; every other client must send a
    /// `code_challenge` (RFC 9700 section 2.1.1).
    pub pkce_optional: bool,
    /// Must push its authorization requests (RFC 9126): `/authorize` refuses it any other.
    pub require_par: bool,
    /// Must prove possession of a DPoP key at the token endpoint (RFC 9449 section 5.2,
    /// `dpop_bound_access_tokens`): its tokens are always sender-constrained.
    pub require_dpop: bool,
    /// Where it receives logout tokens when a session it got tokens from ends (OpenID Connect
    /// Back-Channel Logout 1.0, `backchannel_logout_uri`).
    pub backchannel_logout_uri: Option<String>,
    /// The URI other clients name in `resource` (RFC 8707) to get access tokens for this
    /// client's service: those tokens' `aud`.
    pub resource_uri: Option<String>,
    /// The resources (other clients' `resource_uri`) this client may get access tokens for.
    pub resources: Vec<String>,
    /// Its public keys, for a client that authenticates with `private_key_jwt` (it then has
    /// no secret, and is not public).
    #[serde(skip)]
    pub keys: Option<ClientKeys>,
    /// The labs whose members may sign in to it.
    pub labs: ClientLabs,
    /// The features its service checks: what administrators pick from when they grant
    /// features in the labs it serves.
    pub features: Vec<String>,
    /// Disabled, expiry, the secret being replaced.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
}

/// The labs a client serves: only their members can sign in to it, and its tokens carry one
/// of them as `lab`, so one lab's grants never open another lab's service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientLabs {
    /// Every lab, and users in none (only a system administrator registers such a client).
    All,
    /// These labs; none for a client that signs no one in (`client_credentials` only).
    Only(BTreeSet<LabId>),
}

impl ClientLabs {
    /// Whether a token for `lab` (`None`: a user in no lab) may be issued to this client.
    pub fn serves(&self, lab: Option<&str>) -> bool {
        match self {
            ClientLabs::All => true,
            ClientLabs::Only(labs) => lab.is_some_and(|l| labs.contains(&LabId::new(l))),
        }
    }

    /// Whether the two serve a lab in common (a client of every lab shares each).
    pub fn shares_a_lab(&self, other: &ClientLabs) -> bool {
        match (self, other) {
            (ClientLabs::All, _) | (_, ClientLabs::All) => true,
            (ClientLabs::Only(a), ClientLabs::Only(b)) => !a.is_disjoint(b),
        }
    }

    /// The listed labs (empty for [`ClientLabs::All`]).
    pub fn listed(&self) -> Vec<LabId> {
        match self {
            ClientLabs::All => Vec::new(),
            ClientLabs::Only(labs) => labs.iter().cloned().collect(),
        }
    }
}

impl Serialize for ClientLabs {
    /// `"*"` for every lab, else the list of lab ids.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ClientLabs::All => s.serialize_str("*"),
            ClientLabs::Only(labs) => s.collect_seq(labs.iter().map(LabId::as_str)),
        }
    }
}

/// What changes over a client's life, beside its registration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lifecycle {
    /// When it was disabled (`None`: enabled). A disabled client cannot authenticate, and its
    /// tokens are inactive at introspection and userinfo until it is enabled again.
    pub disabled_at: Option<i64>,
    /// After this time the client cannot authenticate (set for administration clients).
    pub expires_at: Option<i64>,
    /// The secret a rotation replaced, still accepted until its `until`.
    #[serde(skip)]
    pub previous_secret: Option<PreviousSecret>,
}

/// A replaced secret's SHA-256 hash and the end of its overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub hash: Vec<u8>,
    pub until: i64,
}

/// How strongly a client proves who it is at the token endpoint, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClientAuthStrength {
    /// A public client: `none`.
    None,
    /// A shared secret: `client_secret_basic` or `client_secret_post`.
    Secret,
    /// An assertion signed with the client's private key: `private_key_jwt` (RFC 7523).
    /// Raising [`ADMIN_CLIENT_MIN_AUTH`] to it would require it of every administration client.
    PrivateKey,
}

/// The weakest client authentication an administration client (`admin_of`) may use: its
/// minimum, in place of the `acr` a person's sign-in carries.
pub const ADMIN_CLIENT_MIN_AUTH: ClientAuthStrength = ClientAuthStrength::Secret;

/// How long an administration client lives when no expiry is given (90 days).
pub const ADMIN_CLIENT_DEFAULT_LIFETIME: i64 = 90 * 86_400;

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
    /// Public clients (no secret, no keys) authenticate with `none` and must use PKCE.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none() && self.keys.is_none()
    }

    /// How it authenticates at the token endpoint (OAuth 2.0 Dynamic Client Registration's
    /// `token_endpoint_auth_method` names).
    pub fn auth_method(&self) -> &'static str {
        if self.keys.is_some() {
            "private_key_jwt"
        } else if self.secret_hash.is_some() {
            "client_secret_basic"
        } else {
            "none"
        }
    }
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    /// Whether people sign in to it (the code or the device grant): it serves labs.
    pub fn signs_users_in(&self) -> bool {
        let device = crate::protocol::device_code::GRANT_TYPE;
        self.allows_grant("authorization_code") || self.allows_grant(device)
    }

    /// Neither disabled nor past its expiry.
    pub fn is_active(&self, now: i64) -> bool {
        self.lifecycle.disabled_at.is_none() && self.lifecycle.expires_at.is_none_or(|t| now < t)
    }

    /// Whether `secret` is this client's secret, or the one a rotation replaced while its
    /// overlap lasts. Compared in constant time.
    pub fn accepts_secret(&self, secret: &str, now: i64) -> bool {
        let presented = TokenHash::of(secret);
        let current = self
            .secret_hash
            .as_deref()
            .is_some_and(|h| presented.matches(h));
        let previous = self
            .lifecycle
            .previous_secret
            .as_ref()
            .is_some_and(|p| now < p.until && presented.matches(&p.hash));
        current | previous
    }

    /// The weakest client authentication this client must use: [`ADMIN_CLIENT_MIN_AUTH`] for
    /// a client with administration rights, anything its registration allows otherwise.
    pub fn min_auth(&self) -> ClientAuthStrength {
        if self.admin_of.is_some() {
            ADMIN_CLIENT_MIN_AUTH
        } else {
            ClientAuthStrength::None
        }
    }

    /// The built-in clients (the admin console, the account pages) cannot be edited,
    /// disabled, deleted or given a secret.
    pub fn is_builtin(id: &str) -> bool {
        id == ADMIN_CLIENT_ID || id == ACCOUNT_CLIENT_ID
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
    Option<i64>,
    Option<i64>,
    Option<Vec<u8>>,
    Option<i64>,
    bool,
    bool,
    String,
    bool,
    Option<String>,
    Option<String>,
    bool,
    Option<String>,
    Option<String>,
    String,
);

/// Every column of `clients`, in [`Row`]'s order.
macro_rules! columns {
    () => {
        (
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
            clients::disabled_at,
            clients::expires_at,
            clients::previous_secret_hash,
            clients::previous_secret_expires_at,
            clients::pkce_optional,
            clients::all_labs,
            clients::features,
            clients::require_par,
            clients::jwks,
            clients::jwks_uri,
            clients::require_dpop,
            clients::backchannel_logout_uri,
            clients::resource_uri,
            clients::resources,
        )
    };
}

/// A client from its row and the ids of the labs listed for it in `client_labs`.
fn from_row(r: Row, labs: Vec<String>) -> Result<Client, StoreError> {
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
        pkce_optional: r.16,
        labs: if r.17 {
            ClientLabs::All
        } else {
            ClientLabs::Only(labs.into_iter().map(LabId::new).collect())
        },
        features: from_json_text(&r.18)?,
        require_par: r.19,
        keys: ClientKeys::from_columns(r.20, r.21),
        require_dpop: r.22,
        backchannel_logout_uri: r.23,
        resource_uri: r.24,
        resources: from_json_text(&r.25)?,
        lifecycle: Lifecycle {
            disabled_at: r.12,
            expires_at: r.13,
            previous_secret: r
                .14
                .zip(r.15)
                .map(|(hash, until)| PreviousSecret { hash, until }),
        },
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
                        clients::pkce_optional.eq(c.pkce_optional),
                        clients::require_par.eq(c.require_par),
                        clients::require_dpop.eq(c.require_dpop),
                        clients::backchannel_logout_uri.eq(&c.backchannel_logout_uri),
                        clients::resource_uri.eq(&c.resource_uri),
                        clients::resources.eq(to_json_text(&c.resources)),
                        clients::jwks.eq(c.keys.as_ref().and_then(ClientKeys::jwks)),
                        clients::jwks_uri.eq(c.keys.as_ref().and_then(ClientKeys::jwks_uri)),
                        clients::disabled_at.eq(c.lifecycle.disabled_at),
                        clients::expires_at.eq(c.lifecycle.expires_at),
                        clients::all_labs.eq(c.labs == ClientLabs::All),
                        clients::features.eq(to_json_text(&c.features)),
                    ))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| conflict(e, "a client with this id already exists"))?;
                for lab in c.labs.listed() {
                    diesel::insert_into(client_labs::table)
                        .values((
                            client_labs::client_id.eq(&c.id),
                            client_labs::lab_id.eq(lab.as_str()),
                        ))
                        .execute(&mut *conn)
                        .await?;
                }
                crate::store::audit::append_all(&mut *conn, t, &events).await?;
                Ok(())
            })
        })
        .await
    }

    /// The client as the protocol endpoints and the admin API's authentication see it:
    /// `None` when unknown, disabled or past its expiry.
    pub async fn get_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let now = super::now();
        Ok(self.client_record(id).await?.filter(|c| c.is_active(now)))
    }

    /// A client's registration, whatever its state (for administration).
    pub async fn client_record(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let db = self.db.clone();
        let id = id.as_str().to_owned();
        let found: Option<(Row, Vec<String>)> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => {
                    let row = clients::table
                        .find(&id)
                        .select(columns!())
                        .first::<Row>(&mut *conn)
                        .await
                        .optional()?;
                    match row {
                        None => None,
                        Some(row) => {
                            let labs = client_labs::table
                                .filter(client_labs::client_id.eq(&id))
                                .select(client_labs::lab_id)
                                .load::<String>(&mut *conn)
                                .await?;
                            Some((row, labs))
                        }
                    }
                }))
            })
            .await?;
        found.map(|(row, labs)| from_row(row, labs)).transpose()
    }

    /// The client registered as the resource server of `uri` (its `resource_uri`, RFC 8707),
    /// whatever its state.
    pub async fn client_of_resource(&self, uri: &str) -> Result<Option<String>, StoreError> {
        let db = self.db.clone();
        let uri = uri.to_owned();
        self.run(async move {
            Ok(crate::with_conn!(&db, conn => {
                clients::table
                    .filter(clients::resource_uri.eq(&uri))
                    .select(clients::id)
                    .first::<String>(&mut *conn)
                    .await
                    .optional()?
            }))
        })
        .await
    }

    /// The clients registered as the resource servers of `uris`: (resource URI, client id).
    pub async fn clients_of_resources(
        &self,
        uris: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db.clone();
        let uris = uris.to_vec();
        self.run(async move {
            let rows: Vec<(Option<String>, String)> = crate::with_conn!(&db, conn => {
                clients::table
                    .filter(clients::resource_uri.eq_any(&uris))
                    .select((clients::resource_uri, clients::id))
                    .load(&mut *conn)
                    .await?
            });
            Ok(rows
                .into_iter()
                .filter_map(|(uri, id)| Some((uri?, id)))
                .collect())
        })
        .await
    }

    /// Every registered client, by name.
    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let db = self.db.clone();
        let (rows, listed): (Vec<Row>, Vec<(String, String)>) = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => {
                    let rows = clients::table
                        .order((clients::name.asc(), clients::id.asc()))
                        .select(columns!())
                        .load::<Row>(&mut *conn)
                        .await?;
                    let listed = client_labs::table
                        .select((client_labs::client_id, client_labs::lab_id))
                        .load::<(String, String)>(&mut *conn)
                        .await?;
                    (rows, listed)
                }))
            })
            .await?;
        let mut by_client: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (client, lab) in listed {
            by_client.entry(client).or_default().push(lab);
        }
        rows.into_iter()
            .map(|r| {
                let labs = by_client.remove(&r.0).unwrap_or_default();
                from_row(r, labs)
            })
            .collect()
    }

    /// The features declared by the enabled clients that serve `lab` (those serving every lab
    /// included), sorted: what may be granted in it. Empty when none declares any.
    pub async fn declared_features(&self, lab: &LabId) -> Result<BTreeSet<String>, StoreError> {
        let db = self.db.clone();
        let lab = lab.as_str().to_owned();
        let lists: Vec<String> = self
            .run(async move {
                Ok(crate::with_conn!(&db, conn => {
                    let listed = client_labs::table
                        .filter(client_labs::lab_id.eq(&lab))
                        .select(client_labs::client_id);
                    // A disabled client's service is suspended: its features are not offered.
                    clients::table
                        .filter(clients::all_labs.eq(true).or(clients::id.eq_any(listed)))
                        .filter(clients::disabled_at.is_null())
                        .filter(clients::features.ne("[]"))
                        .select(clients::features)
                        .load::<String>(&mut *conn)
                        .await?
                }))
            })
            .await?;
        let mut all = BTreeSet::new();
        for l in lists {
            all.extend(from_json_text::<Vec<String>>(&l)?);
        }
        Ok(all)
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

/// The account pages' client id (built in; `signin::ACCOUNT_CLIENT_ID` is the same value, and a
/// test keeps them equal).
pub const ACCOUNT_CLIENT_ID: &str = "latchkey:account";

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
        pkce_optional: false,
        require_par: false,
        require_dpop: false,
        backchannel_logout_uri: None,
        resource_uri: None,
        resources: Vec::new(),
        keys: None,
        labs: ClientLabs::All,
        features: Vec::new(),
        lifecycle: Lifecycle::default(),
    }
}

/// Where the console receives its authorization code.
pub fn console_callback_uri(issuer: &str) -> String {
    format!("{issuer}/admin/callback")
}
