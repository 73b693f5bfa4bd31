//! actix-web integration: [`Principal`] extracts the verified grants of a bearer token, or of
//! a DPoP-bound token with its proof (RFC 9449, [`crate::dpop`]);
//! [`Require`] and [`RequireAcr`] refuse requests that lack a feature or a strong enough
//! authentication. Errors follow RFC 6750 (401 with `WWW-Authenticate`, 403 for a missing
//! grant) and RFC 9470 (401 `insufficient_user_authentication` with `acr_values`).
//! [`BackchannelLogout`] receives a logout token at the service's `backchannel_logout_uri`
//! (OpenID Connect Back-Channel Logout 1.0), refusing with 400 `invalid_request` (section 2.8).
//!
//! Register the verifier as app data: `App::new().app_data(web::Data::new(verifier))`.

use crate::grants::Grants;
use crate::guard::{self, Answer, MAX_LOGOUT_BODY};
pub use crate::guard::{AuthError, BackchannelLogoutError, Feature, Level, Mfa, Phr};
use crate::logout::LogoutToken;
use crate::verifier::Verifier;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

fn respond(a: Answer) -> HttpResponse {
    let mut r = HttpResponse::build(
        StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    if let Some(www) = a.www_authenticate {
        r.insert_header(("WWW-Authenticate", www));
    }
    r.insert_header(("Cache-Control", "no-store"));
    match a.body {
        Some(b) => r.json(b),
        None => r.finish(),
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        respond(self.answer())
    }
}

/// Verifies the request's access token: a bearer token, or a DPoP-bound one with its proof
/// (RFC 9449 section 7). The proof's `htu` is [`guard::request_uri`]: the configured public
/// origin, or the scheme this server listens with and the request's `Host`, and the path.
async fn authenticate(req: HttpRequest) -> Result<Grants, AuthError> {
    use actix_web::HttpMessage;
    let verifier = req
        .app_data::<web::Data<Verifier>>()
        .ok_or(AuthError::NotConfigured)?
        .clone()
        .into_inner();
    // Verified once per request and verifier: a handler taking `Principal` and `Require`
    // presents a DPoP proof once (a second check would find it spent).
    if let Some(g) = req
        .extensions()
        .get::<guard::Verified>()
        .and_then(|v| v.for_verifier(&verifier))
    {
        return Ok(g);
    }
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
    let uri = guard::request_uri(&verifier, scheme, Some(host), req.uri().path());
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok());
    let proofs = req
        .headers()
        .get_all(latchkey_core::dpop::HEADER)
        .filter_map(|v| v.to_str().ok());
    let g = guard::authenticate(
        &verifier,
        authorization,
        proofs,
        req.method().as_str(),
        &uri,
    )
    .await?;
    req.extensions_mut().insert(guard::Verified {
        by: verifier,
        grants: g.clone(),
    });
    Ok(g)
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
            let g = guard::require_feature::<F>(authenticate(req).await?)?;
            Ok(Require(g, PhantomData))
        })
    }
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
            let g = guard::require_level::<L>(authenticate(req).await?)?;
            Ok(RequireAcr(g, PhantomData))
        })
    }
}

impl ResponseError for BackchannelLogoutError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        respond(self.answer())
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
        let req = req.clone();
        let verifier = req.app_data::<web::Data<Verifier>>().cloned();
        let form = guard::is_form(
            req.headers()
                .get(actix_web::http::header::CONTENT_TYPE)
                .and_then(|c| c.to_str().ok()),
        );
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
            guard::logout_request(&verifier, &body)
                .await
                .map(BackchannelLogout)
        })
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
