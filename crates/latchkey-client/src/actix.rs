//! actix-web integration: [`Principal`] extracts the verified grants of a bearer token, or of
//! a DPoP-bound token with its proof (RFC 9449, [`crate::dpop`]);
//! [`Require`] and [`RequireAcr`] refuse requests that lack a feature or a strong enough
//! authentication. Errors follow RFC 6750 (401 with `WWW-Authenticate`, 403 for a missing
//! grant) and RFC 9470 (401 `insufficient_user_authentication` with `acr_values`).
//!
//! Register the verifier as app data: `App::new().app_data(web::Data::new(verifier))`.

use crate::dpop::Presented;
use crate::error::{StepUpRequired, VerifyError};
use crate::grants::Grants;
use crate::verifier::Verifier;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use latchkey_core::Acr;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

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

/// `s` in RFC 6750's `error_description` character set (printable ASCII without `"` and `\\`):
/// a message that quotes a token's content cannot break the challenge or smuggle control
/// characters into it.
fn quote(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (www, error) = match self {
            AuthError::Missing => (format!("Bearer, DPoP algs=\"{}\"", dpop_algs()), None),
            AuthError::InvalidDpop(e) => {
                let code = if e.is_dpop_proof() {
                    "invalid_dpop_proof"
                } else {
                    "invalid_token"
                };
                (
                    format!(
                        "DPoP error=\"{code}\", error_description=\"{}\", algs=\"{}\"",
                        quote(&e.to_string()),
                        dpop_algs()
                    ),
                    Some(code),
                )
            }
            AuthError::Invalid(e) => (
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quote(&e.to_string())
                ),
                Some("invalid_token"),
            ),
            AuthError::Forbidden(f) => (
                format!(
                    "Bearer error=\"insufficient_scope\", error_description=\"{}\"",
                    quote(&format!("the token does not grant {f}"))
                ),
                Some("insufficient_scope"),
            ),
            AuthError::StepUp(s) => (
                s.www_authenticate(),
                Some("insufficient_user_authentication"),
            ),
            AuthError::NotConfigured => (String::new(), Some("server_error")),
        };
        let mut r = HttpResponse::build(self.status_code());
        if !www.is_empty() {
            r.insert_header(("WWW-Authenticate", www));
        }
        r.insert_header(("Cache-Control", "no-store"));
        match error {
            Some(e) => {
                r.json(serde_json::json!({"error": e, "error_description": self.to_string()}))
            }
            None => r.finish(),
        }
    }
}

fn dpop_algs() -> String {
    latchkey_core::jose::JwsAlg::ALL
        .map(latchkey_core::jose::JwsAlg::as_str)
        .join(" ")
}

/// The request's URI as the client addressed it, for a DPoP proof's `htu`: the configured
/// public origin, or the scheme this server listens with and the request's `Host`, and the
/// path. `Forwarded` and `X-Forwarded-*` headers are not trusted (anyone can send them): behind
/// a reverse proxy, set [`crate::DpopOptions::public_origin`].
fn request_uri(req: &HttpRequest, verifier: &Verifier) -> String {
    let origin = match &verifier.options().dpop.public_origin {
        Some(o) => o.trim_end_matches('/').to_owned(),
        None => {
            let scheme = if req.app_config().secure() {
                "https"
            } else {
                "http"
            };
            let host = req
                .headers()
                .get(actix_web::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_else(|| req.app_config().host());
            format!("{scheme}://{host}")
        }
    };
    format!("{origin}{}", req.uri().path())
}

/// Verifies the request's access token: a bearer token, or a DPoP-bound one with its proof
/// (RFC 9449 section 7).
async fn authenticate(req: HttpRequest) -> Result<Grants, AuthError> {
    let verifier = req
        .app_data::<web::Data<Verifier>>()
        .ok_or(AuthError::NotConfigured)?
        .clone();
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .ok_or(AuthError::Missing)?;
    let proofs = req
        .headers()
        .get_all(latchkey_core::dpop::HEADER)
        .filter_map(|v| v.to_str().ok());
    let presented = Presented::from_headers(authorization, proofs).ok_or(AuthError::Missing)?;
    let uri = request_uri(&req, &verifier);
    verifier
        .verify_request(presented, req.method().as_str(), &uri)
        .await
        .map_err(|e| match (presented, &e) {
            (Presented::Dpop { .. }, _) | (_, VerifyError::DpopBound) => AuthError::InvalidDpop(e),
            _ => AuthError::Invalid(e),
        })
}

/// The grants of the request's verified bearer token.
#[derive(Debug, Clone)]
pub struct Principal(pub Grants);

impl FromRequest for Principal {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Principal, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await.map(Principal) })
    }
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
        impl $crate::actix::Feature for $name {
            const NAME: &'static str = $value;
        }
    };
}

/// Extracts the principal only when its token grants `F` (else 403 `insufficient_scope`) and is
/// for one of the labs the registered [`Verifier`] serves (else 401 `invalid_token`): a
/// feature granted in another lab never passes.
pub struct Require<F: Feature>(pub Grants, PhantomData<F>);

impl<F: Feature + 'static> FromRequest for Require<F> {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Require<F>, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let g = authenticate(req).await?;
            if g.allows(F::NAME) {
                Ok(Require(g, PhantomData))
            } else {
                Err(AuthError::Forbidden(F::NAME.to_owned()))
            }
        })
    }
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

/// Extracts the principal only when it authenticated at level `L` or stronger (else an RFC 9470
/// step-up challenge).
pub struct RequireAcr<L: Level>(pub Grants, PhantomData<L>);

impl<L: Level + 'static> FromRequest for RequireAcr<L> {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<RequireAcr<L>, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let g = authenticate(req).await?;
            g.require_acr(L::ACR).map_err(AuthError::StepUp)?;
            Ok(RequireAcr(g, PhantomData))
        })
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
        let r = e.error_response();
        let www = r
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(!www.contains('\r') && !www.contains('\n'), "{www}");
        assert_eq!(www.matches('"').count(), 4, "{www}");
    }
}
