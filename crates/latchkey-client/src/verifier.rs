//! Token verification. The checks, in order: compact JWS syntax; `kid` names a known key
//! (refetching once, rate-limited, when it does not); the header `alg` equals the key's `alg`
//! (so `none`, HMAC with a public key, or RS/ES confusion cannot work); the signature, with
//! ring; `typ` (`at+jwt` for access tokens per RFC 9068, never for ID tokens); `iss`; `aud`;
//! `exp`, `nbf` and `iat` within the leeway; `lab` is one of the labs the service serves.
//! Logout tokens share the first four steps and have their own claim checks (`logout.rs`).

use crate::cache::{KeyCache, KeyStatus};
use crate::error::VerifyError;
use crate::grants::{FeatureMap, Grants};
use crate::keys::{FetchError, JwkSet, KeySource, VerificationKey};
use crate::replay::ReplayCache;
use latchkey_core::jws;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct VerifierOptions {
    /// The issuer, exactly as in its discovery document (no trailing slash).
    pub issuer: String,
    /// The audience this service accepts: for Latchkey access tokens, the client id the
    /// service logs users in with (or is called by).
    pub audience: String,
    /// Allowed clock skew for `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Key-set lifetime when the source does not say (`Cache-Control`).
    pub default_max_age: Duration,
    /// Refetch the key set on an unknown `kid` (or when it is due) at most this often.
    pub min_refetch_interval: Duration,
    /// How long past their lifetime cached keys may still be used while the issuer cannot be
    /// reached. After that every token is refused until a fetch succeeds (fail closed).
    pub max_stale: Duration,
    /// The labs whose tokens this service accepts. It must be chosen ([`VerifierOptions::lab`],
    /// [`VerifierOptions::labs`] or [`VerifierOptions::any_lab`]): a verifier left at
    /// [`Labs::Unset`] refuses to start, so that no service accepts another lab's grants by
    /// omission.
    pub labs: Labs,
    /// DPoP (RFC 9449): how old a proof may be, and this service's public origin for `htu`.
    pub dpop: crate::dpop::DpopOptions,
    /// Back-channel logout: at most this many logout tokens' `jti`s remembered at once (each
    /// until its token expires); past it, new logout tokens are refused until old ones age
    /// out (fail closed).
    pub logout_replay_capacity: usize,
}

/// Which labs' tokens a service accepts (the token's `lab` claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Labs {
    /// Not chosen: the verifier refuses to start.
    Unset,
    /// Any lab, and tokens for none: a service of every lab (registered for every lab in
    /// Latchkey), or one that checks `Grants::lab` itself.
    Any,
    /// Only tokens whose `lab` is one of these lab ids.
    Only(BTreeSet<String>),
}

impl VerifierOptions {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> VerifierOptions {
        VerifierOptions {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            default_max_age: Duration::from_secs(300),
            min_refetch_interval: Duration::from_secs(10),
            max_stale: Duration::from_secs(24 * 3600),
            labs: Labs::Unset,
            dpop: crate::dpop::DpopOptions::default(),
            logout_replay_capacity: 10_000,
        }
    }

    /// Accept tokens of this lab (its id, as in the token's `lab` claim and `latchkey lab
    /// list`); call again to add more labs.
    pub fn lab(mut self, id: impl Into<String>) -> VerifierOptions {
        let id = id.into();
        match &mut self.labs {
            Labs::Only(set) => {
                set.insert(id);
            }
            _ => self.labs = Labs::Only(BTreeSet::from([id])),
        }
        self
    }

    /// Accept tokens of these labs (ids) only.
    pub fn labs<I, S>(mut self, ids: I) -> VerifierOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.labs = Labs::Only(ids.into_iter().map(Into::into).collect());
        self
    }

    /// Accept tokens of every lab (and of none): for a service registered for every lab.
    pub fn any_lab(mut self) -> VerifierOptions {
        self.labs = Labs::Any;
        self
    }

    /// Refuses options that would let a verifier start without knowing its labs.
    fn checked(self) -> Result<VerifierOptions, FetchError> {
        match &self.labs {
            Labs::Unset => Err(FetchError::new(
                "VerifierOptions: say which labs this service serves (`.lab(\"<lab id>\")`, `.labs([..])`), or `.any_lab()` for a service of every lab",
            )),
            Labs::Only(set) if set.is_empty() => Err(FetchError::new(
                "VerifierOptions: `.labs([])` names no lab; give at least one lab id",
            )),
            _ => Ok(self),
        }
    }
}

/// Claims Latchkey puts in its tokens, as a verifier reads them.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    #[serde(default)]
    pub sid: Option<String>,
    /// The grant an access token belongs to (Latchkey's `gid`; users' tokens only).
    #[serde(default)]
    pub gid: Option<String>,
    #[serde(default)]
    pub lab: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The DPoP key an access token is bound to (RFC 9449 section 6.1).
    #[serde(default)]
    pub cnf: Option<latchkey_core::Confirmation>,
}

pub(crate) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Id,
}

/// Verifies Latchkey tokens. Cheap to clone; share one per service.
#[derive(Clone)]
pub struct Verifier {
    opts: Arc<VerifierOptions>,
    cache: Arc<KeyCache>,
    map: Arc<FeatureMap>,
    pub(crate) dpop_replay: Arc<ReplayCache>,
    pub(crate) logout_replay: Arc<ReplayCache>,
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Verifier {
    /// Keys from any source; fetches them once before returning.
    pub async fn with_source(
        opts: VerifierOptions,
        source: impl KeySource,
    ) -> Result<Verifier, FetchError> {
        let opts = opts.checked()?;
        let cache = Arc::new(KeyCache::new(
            Box::new(source),
            opts.default_max_age,
            opts.min_refetch_interval,
            opts.max_stale,
        ));
        cache.fetch(None).await?;
        Ok(Verifier {
            opts: Arc::new(opts),
            cache,
            map: Arc::new(FeatureMap::default()),
            dpop_replay: Arc::default(),
            logout_replay: Arc::default(),
        })
    }

    /// Discovery and JWKS from the issuer over HTTP.
    #[cfg(feature = "http")]
    pub async fn discover(opts: VerifierOptions) -> Result<Verifier, FetchError> {
        let opts = opts.checked()?;
        let source = crate::keys::HttpKeySource::discover(&opts.issuer).await?;
        Verifier::with_source(opts, source).await
    }

    /// A fixed JWKS document, for offline use: no network, ever.
    pub fn from_jwks(opts: VerifierOptions, jwks_json: &[u8]) -> Result<Verifier, FetchError> {
        let opts = opts.checked()?;
        let keys = JwkSet::from_json(jwks_json)?;
        let cache = Arc::new(KeyCache::new(
            Box::new(crate::keys::StaticKeys(keys.clone())),
            opts.default_max_age,
            Duration::from_secs(u64::MAX / 4),
            Duration::from_secs(u64::MAX / 4),
        ));
        cache.seed(keys, Duration::from_secs(u64::MAX / 4));
        Ok(Verifier {
            opts: Arc::new(opts),
            cache,
            map: Arc::new(FeatureMap::default()),
            dpop_replay: Arc::default(),
            logout_replay: Arc::default(),
        })
    }

    /// Derive features from roles and scopes with the service's own map.
    pub fn with_feature_map(mut self, map: FeatureMap) -> Verifier {
        self.map = Arc::new(map);
        self
    }

    pub fn options(&self) -> &VerifierOptions {
        &self.opts
    }

    /// The key cache's health.
    pub fn status(&self) -> KeyStatus {
        self.cache.status()
    }

    /// Verifies an RFC 9068 access token and returns what it grants.
    pub async fn verify_access_token(&self, token: &str) -> Result<Grants, VerifyError> {
        let claims = self.verify(token, Kind::Access, None).await?;
        Ok(self.grants(claims))
    }

    /// Verifies an ID token (OIDC Core 3.1.3.7) for this service's client id.
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Claims, VerifyError> {
        self.verify(token, Kind::Id, nonce).await
    }

    /// Like [`Verifier::verify_access_token`], synchronously and without network: an unknown
    /// `kid` is refused instead of triggering a refetch. For hot paths and benchmarks.
    pub fn verify_access_token_cached(&self, token: &str, now: i64) -> Result<Grants, VerifyError> {
        let parsed = jws::parse(token).map_err(|e| VerifyError::Malformed(e.0.into()))?;
        let key = self
            .cache
            .cached(
                parsed
                    .header
                    .kid
                    .as_deref()
                    .ok_or(VerifyError::UnknownKey)?,
            )
            .ok_or(VerifyError::UnknownKey)?;
        let claims = self.check(&parsed, &key, Kind::Access, None, now)?;
        Ok(self.grants(claims))
    }

    fn grants(&self, claims: Claims) -> Grants {
        let g = Grants::from_claims(claims);
        if self.map.is_empty() {
            g
        } else {
            g.with_map(&self.map)
        }
    }

    async fn verify(
        &self,
        token: &str,
        kind: Kind,
        nonce: Option<&str>,
    ) -> Result<Claims, VerifyError> {
        let parsed = jws::parse(token).map_err(|e| VerifyError::Malformed(e.0.into()))?;
        let key = self.signing_key(&parsed).await?;
        self.check(&parsed, &key, kind, nonce, now_unix())
    }

    /// The key named by the token's `kid`, refetching the key set once (rate-limited) when
    /// it is unknown.
    pub(crate) async fn signing_key(
        &self,
        t: &jws::Compact<'_>,
    ) -> Result<Arc<VerificationKey>, VerifyError> {
        let kid = t.header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        self.cache.get(kid).await.ok_or(VerifyError::UnknownKey)
    }

    fn check(
        &self,
        t: &jws::Compact<'_>,
        key: &VerificationKey,
        kind: Kind,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<Claims, VerifyError> {
        check_signature(t, key)?;
        let is = |want: &str| typ_is(t.header.typ.as_deref(), want);
        match kind {
            Kind::Access if !is("at+jwt") => {
                return Err(VerifyError::WrongType {
                    expected: "at+jwt access token",
                });
            }
            Kind::Id if t.header.typ.is_some() && !is("jwt") => {
                return Err(VerifyError::WrongType {
                    expected: "ID token",
                });
            }
            _ => {}
        }
        let claims: Claims = serde_json::from_slice(&t.payload)
            .map_err(|e| VerifyError::Malformed(format!("claims: {e}")))?;
        if claims.iss != self.opts.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !claims.aud.iter().any(|a| *a == self.opts.audience) {
            return Err(VerifyError::WrongAudience);
        }
        let leeway = self.opts.leeway.as_secs() as i64;
        if claims.exp <= now - leeway {
            return Err(VerifyError::Expired);
        }
        if claims.nbf.is_some_and(|n| n > now + leeway)
            || claims.iat.is_some_and(|i| i > now + leeway)
        {
            return Err(VerifyError::NotYetValid);
        }
        // One lab's grants never open another lab's service: the token must be for one of the
        // labs this service serves (a token for no lab only passes `Labs::Any`).
        if let Labs::Only(labs) = &self.opts.labs
            && !claims.lab.as_ref().is_some_and(|l| labs.contains(l))
        {
            return Err(VerifyError::WrongLab);
        }
        if kind == Kind::Id {
            // OIDC Core 3.1.3.7: iat is required; azp, when present, must be this client.
            if claims.iat.is_none() {
                return Err(VerifyError::Malformed("ID token without iat".into()));
            }
            if claims
                .azp
                .as_deref()
                .is_some_and(|a| a != self.opts.audience)
            {
                return Err(VerifyError::WrongAudience);
            }
            if let Some(expected) = nonce
                && claims.nonce.as_deref() != Some(expected)
            {
                return Err(VerifyError::NonceMismatch);
            }
            if claims.aud.len() > 1 && claims.azp.as_deref() != Some(self.opts.audience.as_str()) {
                return Err(VerifyError::WrongAudience);
            }
        }
        Ok(claims)
    }
}

/// The header `alg` must be the key's (so `none`, HMAC with a public key, or RS/ES confusion
/// cannot work), then the signature, with ring.
pub(crate) fn check_signature(
    t: &jws::Compact<'_>,
    key: &VerificationKey,
) -> Result<(), VerifyError> {
    if t.header.alg != key.alg.as_str() {
        return Err(VerifyError::AlgorithmMismatch);
    }
    if !key.verify(t.signing_input.as_bytes(), &t.signature) {
        return Err(VerifyError::BadSignature);
    }
    Ok(())
}

/// Whether a header `typ` is `want`. RFC 7515 4.1.9: `typ` compares case-insensitively, and
/// `application/` may be omitted.
pub(crate) fn typ_is(typ: Option<&str>, want: &str) -> bool {
    typ.is_some_and(|v| {
        let v = match v.get(..12) {
            Some(p) if p.eq_ignore_ascii_case("application/") => &v[12..],
            _ => v,
        };
        v.eq_ignore_ascii_case(want)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_KEYS: &[u8] = br#"{"keys":[]}"#;

    #[test]
    fn a_verifier_must_be_told_which_labs_it_serves() {
        let unset = Verifier::from_jwks(VerifierOptions::new("https://id.example", "svc"), NO_KEYS);
        let e = unset.err().expect("refused without labs").0;
        assert!(e.contains(".lab(") && e.contains(".any_lab()"), "{e}");
        let empty = VerifierOptions::new("https://id.example", "svc").labs(Vec::<String>::new());
        assert!(Verifier::from_jwks(empty, NO_KEYS).is_err());
        for ok in [
            VerifierOptions::new("https://id.example", "svc").lab("a"),
            VerifierOptions::new("https://id.example", "svc").any_lab(),
        ] {
            assert!(Verifier::from_jwks(ok, NO_KEYS).is_ok());
        }
    }

    #[test]
    fn lab_adds_to_the_labs_already_named() {
        let o = VerifierOptions::new("https://id.example", "svc")
            .lab("a")
            .lab("b");
        assert_eq!(
            o.labs,
            Labs::Only(BTreeSet::from(["a".to_owned(), "b".to_owned()]))
        );
        // `any_lab` after `lab` wins, and `lab` after `any_lab` narrows again.
        assert_eq!(o.clone().any_lab().labs, Labs::Any);
        assert_eq!(
            o.any_lab().lab("c").labs,
            Labs::Only(BTreeSet::from(["c".to_owned()]))
        );
    }
}
