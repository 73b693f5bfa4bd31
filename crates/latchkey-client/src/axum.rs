//! axum integration, the same extractors as [`crate::actix`]: [`Principal`] extracts the
//! verified grants of a bearer token, or of a DPoP-bound token with its proof (RFC 9449,
//! [`crate::dpop`]); [`Require`] and [`RequireAcr`] refuse requests that lack a feature or a
//! strong enough authentication (RFC 6750 answers, and RFC 9470's step-up challenge);
//! [`BackchannelLogout`] receives a logout token at the service's `backchannel_logout_uri`
//! (OpenID Connect Back-Channel Logout 1.0, 400 `invalid_request` per section 2.8).
//!
//! The extractors find the verifier in the request's extensions, as an `Arc<Verifier>`: add it
//! with `.layer(axum::Extension(Arc::new(verifier)))`, or put routes behind
//! [`crate::tower::RequireToken`], which adds it too. A request is verified once: the grants
//! are kept in its extensions, so a handler taking both `Principal` and `Require<F>` (or a
//! route behind `RequireToken`) does not present a DPoP proof twice (which would be refused
//! as a replay).
//!
//! ```no_run
//! use axum::{Extension, Json, Router, routing::get};
//! use latchkey_client::axum::{Mfa, Principal, Require, RequireAcr};
//! use latchkey_client::{Verifier, VerifierOptions, feature};
//! use std::sync::Arc;
//!
//! feature!(ReadOrders = "orders:read");
//!
//! async fn orders(p: Require<ReadOrders>) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "lab": p.0.lab }))
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let opts = VerifierOptions::new("https://id.lab.example", "lk_invoices").lab("01a2…");
//! let verifier = Verifier::discover(opts).await.map_err(std::io::Error::other)?;
//! let app = Router::new()
//!     .route("/orders", get(orders))
//!     .layer(Extension(Arc::new(verifier)));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8090").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use crate::grants::Grants;
use crate::guard::{self, Answer, MAX_LOGOUT_BODY};
pub use crate::guard::{AuthError, BackchannelLogoutError, Feature, Level, Mfa, Phr};
use crate::logout::LogoutToken;
use crate::verifier::Verifier;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::marker::PhantomData;
use std::sync::Arc;

/// An [`Answer`] as an axum response.
fn respond(a: Answer) -> Response {
    crate::tower::response::<axum::body::Body>(a)
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        respond(self.answer())
    }
}

impl IntoResponse for BackchannelLogoutError {
    fn into_response(self) -> Response {
        respond(self.answer())
    }
}

async fn authenticate(parts: &mut Parts) -> Result<Grants, AuthError> {
    crate::tower::authenticate(parts, None).await
}

/// The grants of the request's verified access token.
#[derive(Debug, Clone)]
pub struct Principal(pub Grants);

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Principal, AuthError> {
        authenticate(parts).await.map(Principal)
    }
}

/// Extracts the principal only when its token grants `F` (else 403 `insufficient_scope`) and is
/// for one of the labs the verifier serves (else 401 `invalid_token`).
pub struct Require<F: Feature>(pub Grants, PhantomData<F>);

impl<S: Send + Sync, F: Feature + Send + Sync + 'static> FromRequestParts<S> for Require<F> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Require<F>, AuthError> {
        let g = guard::require_feature::<F>(authenticate(parts).await?)?;
        Ok(Require(g, PhantomData))
    }
}

/// Extracts the principal only when it authenticated at level `L` or stronger (else an RFC 9470
/// step-up challenge).
pub struct RequireAcr<L: Level>(pub Grants, PhantomData<L>);

impl<S: Send + Sync, L: Level + Send + Sync + 'static> FromRequestParts<S> for RequireAcr<L> {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<RequireAcr<L>, AuthError> {
        let g = guard::require_level::<L>(authenticate(parts).await?)?;
        Ok(RequireAcr(g, PhantomData))
    }
}

/// A verified logout token POSTed to the service's `backchannel_logout_uri` (OpenID Connect
/// Back-Channel Logout 1.0 section 2.5): `application/x-www-form-urlencoded`, at most 16 KiB,
/// exactly one `logout_token`, which [`Verifier::verify_logout_token`] checks (and whose `jti`
/// it spends). Anything else is refused before the handler runs, 400 `invalid_request`
/// (section 2.8). The handler ends the service's sessions for the token's `sid` (or `sub`)
/// and answers 200 with `Cache-Control: no-store`.
#[derive(Debug, Clone)]
pub struct BackchannelLogout(pub LogoutToken);

impl<S: Send + Sync> FromRequest<S> for BackchannelLogout {
    type Rejection = BackchannelLogoutError;

    async fn from_request(req: Request, _: &S) -> Result<BackchannelLogout, Self::Rejection> {
        let verifier = req
            .extensions()
            .get::<Arc<Verifier>>()
            .cloned()
            .ok_or(BackchannelLogoutError::NotConfigured)?;
        let form = guard::is_form(
            req.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|c| c.to_str().ok()),
        );
        if !form {
            return Err(BackchannelLogoutError::ContentType);
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_LOGOUT_BODY)
            .await
            .map_err(|_| BackchannelLogoutError::TooLarge)?;
        guard::logout_request(&verifier, &body)
            .await
            .map(BackchannelLogout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use axum::{Extension, Json, Router};
    use tower::ServiceExt;

    crate::feature!(ReadOrders = "orders:read");

    async fn whoami(p: Principal, again: Principal) -> Json<serde_json::Value> {
        assert_eq!(p.0.subject, again.0.subject);
        Json(serde_json::json!({ "sub": p.0.subject }))
    }

    async fn orders(_: Require<ReadOrders>) -> &'static str {
        "orders"
    }

    async fn approve(_: RequireAcr<Mfa>) -> &'static str {
        "approved"
    }

    async fn ended(l: BackchannelLogout) -> Json<serde_json::Value> {
        Json(serde_json::json!({ "sid": l.0.sid }))
    }

    fn app(issuer: &TestIssuer) -> Router {
        Router::new()
            .route("/whoami", get(whoami))
            .route("/orders", get(orders))
            .route("/approve", post(approve))
            .route("/backchannel-logout", post(ended))
            .layer(Extension(Arc::new(issuer.verifier())))
    }

    async fn call(app: Router, req: axum::http::Request<Body>) -> (u16, Option<String>, String) {
        let r = app.oneshot(req).await.unwrap();
        let status = r.status().as_u16();
        let www = r
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, www, String::from_utf8(body.to_vec()).unwrap())
    }

    fn get_with(path: &str, token: Option<&str>) -> axum::http::Request<Body> {
        let mut b = axum::http::Request::get(path);
        if let Some(t) = token {
            b = b.header("Authorization", format!("Bearer {t}"));
        }
        b.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn rfc6750_the_axum_extractors_answer_as_the_actix_ones() {
        let issuer = TestIssuer::new("k1");
        let token = issuer.access_token(|_| {});
        let (status, _, body) = call(app(&issuer), get_with("/whoami", Some(&token))).await;
        assert_eq!(status, 200, "{body}");
        let (status, www, _) = call(app(&issuer), get_with("/whoami", None)).await;
        assert_eq!(status, 401);
        assert!(www.unwrap().starts_with("Bearer, DPoP algs="));
        let (status, www, body) = call(app(&issuer), get_with("/whoami", Some("x.y.z"))).await;
        assert_eq!(status, 401);
        assert!(www.unwrap().contains("error=\"invalid_token\""));
        assert!(body.contains("\"invalid_token\""), "{body}");
        // RFC 6750 section 3.1: a missing grant is 403 insufficient_scope.
        let (status, www, _) = call(app(&issuer), get_with("/orders", Some(&token))).await;
        assert_eq!(status, 403);
        assert!(www.unwrap().contains("insufficient_scope"));
        let granted = issuer.access_token(|c| c["features"] = serde_json::json!(["orders:read"]));
        let (status, _, _) = call(app(&issuer), get_with("/orders", Some(&granted))).await;
        assert_eq!(status, 200);
        // RFC 9470: a password-only token asks for a step-up.
        let req = axum::http::Request::post("/approve")
            .header("Authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let (status, www, _) = call(app(&issuer), req).await;
        assert_eq!(status, 401);
        let www = www.unwrap();
        assert!(
            www.contains("insufficient_user_authentication") && www.contains("acr_values=\"mfa\""),
            "{www}"
        );
        // Without a verifier: 500 server_error, not an open door.
        let bare = Router::new().route("/whoami", get(whoami));
        let (status, _, body) = call(bare, get_with("/whoami", Some(&token))).await;
        assert_eq!(status, 500);
        assert!(body.contains("server_error"));
    }

    #[tokio::test]
    async fn bclogout_2_8_the_axum_extractor_refuses_with_invalid_request() {
        let issuer = TestIssuer::new("k1");
        let token = issuer.logout_token(|_| {});
        let form = |body: String| {
            axum::http::Request::post("/backchannel-logout")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap()
        };
        let app = app(&issuer);
        let (status, _, body) = call(app.clone(), form(format!("logout_token={token}"))).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Pp-NIAuREXSwdFcKtVOZJw"), "{body}");
        let (status, _, body) = call(app.clone(), form(format!("logout_token={token}"))).await;
        assert_eq!(status, 400);
        assert!(body.contains("its jti is spent"), "{body}");
        let (status, _, body) = call(app.clone(), form("state=x".into())).await;
        assert_eq!(status, 400);
        assert!(body.contains("exactly one logout_token"), "{body}");
        let big = format!("logout_token={}", "a".repeat(MAX_LOGOUT_BODY));
        let (status, _, body) = call(app.clone(), form(big)).await;
        assert_eq!(status, 400);
        assert!(body.contains("larger than 16 KiB"), "{body}");
        let json = axum::http::Request::post("/backchannel-logout")
            .header("Content-Type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (status, _, body) = call(app, json).await;
        assert_eq!(status, 400);
        assert!(body.contains("application/x-www-form-urlencoded"), "{body}");
    }
}
