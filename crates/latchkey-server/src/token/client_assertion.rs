//! `private_key_jwt` client authentication (RFC 7523 sections 2.2 and 3, OIDC Core section 9):
//! a JWT the client signed with its private key, sent as `client_assertion` with
//! `client_assertion_type` [`ASSERTION_TYPE`]. It is accepted when:
//!
//! - its header names an asymmetric algorithm ([`AssertionAlg`]; never `none` or HMAC), no
//!   `crit` extension, and no `typ` of another kind of JWT (an access, logout or DPoP token
//!   is not an assertion);
//! - a key of the client's verifies its signature (by `kid` when the header names one);
//! - `iss` and `sub` are both the client's id;
//! - `aud` is (or, as an array, holds) Latchkey's issuer or the URL of one of its endpoints
//!   that take client authentication: an assertion made for another server is refused;
//! - `exp` has not passed and is at most [`MAX_LIFETIME`] away, `nbf` and `iat` are not in
//!   the future (each with [`LEEWAY`]);
//! - `jti` is present and this client has not used it before (recorded in the database until
//!   `exp`, so every node refuses a replay).

use crate::client_keys::ClientKeyCache;
use crate::crypto::client_jwk::{AssertionAlg, ClientJwks};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::client_keys::ClientKeys;
use crate::store::clients::Client;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// `client_assertion_type` for a JWT assertion (RFC 7523 section 2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The furthest in the future an assertion's `exp` may be (10 minutes): assertions are made
/// for one request, and a short life bounds the replay record.
pub const MAX_LIFETIME: i64 = 600;
/// Clock difference tolerated between Latchkey and the client.
pub const LEEWAY: i64 = 30;
/// The largest assertion read (16 KiB).
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;
/// The endpoints an assertion's `aud` may name besides the issuer.
pub const AUDIENCE_PATHS: [&str; 4] = ["/token", "/par", "/introspect", "/revoke"];

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

fn part<T: serde::de::DeserializeOwned>(b64: &str, what: &str) -> Result<T, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| format!("the client assertion's {what} is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| format!("the client assertion's {what} is not valid"))
}

/// The client an assertion says it comes from (`sub`, else `iss`), read without checking
/// anything: only to find the client whose keys then verify it.
pub fn claimed_client(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        sub: Option<serde_json::Value>,
        iss: Option<serde_json::Value>,
    }
    let payload = assertion.split('.').nth(1)?;
    let named: Named = part(payload, "claims").ok()?;
    let text = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    text(named.sub).or_else(|| text(named.iss))
}

/// Verifies `assertion` as `client`'s authentication at `now` and records its `jti`. The
/// inner `Err` is the reason it is refused, for `invalid_client`'s description; the outer one
/// a database that could not record the `jti`.
pub async fn verify(
    state: &AppState,
    client: &Client,
    assertion: &str,
    now: i64,
) -> Result<Result<(), String>, StoreError> {
    let Err(refused) = check(state, client, assertion, now).await else {
        return Ok(Ok(()));
    };
    match refused {
        Refused::Because(why) => Ok(Err(why)),
        Refused::Store(e) => Err(e),
    }
}

enum Refused {
    Because(String),
    Store(StoreError),
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused::Because(why)
    }
}

impl From<&str> for Refused {
    fn from(why: &str) -> Refused {
        Refused::Because(why.to_owned())
    }
}

async fn check(
    state: &AppState,
    client: &Client,
    assertion: &str,
    now: i64,
) -> Result<(), Refused> {
    let Some(source) = &client.keys else {
        return Err("this client does not authenticate with private_key_jwt".into());
    };
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err("the client assertion is too large".into());
    }
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the client assertion is not a signed JWT (compact JWS)".into());
    };
    let header: Header = part(h, "header")?;
    let alg = AssertionAlg::parse(&header.alg).ok_or_else(|| {
        format!(
            "the client assertion's alg `{}` is not accepted (use one of {})",
            header.alg.chars().take(20).collect::<String>(),
            AssertionAlg::ALL.map(AssertionAlg::as_str).join(", ")
        )
    })?;
    if header.crit.is_some() {
        return Err(
            "the client assertion asks for extensions (crit) Latchkey does not know".into(),
        );
    }
    if let Some(typ) = &header.typ {
        let t = typ.to_ascii_lowercase();
        let t = t.strip_prefix("application/").unwrap_or(&t);
        if t != "jwt" && t != "client-authentication+jwt" {
            return Err("the client assertion's typ says it is another kind of token".into());
        }
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "the client assertion's signature is not base64url".to_owned())?;
    let signed = &assertion.as_bytes()[..h.len() + 1 + p.len()];
    let cache: &ClientKeyCache = &state.client_keys;
    let kid = header.kid.as_deref();
    let keys = cache.keys(&client.id, source, false).await?;
    if !signed_by(&keys, kid, alg, signed, &sig) {
        // A client that rotated: its new key is not in the keys fetched before.
        let again = match source {
            ClientKeys::JwksUri(_) => Some(cache.keys(&client.id, source, true).await?),
            ClientKeys::Jwks(_) => None,
        };
        if !again.is_some_and(|k| signed_by(&k, kid, alg, signed, &sig)) {
            return Err(
                "the client assertion's signature is not from any of the client's keys".into(),
            );
        }
    }
    let claims: Claims = part(p, "claims")?;
    check_claims(&claims, client, &state.issuer, now)?;
    let (Some(jti), Some(exp)) = (claims.jti, claims.exp) else {
        return Err("the client assertion has no jti".into());
    };
    let hash = ring::digest::digest(&ring::digest::SHA256, jti.as_bytes());
    let fresh = state
        .store
        .record_client_assertion(&client.id, hash.as_ref(), exp + LEEWAY)
        .await
        .map_err(Refused::Store)?
        .ok_or("client authentication failed")?;
    if !fresh {
        return Err(
            "this client assertion was used before (its jti): make a new one for \
                    every request"
                .into(),
        );
    }
    Ok(())
}

fn signed_by(
    keys: &ClientJwks,
    kid: Option<&str>,
    alg: AssertionAlg,
    signed: &[u8],
    sig: &[u8],
) -> bool {
    keys.candidates(kid, alg)
        .any(|k| k.verify(alg, signed, sig))
}

/// The claim checks of RFC 7523 section 3 (signature checked already).
fn check_claims(c: &Claims, client: &Client, issuer: &str, now: i64) -> Result<(), String> {
    if c.iss.as_deref() != Some(&client.id) || c.sub.as_deref() != Some(&client.id) {
        return Err("the client assertion's iss and sub must both be the client_id".into());
    }
    let ours = |a: &str| {
        a == issuer
            || a.strip_prefix(issuer)
                .is_some_and(|path| AUDIENCE_PATHS.contains(&path))
    };
    let aud_ok = match &c.aud {
        Some(Audience::One(a)) => ours(a),
        Some(Audience::Many(list)) => list.iter().any(|a| ours(a)),
        None => false,
    };
    if !aud_ok {
        return Err(format!(
            "the client assertion's aud must be this server's issuer ({issuer}) or its token \
             endpoint"
        ));
    }
    let Some(exp) = c.exp else {
        return Err("the client assertion has no exp".into());
    };
    if exp <= now - LEEWAY {
        return Err("the client assertion has expired".into());
    }
    if exp > now + MAX_LIFETIME {
        return Err(format!(
            "the client assertion's exp is more than {MAX_LIFETIME} seconds away: make \
             short-lived assertions"
        ));
    }
    if c.nbf.is_some_and(|t| t > now + LEEWAY) || c.iat.is_some_and(|t| t > now + LEEWAY) {
        return Err("the client assertion is not valid yet (nbf or iat in the future)".into());
    }
    match c.jti.as_deref() {
        Some(j) if !j.is_empty() && j.len() <= 256 => Ok(()),
        Some(_) => Err("the client assertion's jti must be 1 to 256 bytes".into()),
        None => Err("the client assertion has no jti (RFC 7523 section 3)".into()),
    }
}
