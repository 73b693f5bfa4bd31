//! What every web framework integration shares ([`crate::actix`], [`crate::axum`],
//! [`crate::tower`]): how a request's access token is verified, the refusals and how they are
//! answered (RFC 6750 section 3: 401 with `WWW-Authenticate`, 403 for a missing grant; RFC 9449
//! section 7.1: a `DPoP` challenge; RFC 9470: 401 `insufficient_user_authentication`), the
//! [`Feature`] and [`Level`] markers of the guards, and the back-channel logout request rules
//! (OpenID Connect Back-Channel Logout 1.0 section 2.5 and 2.8). The integrations only turn
//! these into their framework's types.

use crate::dpop::Presented;
use crate::error::{StepUpRequired, VerifyError};
use crate::grants::Grants;
use crate::logout::LogoutToken;
use crate::verifier::Verifier;
use latchkey_core::Acr;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("{0}")]
    Invalid(VerifyError),
    /// Refused, for a request that used the DPoP scheme or sent a DPoP-bound token as a
    /// bearer token: answered with a `DPoP` challenge (RFC 9449 section 7.1).
    #[error("{0}")]
    InvalidDpop(VerifyError),
    #[error("the token does not grant `{0}`")]
    Forbidden(String),
    #[error("{0}")]
    StepUp(StepUpRequired),
    #[error("the service has no token verifier configured")]
    NotConfigured,
}

/// A refusal as an HTTP answer, whatever the framework: status, `WWW-Authenticate` (when
/// any), and the JSON body `{"error", "error_description"}` (when any). Every answer also
/// carries `Cache-Control: no-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub body: Option<serde_json::Value>,
}

/// `s` in RFC 6750's `error_description` character set (printable ASCII without `"` and `\\`):
/// a message that quotes a token's content cannot break the challenge or smuggle control
/// characters into it.
pub(crate) fn quote(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

fn dpop_algs() -> String {
    latchkey_core::jose::JwsAlg::ALL
        .map(latchkey_core::jose::JwsAlg::as_str)
        .join(" ")
}

impl AuthError {
    /// The HTTP status: 403 for a missing grant, 500 without a verifier, else 401.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Forbidden(_) => 403,
            AuthError::NotConfigured => 500,
            _ => 401,
        }
    }

    /// The answer to send (RFC 6750 section 3, RFC 9449 section 7.1, RFC 9470 section 3).
    pub fn answer(&self) -> Answer {
        let (www, error) = match self {
            AuthError::Missing => (Some(format!("Bearer, DPoP algs=\"{}\"", dpop_algs())), None),
            AuthError::InvalidDpop(e) => {
                let code = if e.is_dpop_proof() {
                    "invalid_dpop_proof"
                } else {
                    "invalid_token"
                };
                (
                    Some(format!(
                        "DPoP error=\"{code}\", error_description=\"{}\", algs=\"{}\"",
                        quote(&e.to_string()),
                        dpop_algs()
                    )),
                    Some(code),
                )
            }
            AuthError::Invalid(e) => (
                Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quote(&e.to_string())
                )),
                Some("invalid_token"),
            ),
            AuthError::Forbidden(f) => (
                Some(format!(
                    "Bearer error=\"insufficient_scope\", error_description=\"{}\"",
                    quote(&format!("the token does not grant {f}"))
                )),
                Some("insufficient_scope"),
            ),
            AuthError::StepUp(s) => (
                Some(s.www_authenticate()),
                Some("insufficient_user_authentication"),
            ),
            AuthError::NotConfigured => (None, Some("server_error")),
        };
        Answer {
            status: self.status(),
            www_authenticate: www,
            body: error
                .map(|e| serde_json::json!({"error": e, "error_description": self.to_string()})),
        }
    }
}

/// Verifies a request's access token as it presented it: `authorization` (the
/// `Authorization` header, `None` when absent or not text), `proofs` (its `DPoP` header
/// values), `method`, and `uri` as the client addressed it (for a proof's `htu`). A bearer
/// token, or a DPoP-bound one with its proof (RFC 9449 section 7).
pub async fn authenticate<'a>(
    verifier: &Verifier,
    authorization: Option<&'a str>,
    proofs: impl Iterator<Item = &'a str>,
    method: &str,
    uri: &str,
) -> Result<Grants, AuthError> {
    let presented = Presented::from_headers(authorization.ok_or(AuthError::Missing)?, proofs)
        .ok_or(AuthError::Missing)?;
    verifier
        .verify_request(presented, method, uri)
        .await
        .map_err(|e| match (presented, &e) {
            (Presented::Dpop { .. }, _) | (_, VerifyError::DpopBound) => AuthError::InvalidDpop(e),
            _ => AuthError::Invalid(e),
        })
}

/// The request's URI as the client addressed it, for a DPoP proof's `htu`: the verifier's
/// configured public origin ([`crate::DpopOptions::public_origin`]), or `scheme` and the
/// request's `Host`, then `path`. `Forwarded` and `X-Forwarded-*` headers are not trusted
/// (anyone can send them): behind a reverse proxy, configure the public origin.
pub fn request_uri(verifier: &Verifier, scheme: &str, host: Option<&str>, path: &str) -> String {
    let origin = match &verifier.options().dpop.public_origin {
        Some(o) => o.trim_end_matches('/').to_owned(),
        None => format!("{scheme}://{}", host.unwrap_or("localhost")),
    };
    format!("{origin}{path}")
}

/// The grants a verifier accepted for a request, kept with the request: another extractor (or
/// layer) reuses them only when it checks with that same verifier, so a route with a verifier
/// of its own (another audience, other labs) verifies for itself.
#[cfg(any(feature = "actix", feature = "tower"))]
#[derive(Clone)]
pub(crate) struct Verified {
    pub by: std::sync::Arc<Verifier>,
    pub grants: Grants,
}

#[cfg(any(feature = "actix", feature = "tower"))]
impl Verified {
    /// The grants, when `verifier` is the one that accepted them.
    pub fn for_verifier(&self, verifier: &std::sync::Arc<Verifier>) -> Option<Grants> {
        std::sync::Arc::ptr_eq(&self.by, verifier).then(|| self.grants.clone())
    }
}

/// The guard a handler passes only when its token grants `F` (else 403
/// `insufficient_scope`) and is for one of the verifier's labs (else 401 `invalid_token`).
pub fn require_feature<F: Feature>(g: Grants) -> Result<Grants, AuthError> {
    if g.allows(F::NAME) {
        Ok(g)
    } else {
        Err(AuthError::Forbidden(F::NAME.to_owned()))
    }
}

/// The guard a handler passes only when the user authenticated at level `L` or stronger
/// (else an RFC 9470 step-up challenge).
pub fn require_level<L: Level>(g: Grants) -> Result<Grants, AuthError> {
    g.require_acr(L::ACR).map_err(AuthError::StepUp)?;
    Ok(g)
}

/// A feature a handler requires; declare one with [`feature!`](crate::feature).
pub trait Feature {
    const NAME: &'static str;
}

/// Declares a [`Feature`] type: `feature!(ApproveInvoices = "invoices:approve");`.
#[macro_export]
macro_rules! feature {
    ($name:ident = $value:literal) => {
        pub struct $name;
        impl $crate::guard::Feature for $name {
            const NAME: &'static str = $value;
        }
    };
}

/// An authentication strength a handler requires.
pub trait Level {
    const ACR: Acr;
}
/// Two factors.
pub struct Mfa;
impl Level for Mfa {
    const ACR: Acr = Acr::Mfa;
}
/// Phishing-resistant.
pub struct Phr;
impl Level for Phr {
    const ACR: Acr = Acr::Phr;
}

/// The largest back-channel logout request body read: a logout token is at most 16 KiB
/// ([`crate::jws::MAX_LEN`]) too.
pub const MAX_LOGOUT_BODY: usize = 16 * 1024;

/// Why a back-channel logout request was refused. Answered 400 with
/// `{"error":"invalid_request","error_description":"…"}` and `Cache-Control: no-store`
/// (OpenID Connect Back-Channel Logout 1.0 section 2.8); the description is safe to show.
#[derive(Debug, thiserror::Error)]
pub enum BackchannelLogoutError {
    #[error("the request must be application/x-www-form-urlencoded")]
    ContentType,
    #[error("the request body is larger than 16 KiB")]
    TooLarge,
    #[error("the request body could not be read")]
    Unreadable,
    #[error("the request body is not valid form data")]
    BadForm,
    #[error("the request must carry exactly one logout_token parameter")]
    TokenCount,
    #[error("{0}")]
    Invalid(VerifyError),
    /// No [`Verifier`] configured: answered 500 `server_error`.
    #[error("the service has no token verifier configured")]
    NotConfigured,
}

impl BackchannelLogoutError {
    /// 500 without a verifier, else 400.
    pub fn status(&self) -> u16 {
        match self {
            BackchannelLogoutError::NotConfigured => 500,
            _ => 400,
        }
    }

    /// The answer to send (section 2.8).
    pub fn answer(&self) -> Answer {
        let error = match self {
            BackchannelLogoutError::NotConfigured => "server_error",
            _ => "invalid_request",
        };
        Answer {
            status: self.status(),
            www_authenticate: None,
            body: Some(serde_json::json!({"error": error, "error_description": self.to_string()})),
        }
    }
}

/// Whether a request's `Content-Type` is `application/x-www-form-urlencoded` (parameters and
/// case aside).
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| {
            c.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Verifies the back-channel logout request body `body` (form data, at most
/// [`MAX_LOGOUT_BODY`], read by the caller) carrying exactly one `logout_token`, and spends
/// the token's `jti` (section 2.5, 2.6).
pub async fn logout_request(
    verifier: &Verifier,
    body: &[u8],
) -> Result<LogoutToken, BackchannelLogoutError> {
    let token = logout_token_parameter(body)?;
    verifier
        .verify_logout_token(&token)
        .await
        .map_err(BackchannelLogoutError::Invalid)
}

/// The one `logout_token` of a form body (other parameters are ignored).
pub(crate) fn logout_token_parameter(body: &[u8]) -> Result<String, BackchannelLogoutError> {
    if std::str::from_utf8(body).is_err() {
        return Err(BackchannelLogoutError::BadForm);
    }
    let mut tokens = form_urlencoded::parse(body)
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    match (tokens.next(), tokens.next()) {
        (Some(t), None) => Ok(t),
        _ => Err(BackchannelLogoutError::TokenCount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_error_description_keeps_to_its_character_set() {
        assert_eq!(quote("a\"b\\c\u{7}\né~"), "a'b'c???~");
        let e = AuthError::Invalid(VerifyError::Malformed(
            "claims: \"x\"\r\nSet-Cookie: y".into(),
        ));
        let www = e.answer().www_authenticate.unwrap();
        assert!(!www.contains('\r') && !www.contains('\n'), "{www}");
        assert_eq!(www.matches('"').count(), 4, "{www}");
    }

    #[test]
    fn a_logout_request_carries_one_form_encoded_logout_token() {
        assert_eq!(
            logout_token_parameter(b"state=a+b&logout_token=x%2Ey").unwrap(),
            "x.y"
        );
        assert!(matches!(
            logout_token_parameter(b"logout_token=a&logout_token=b"),
            Err(BackchannelLogoutError::TokenCount)
        ));
        assert!(matches!(
            logout_token_parameter(b"\xff"),
            Err(BackchannelLogoutError::BadForm)
        ));
        assert!(is_form(Some(
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
        )));
        assert!(!is_form(Some("application/json")));
        assert!(!is_form(None));
    }
}
