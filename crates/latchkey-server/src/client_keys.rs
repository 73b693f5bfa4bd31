//! The public keys of `private_key_jwt` clients, as the token endpoint needs them: a registered
//! JWK Set parsed once, or a `jwks_uri` fetched and cached for [`FRESH`]. An assertion that
//! names a key the cache does not hold fetches again (the client rotated its keys), but no
//! more often than every [`REFETCH_AFTER`] per client (one fetch at a time, which concurrent
//! requests wait for), so assertions naming random keys cannot turn Latchkey into a flood
//! against the client's server. When a fetch fails the keys last fetched stay in use for at
//! most [`MAX_STALE`]; a document with no keys is an answer: the client then has none.

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

/// How long keys fetched from a `jwks_uri` stay in use while it cannot be fetched again.
pub const MAX_STALE: Duration = Duration::from_secs(3600);

struct Entry {
    source: ClientKeys,
    keys: Option<Arc<ClientJwks>>,
    /// When `keys` were fetched (`None`: never, or a registered set).
    fetched: Option<Instant>,
    /// When a fetch last began: at most one every [`REFETCH_AFTER`], whatever its outcome.
    attempted: Option<Instant>,
    /// Held while fetching, so that concurrent requests wait for one fetch instead of each
    /// making their own.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

/// This node's cache of client keys, by client id.
pub struct ClientKeyCache {
    http: reqwest::Client,
    map: RwLock<HashMap<String, Entry>>,
}

/// Whether a `jwks_uri` may be registered: `https`, or `http` to a loopback address (a
/// client on the same machine, and tests). No fragment, no credentials, at most 2,000 bytes.
pub fn check_jwks_uri(uri: &str) -> Result<(), String> {
    check_outbound_uri("a jwks_uri", uri).map(|_| ())
}

/// Whether `uri`, a URL Latchkey itself calls (`what`, e.g. "a jwks_uri"), may be registered:
/// the rules of [`check_jwks_uri`]. The parsed URL.
pub fn check_outbound_uri(what: &str, uri: &str) -> Result<url::Url, String> {
    // The URL parser would drop tabs and line breaks: what is stored must be what was checked.
    if uri.chars().any(char::is_control) {
        return Err(format!("{what} has no control characters"));
    }
    let url = url::Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(format!(
            "{what} must use https (http only to a loopback address)"
        ));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{what} has no fragment and no user name or password"
        ));
    }
    if uri.len() > 2000 {
        return Err(format!("{what} is at most 2000 bytes"));
    }
    Ok(url)
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
    /// hand, so a `jwks_uri` is fetched again if [`REFETCH_AFTER`] has passed since the last
    /// fetch began. `Err`: why no keys are available, in words for the caller (the details of
    /// a failed fetch go to the log only).
    pub async fn keys(
        &self,
        client: &str,
        source: &ClientKeys,
        stale: bool,
    ) -> Result<Arc<ClientJwks>, String> {
        let uri = match source {
            ClientKeys::Jwks(json) => {
                if let Some(keys) = self.entry(client, source, |e| e.keys.clone()).flatten() {
                    return Ok(keys);
                }
                let keys = Arc::new(ClientJwks::parse(json.as_bytes()).map_err(|e| e.0)?);
                self.with_entry(client, source, |e| e.keys = Some(keys.clone()));
                return Ok(keys);
            }
            ClientKeys::JwksUri(uri) => uri,
        };
        let since = |t: Option<Instant>| t.map_or(Duration::MAX, |t| t.elapsed());
        let usable = |held: Option<Arc<ClientJwks>>, fetched: Option<Instant>| match held {
            Some(keys) if since(fetched) < MAX_STALE => Ok(keys),
            _ => Err(
                "the client's keys are not available: its jwks_uri could not be fetched \
                      (Latchkey tries again shortly)"
                    .to_owned(),
            ),
        };
        let due = |held: &Option<Arc<ClientJwks>>, fetched, attempted| {
            since(attempted) >= REFETCH_AFTER
                && (since(fetched) >= FRESH || stale || held.is_none())
        };
        let (held, fetched, attempted, fetching) = self.with_entry(client, source, |e| {
            (e.keys.clone(), e.fetched, e.attempted, e.fetching.clone())
        });
        if !due(&held, fetched, attempted) {
            if stale && fetching.try_lock().is_err() {
                // A fetch is under way: its keys may verify what the held ones did not.
                drop(fetching.lock().await);
                let (held, fetched) = self
                    .entry(client, source, |e| (e.keys.clone(), e.fetched))
                    .unwrap_or((None, None));
                return usable(held, fetched);
            }
            return usable(held, fetched);
        }
        // One fetch at a time. While another request fetches, the keys held serve a request
        // they can verify; one they cannot (`stale`: a rotated key), or with none usable,
        // waits for that fetch.
        let _one_at_a_time = match fetching.try_lock() {
            Ok(guard) => guard,
            Err(_) if !stale && usable(held.clone(), fetched).is_ok() => {
                return usable(held, fetched);
            }
            Err(_) => fetching.lock().await,
        };
        let (held, fetched, attempted) = self
            .entry(client, source, |e| (e.keys.clone(), e.fetched, e.attempted))
            .unwrap_or((None, None, None));
        if !due(&held, fetched, attempted) {
            return usable(held, fetched);
        }
        self.with_entry(client, source, |e| e.attempted = Some(Instant::now()));
        // Parsing checks every key (an RSA modulus's primality among them): off the async
        // workers.
        match self.fetch(uri).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                self.with_entry(client, source, |e| {
                    e.keys = Some(keys.clone());
                    e.fetched = Some(Instant::now());
                });
                Ok(keys)
            }
            Err(e) => {
                tracing::warn!(client, jwks_uri = %uri, error = %e, "fetching a client's keys failed");
                usable(held, fetched)
            }
        }
    }

    /// Reads the entry of `client` if it is for `source`.
    fn entry<T>(
        &self,
        client: &str,
        source: &ClientKeys,
        f: impl FnOnce(&Entry) -> T,
    ) -> Option<T> {
        let map = self.map.read().ok()?;
        map.get(client).filter(|e| &e.source == source).map(f)
    }

    /// Changes the entry of `client`, made anew when there is none or it is for another source.
    fn with_entry<T>(
        &self,
        client: &str,
        source: &ClientKeys,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> T {
        let mut fresh = || Entry {
            source: source.clone(),
            keys: None,
            fetched: None,
            attempted: None,
            fetching: Arc::new(tokio::sync::Mutex::new(())),
        };
        // One entry per client with keys: registered clients only, so the map stays bounded.
        let Ok(mut map) = self.map.write() else {
            return f(&mut fresh());
        };
        let e = map.entry(client.to_owned()).or_insert_with(&mut fresh);
        if &e.source != source {
            *e = fresh();
        }
        f(e)
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
        tokio::task::spawn_blocking(move || ClientJwks::parse_fetched(&body))
            .await
            .map_err(|_| "parsing the client's keys failed".to_owned())?
            .map_err(|e| format!("the client's jwks_uri: {e}"))
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
