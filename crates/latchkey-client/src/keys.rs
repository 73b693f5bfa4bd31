//! Verification keys: JWKs (RFC 7517) parsed once into what ring needs, and the sources they
//! come from. A JWK without `kid`, without `alg`, with `use` other than `sig`, or of a type
//! Latchkey does not sign with is ignored: the algorithm a token is checked with always comes
//! from its key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_core::SigningAlg;
use serde::Deserialize;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A public key ready for ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    pub kid: String,
    pub alg: SigningAlg,
    material: Material,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { point: Vec<u8> },
    Ed25519 { key: Vec<u8> },
}

impl VerificationKey {
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use ring::signature as s;
        match &self.material {
            Material::Rsa { n, e } => s::RsaPublicKeyComponents { n, e }
                .verify(&s::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok(),
            Material::P256 { point } => {
                s::UnparsedPublicKey::new(&s::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            Material::Ed25519 { key } => s::UnparsedPublicKey::new(&s::ED25519, key)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn b64(v: &Option<String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(v.as_deref()?).ok()
}

impl RawJwk {
    fn parse(self) -> Option<VerificationKey> {
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        let alg: SigningAlg = self.alg.as_deref()?.parse().ok()?;
        let material = match (alg, self.kty.as_str(), self.crv.as_deref()) {
            (SigningAlg::RS256, "RSA", _) => {
                let n = b64(&self.n)?;
                // RFC 7518 3.3: at least 2048-bit moduli.
                if n.len() < 256 {
                    return None;
                }
                Material::Rsa {
                    n,
                    e: b64(&self.e)?,
                }
            }
            (SigningAlg::ES256, "EC", Some("P-256")) => {
                let (x, y) = (b64(&self.x)?, b64(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Material::P256 { point }
            }
            (SigningAlg::EdDSA, "OKP", Some("Ed25519")) => {
                let key = b64(&self.x)?;
                if key.len() != 32 {
                    return None;
                }
                Material::Ed25519 { key }
            }
            _ => return None,
        };
        Some(VerificationKey {
            kid: self.kid?,
            alg,
            material,
        })
    }
}

/// The usable keys of a JWKS, by `kid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: HashMap<String, Arc<VerificationKey>>,
}

impl JwkSet {
    /// Parses a JWKS document, keeping the keys Latchkey could have signed with.
    pub fn from_json(json: &[u8]) -> Result<JwkSet, FetchError> {
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        let doc: Doc = serde_json::from_slice(json)
            .map_err(|e| FetchError::new(format!("JWKS is not valid JSON: {e}")))?;
        let keys = doc
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<RawJwk>(v).ok()?.parse())
            .map(|k| (k.kid.clone(), Arc::new(k)))
            .collect();
        Ok(JwkSet { keys })
    }

    pub fn get(&self, kid: &str) -> Option<&Arc<VerificationKey>> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// A fetched key set and how long it may be cached.
#[derive(Debug, Clone)]
pub struct Jwks {
    pub keys: JwkSet,
    /// From `Cache-Control: max-age`; `None` means the verifier's default.
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

impl FetchError {
    pub fn new(m: impl Into<String>) -> FetchError {
        FetchError(m.into())
    }
}

pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Jwks, FetchError>> + Send + 'a>>;

/// Where keys come from. Implement it to feed keys from anywhere (tests, files, a sidecar).
pub trait KeySource: Send + Sync + 'static {
    fn fetch(&self) -> FetchFuture<'_>;
}

/// A fixed key set, for offline use and tests.
pub struct StaticKeys(pub JwkSet);

impl StaticKeys {
    pub fn from_json(json: &[u8]) -> Result<StaticKeys, FetchError> {
        Ok(StaticKeys(JwkSet::from_json(json)?))
    }
}

impl KeySource for StaticKeys {
    fn fetch(&self) -> FetchFuture<'_> {
        let keys = self.0.clone();
        Box::pin(async move {
            Ok(Jwks {
                keys,
                max_age: Some(Duration::from_secs(u64::MAX / 4)),
            })
        })
    }
}

/// Parses `max-age` out of a `Cache-Control` value (`no-store`/`no-cache` mean zero).
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub fn cache_max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for d in value.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

/// Keys fetched over plain HTTP could be replaced by anyone on the path: only loopback hosts
/// (development, tests, a local sidecar) may skip TLS.
#[cfg(feature = "http")]
fn require_https(url: &str) -> Result<(), FetchError> {
    let rest = url.strip_prefix("http://");
    let Some(rest) = rest else {
        return if url.starts_with("https://") {
            Ok(())
        } else {
            Err(FetchError::new(format!("`{url}` is not an http(s) URL")))
        };
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let loopback = host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(FetchError::new(format!(
            "`{url}` must use https (plain http only on localhost)"
        )))
    }
}

/// Keys from an issuer's `jwks_uri`, found by OpenID Connect discovery.
#[cfg(feature = "http")]
pub struct HttpKeySource {
    http: reqwest::Client,
    jwks_uri: String,
}

#[cfg(feature = "http")]
impl HttpKeySource {
    /// Reads `{issuer}/.well-known/openid-configuration`, checks its `issuer`, and uses its
    /// `jwks_uri`. Both must be `https` unless they point at a loopback host.
    pub async fn discover(issuer: &str) -> Result<HttpKeySource, FetchError> {
        require_https(issuer)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FetchError::new(e.to_string()))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc: serde_json::Value = http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| FetchError::new(format!("discovery at {url} failed: {e}")))?
            .json()
            .await
            .map_err(|e| FetchError::new(format!("discovery at {url} is not JSON: {e}")))?;
        if doc["issuer"].as_str() != Some(issuer.trim_end_matches('/')) {
            return Err(FetchError::new(format!(
                "discovery names issuer {} instead of {issuer}",
                doc["issuer"]
            )));
        }
        let jwks_uri = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| FetchError::new("discovery has no jwks_uri"))?
            .to_owned();
        require_https(&jwks_uri)?;
        Ok(HttpKeySource { http, jwks_uri })
    }

    /// Keys from a known JWKS URL (`https`, or a loopback host).
    pub fn with_jwks_uri(jwks_uri: impl Into<String>) -> Result<HttpKeySource, FetchError> {
        let jwks_uri = jwks_uri.into();
        require_https(&jwks_uri)?;
        Ok(HttpKeySource {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| FetchError::new(e.to_string()))?,
            jwks_uri,
        })
    }
}

#[cfg(feature = "http")]
impl KeySource for HttpKeySource {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let r = self
                .http
                .get(&self.jwks_uri)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| FetchError::new(format!("fetching {} failed: {e}", self.jwks_uri)))?;
            let max_age = r
                .headers()
                .get("cache-control")
                .and_then(|v| v.to_str().ok())
                .and_then(cache_max_age);
            let body = r
                .bytes()
                .await
                .map_err(|e| FetchError::new(format!("reading {} failed: {e}", self.jwks_uri)))?;
            Ok(Jwks {
                keys: JwkSet::from_json(&body)?,
                max_age,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "http")]
    #[test]
    fn keys_over_plain_http_only_from_loopback() {
        assert!(require_https("https://id.lab.example").is_ok());
        assert!(require_https("http://127.0.0.1:8080/jwks.json").is_ok());
        assert!(require_https("http://localhost:8080").is_ok());
        assert!(require_https("http://[::1]:8080/x").is_ok());
        assert!(require_https("http://id.lab.example/jwks.json").is_err());
        assert!(require_https("http://127.0.0.1.evil.example/jwks.json").is_err());
        assert!(require_https("ftp://x").is_err());
    }

    #[test]
    fn cache_control_parsing() {
        assert_eq!(
            cache_max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(cache_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_max_age("public"), None);
    }

    #[test]
    fn keys_without_kid_alg_or_with_enc_use_are_ignored() {
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let json = format!(
            r#"{{"keys":[
            {{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"a","alg":"EdDSA","use":"sig"}},
            {{"kty":"OKP","crv":"Ed25519","x":"{x}","alg":"EdDSA"}},
            {{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"c"}},
            {{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"d","alg":"EdDSA","use":"enc"}},
            {{"kty":"oct","k":"c2VjcmV0","kid":"e","alg":"HS256"}}
        ]}}"#
        );
        let set = JwkSet::from_json(json.as_bytes()).unwrap();
        assert_eq!(set.kids().collect::<Vec<_>>(), vec!["a"]);
    }
}
