//! The public keys of `private_key_jwt` clients, as the token endpoint needs them: a registered
//! JWK Set parsed once, or a `jwks_uri` fetched and cached for [`FRESH`]. An assertion that
//! names a key the cache does not hold fetches again (the client rotated its keys), but no
//! more often than every [`REFETCH_AFTER`] per client, so assertions naming random keys cannot
//! turn Latchkey into a flood against the client's server. When a fetch fails the keys last
//! fetched stay in use.

use crate::crypto::client_jwk::{ClientJwks, MAX_JWKS_BYTES};
use crate::store::client_keys::ClientKeys;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long fetched keys are used before they are fetched again.
pub const FRESH: Duration = Duration::from_secs(300);
/// The shortest time between two fetches of one client's `jwks_uri`.
pub const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// How long a fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

struct Entry {
    source: ClientKeys,
    keys: Option<Arc<ClientJwks>>,
    fetched: Instant,
}

/// This node's cache of client keys, by client id.
pub struct ClientKeyCache {
    http: reqwest::Client,
    map: RwLock<HashMap<String, Entry>>,
}

/// Whether a `jwks_uri` may be registered: `https`, or `http` to a loopback address (a
/// client on the same machine, and tests). No fragment, no credentials, at most 2,000 bytes.
pub fn check_jwks_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err("a jwks_uri must use https (http only to a loopback address)".into());
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("a jwks_uri has no fragment and no user name or password".into());
    }
    if uri.len() > 2000 {
        return Err("a jwks_uri is at most 2000 bytes".into());
    }
    Ok(())
}

impl ClientKeyCache {
    pub fn new() -> anyhow::Result<ClientKeyCache> {
        Ok(ClientKeyCache {
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
                .build()?,
            map: RwLock::new(HashMap::new()),
        })
    }

    /// The keys of `client` from `source`. `stale`: the cached keys failed the assertion at
    /// hand, so a `jwks_uri` is fetched again if [`REFETCH_AFTER`] has passed. `Err`: why no
    /// keys are available (a registered set that no longer parses, a `jwks_uri` that has never
    /// answered with a usable set).
    pub async fn keys(
        &self,
        client: &str,
        source: &ClientKeys,
        stale: bool,
    ) -> Result<Arc<ClientJwks>, String> {
        let cached = self.map.read().ok().and_then(|m| {
            m.get(client)
                .filter(|e| &e.source == source)
                .map(|e| (e.keys.clone(), e.fetched.elapsed()))
        });
        let uri = match source {
            ClientKeys::Jwks(json) => {
                if let Some((Some(keys), _)) = cached {
                    return Ok(keys);
                }
                let keys = Arc::new(ClientJwks::parse(json.as_bytes()).map_err(|e| e.0)?);
                self.put(client, source, Some(keys.clone()));
                return Ok(keys);
            }
            ClientKeys::JwksUri(uri) => uri,
        };
        let (held, age) = match cached {
            Some((held, age)) => (held, Some(age)),
            None => (None, None),
        };
        let due = match age {
            None => true,
            Some(age) => age >= FRESH || ((stale || held.is_none()) && age >= REFETCH_AFTER),
        };
        if !due {
            return held.ok_or_else(|| {
                "the client's jwks_uri gave no usable keys; Latchkey tries again shortly".into()
            });
        }
        match self.fetch(uri).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.put(client, source, Some(keys.clone()));
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(client, jwks_uri = %uri, error = %e, "fetching a client's keys failed");
                self.put(client, source, held.clone());
                held.ok_or(e)
            }
        }
    }

    fn put(&self, client: &str, source: &ClientKeys, keys: Option<Arc<ClientJwks>>) {
        if let Ok(mut map) = self.map.write() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(
                client.to_owned(),
                Entry {
                    source: source.clone(),
                    keys,
                    fetched: Instant::now(),
                },
            );
        }
    }

    async fn fetch(&self, uri: &str) -> Result<ClientJwks, String> {
        let mut resp = self
            .http
            .get(uri)
            .header("Accept", "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| format!("the client's jwks_uri did not answer: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!(
                "the client's jwks_uri answered HTTP {}",
                resp.status().as_u16()
            ));
        }
        let too_big = || {
            format!(
                "the client's jwks_uri sent more than {} KiB",
                MAX_JWKS_BYTES / 1024
            )
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading the client's jwks_uri failed: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        ClientJwks::parse(&body).map_err(|e| format!("the client's jwks_uri: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::check_jwks_uri;

    #[test]
    fn jwks_uri_must_be_https_except_on_loopback() {
        assert!(check_jwks_uri("https://rp.example/jwks.json").is_ok());
        assert!(check_jwks_uri("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_jwks_uri("http://[::1]/jwks").is_ok());
        assert!(check_jwks_uri("http://localhost/jwks").is_ok());
        assert!(check_jwks_uri("http://rp.example/jwks.json").is_err());
        assert!(check_jwks_uri("https://u:p@rp.example/jwks.json").is_err());
        assert!(check_jwks_uri("https://rp.example/jwks.json#x").is_err());
        assert!(check_jwks_uri("file:///etc/passwd").is_err());
        assert!(check_jwks_uri("/jwks.json").is_err());
    }
}
