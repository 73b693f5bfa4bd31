//! actix-web integration: [`Principal`] extracts the verified grants of a bearer token, or of
//! a DPoP-bound token with its proof (RFC 9449, [`crate::dpop`]);
//! [`Require`] and [`RequireAcr`] refuse requests that lack a feature or a strong enough
//! authentication. Errors follow RFC 6750 (401 with `WWW-Authenticate`, 403 for a missing
//! grant) and RFC 9470 (401 `insufficient_user_authentication` with `acr_values`).
//! [`BackchannelLogout`] receives a logout token at the service's `backchannel_logout_uri`
//! (OpenID Connect Back-Channel Logout 1.0), refusing with 400 `invalid_request` (section 2.8).
//!
//! Register the verifier as app data: `App::new().app_data(web::Data::new(verifier))`.

use crate::dpop::Presented;
use crate::error::{StepUpRequired, VerifyError};
use crate::grants::Grants;
use crate::logout::LogoutToken;
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

/// The largest back-channel logout request body read: a logout token is at most 16 KiB
/// ([`crate::jws::MAX_LEN`]) too.
const MAX_LOGOUT_BODY: usize = 16 * 1024;

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
    /// No [`Verifier`] registered as app data: answered 500 `server_error`.
    #[error("the service has no token verifier configured")]
    NotConfigured,
}

impl ResponseError for BackchannelLogoutError {
    fn status_code(&self) -> StatusCode {
        match self {
            BackchannelLogoutError::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let error = match self {
            BackchannelLogoutError::NotConfigured => "server_error",
            _ => "invalid_request",
        };
        HttpResponse::build(self.status_code())
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({"error": error, "error_description": self.to_string()}))
    }
}

/// A verified logout token POSTed to the service's `backchannel_logout_uri` (OpenID Connect
/// Back-Channel Logout 1.0 section 2.5): the request must be
/// `application/x-www-form-urlencoded` (at most 16 KiB) with exactly one `logout_token`, which
/// [`Verifier::verify_logout_token`] checks with the `web::Data<Verifier>` registered as app
/// data (and spends its `jti`). Anything else is refused before the handler runs, with
/// [`BackchannelLogoutError`] (400 `invalid_request`).
///
/// The handler is the service's hook: it ends its own sessions for the token's `sid` (or, for
/// a token with only `sub`, all of the user's sessions) and answers 200 (section 2.8).
///
/// ```no_run
/// use actix_web::{App, HttpResponse, HttpServer, web};
/// use latchkey_client::actix::BackchannelLogout;
/// use latchkey_client::Verifier;
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// /// The service's sessions: its session id -> (Latchkey's `sid`, the user's `sub`).
/// struct Sessions(Mutex<HashMap<String, (String, String)>>);
///
/// async fn backchannel_logout(
///     logout: BackchannelLogout,
///     sessions: web::Data<Sessions>,
/// ) -> HttpResponse {
///     let t = logout.0;
///     if let Ok(mut s) = sessions.0.lock() {
///         s.retain(|_, (sid, sub)| match (&t.sid, &t.sub) {
///             (Some(ended), _) => sid != ended,
///             (None, Some(user)) => sub != user,
///             (None, None) => true,
///         });
///     }
///     HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).finish()
/// }
///
/// # async fn run(verifier: Verifier) -> std::io::Result<()> {
/// // `Verifier::discover(VerifierOptions::new(issuer, client_id).lab(..))`, as for `Principal`.
/// let verifier = web::Data::new(verifier);
/// let sessions = web::Data::new(Sessions(Mutex::new(HashMap::new())));
/// HttpServer::new(move || {
///     App::new()
///         .app_data(verifier.clone())
///         .app_data(sessions.clone())
///         .route("/backchannel-logout", web::post().to(backchannel_logout))
/// })
/// .bind("0.0.0.0:8090")?
/// .run()
/// .await
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BackchannelLogout(pub LogoutToken);

impl FromRequest for BackchannelLogout {
    type Error = BackchannelLogoutError;
    type Future = Pin<Box<dyn Future<Output = Result<BackchannelLogout, BackchannelLogoutError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use actix_web::HttpMessage;
        let req = req.clone();
        let verifier = req.app_data::<web::Data<Verifier>>().cloned();
        let form = req
            .content_type()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded");
        let body = web::Payload::from_request(&req, payload);
        Box::pin(async move {
            let verifier = verifier.ok_or(BackchannelLogoutError::NotConfigured)?;
            if !form {
                return Err(BackchannelLogoutError::ContentType);
            }
            let body = body
                .await
                .map_err(|_| BackchannelLogoutError::Unreadable)?
                .to_bytes_limited(MAX_LOGOUT_BODY)
                .await
                .map_err(|_| BackchannelLogoutError::TooLarge)?
                .map_err(|_| BackchannelLogoutError::Unreadable)?;
            let token = logout_token_parameter(&body)?;
            verifier
                .verify_logout_token(&token)
                .await
                .map(BackchannelLogout)
                .map_err(BackchannelLogoutError::Invalid)
        })
    }
}

/// The one `logout_token` of a form body (other parameters are ignored).
fn logout_token_parameter(body: &[u8]) -> Result<String, BackchannelLogoutError> {
    let body = std::str::from_utf8(body).map_err(|_| BackchannelLogoutError::BadForm)?;
    // A form body is encoded as a query string is (both application/x-www-form-urlencoded);
    // `Query` decodes it without the app's `FormConfig`, whose limit and error handler are
    // the application's, not this endpoint's.
    let pairs = web::Query::<Vec<(String, String)>>::from_query(body)
        .map_err(|_| BackchannelLogoutError::BadForm)?
        .into_inner();
    let mut tokens = pairs
        .into_iter()
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v);
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

#[cfg(test)]
mod backchannel_logout_tests {
    use super::*;
    use crate::testkit::*;
    use actix_web::{App, test};

    async fn ended(logout: BackchannelLogout) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "sid": logout.0.sid, "sub": logout.0.sub }))
    }

    fn form(body: impl Into<String>) -> test::TestRequest {
        test::TestRequest::post()
            .uri("/backchannel-logout")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(body.into())
    }

    #[actix_web::test]
    async fn bclogout_2_5_a_verified_logout_token_reaches_the_handler() {
        let issuer = TestIssuer::new("k1");
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(issuer.verifier()))
                .route("/backchannel-logout", web::post().to(ended)),
        )
        .await;
        let token = issuer.logout_token(|_| {});
        let r = test::call_service(&app, form(format!("logout_token={token}")).to_request()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: serde_json::Value = test::read_body_json(r).await;
        assert_eq!(body["sid"], "Pp-NIAuREXSwdFcKtVOZJw");
        assert_eq!(body["sub"], "01a22021-5bda-76b2-90d0-f73b9021c713");
        // A charset parameter and other form parameters do not matter.
        let token = issuer.logout_token(|_| {});
        let r = test::call_service(
            &app,
            test::TestRequest::post()
                .uri("/backchannel-logout")
                .insert_header((
                    "Content-Type",
                    "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
                ))
                .set_payload(format!("state=x&logout_token={token}"))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[actix_web::test]
    async fn bclogout_2_8_a_refused_logout_request_is_400_invalid_request() {
        let issuer = TestIssuer::new("k1");
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(issuer.verifier()))
                .route("/backchannel-logout", web::post().to(ended)),
        )
        .await;
        let token = issuer.logout_token(|_| {});
        let nonce = issuer.logout_token(|c| c["nonce"] = serde_json::json!("n"));
        let cases = [
            (
                test::TestRequest::post()
                    .uri("/backchannel-logout")
                    .insert_header(("Content-Type", "application/json"))
                    .set_payload(format!(r#"{{"logout_token":"{token}"}}"#)),
                "the request must be application/x-www-form-urlencoded",
            ),
            (
                form("state=x"),
                "the request must carry exactly one logout_token parameter",
            ),
            (
                form(format!("logout_token={token}&logout_token={token}")),
                "the request must carry exactly one logout_token parameter",
            ),
            (
                form(format!("logout_token={}", "a".repeat(MAX_LOGOUT_BODY))),
                "the request body is larger than 16 KiB",
            ),
            (
                form(format!("logout_token={nonce}")),
                "the token is not a logout token: it carries a nonce",
            ),
        ];
        for (req, description) in cases {
            let r = test::call_service(&app, req.to_request()).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{description}");
            assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
            let body: serde_json::Value = test::read_body_json(r).await;
            assert_eq!(
                body,
                serde_json::json!({"error": "invalid_request", "error_description": description})
            );
        }
        // The refusals above spent nothing: the token still works once, and only once.
        let first = test::call_service(&app, form(format!("logout_token={token}")).to_request());
        assert_eq!(first.await.status(), StatusCode::OK);
        let again = test::call_service(&app, form(format!("logout_token={token}")).to_request());
        let r = again.await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = test::read_body_json(r).await;
        assert_eq!(
            body["error_description"],
            "the token was used before (its jti is spent)"
        );
    }

    #[actix_web::test]
    async fn bclogout_without_a_verifier_is_a_server_error() {
        let issuer = TestIssuer::new("k1");
        let app =
            test::init_service(App::new().route("/backchannel-logout", web::post().to(ended)))
                .await;
        let token = issuer.logout_token(|_| {});
        let r = test::call_service(&app, form(format!("logout_token={token}")).to_request()).await;
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: serde_json::Value = test::read_body_json(r).await;
        assert_eq!(body["error"], "server_error");
    }
}
