//! tower integration, for any `tower::Service` over `http` requests (axum routers, hyper
//! services, tonic): [`RequireToken`] is a layer that lets a request through only with a valid
//! access token — a bearer token, or a DPoP-bound token with its proof (RFC 9449) — and,
//! when configured, a feature ([`RequireToken::feature`]) and an authentication level
//! ([`RequireToken::acr`], RFC 9470). It answers refusals itself, as the actix and axum
//! extractors do (RFC 6750 section 3, RFC 9449 section 7.1, RFC 9470 section 3), and gives
//! the inner service the verified [`Grants`] and the `Arc<Verifier>` in the request's
//! extensions (the axum extractors read both, so nothing is verified twice).
//!
//! ```no_run
//! use axum::{Extension, Router, routing::get};
//! use latchkey_client::tower::RequireToken;
//! use latchkey_client::{Acr, Grants, Verifier};
//! use std::sync::Arc;
//!
//! async fn approve(Extension(g): Extension<Grants>) -> String {
//!     format!("approved by {}", g.subject)
//! }
//!
//! # fn routes(verifier: Verifier) -> Router {
//! let verifier = Arc::new(verifier);
//! Router::new()
//!     .route("/invoices/approve", get(approve))
//!     .layer(RequireToken::new(verifier).feature("invoices:approve").acr(Acr::Mfa))
//! # }
//! ```

use crate::grants::Grants;
use crate::guard::{self, Answer, AuthError};
use crate::verifier::Verifier;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode, header};
use latchkey_core::Acr;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The grants of a request verified before by the same verifier (this layer or an axum
/// extractor), else verifies it with `verifier` (or the `Arc<Verifier>` of its extensions)
/// and keeps them in its extensions (as `Grants` for handlers), with the verifier.
///
/// The DPoP `htu` is `http://` and the `Host` header, or the verifier's
/// [`crate::DpopOptions::public_origin`] (set it behind TLS or a reverse proxy), and the path
/// as the client sent it (axum's `OriginalUri` inside a nested router).
pub(crate) async fn authenticate(
    parts: &mut Parts,
    verifier: Option<Arc<Verifier>>,
) -> Result<Grants, AuthError> {
    let verifier = verifier
        .or_else(|| parts.extensions.get::<Arc<Verifier>>().cloned())
        .ok_or(AuthError::NotConfigured)?;
    if let Some(g) = parts
        .extensions
        .get::<guard::Verified>()
        .and_then(|v| v.for_verifier(&verifier))
    {
        return Ok(g);
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    #[cfg(feature = "axum")]
    let original = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.path().to_owned());
    #[cfg(not(feature = "axum"))]
    let original: Option<String> = None;
    let path = original.as_deref().unwrap_or(parts.uri.path());
    let uri = guard::request_uri(&verifier, "http", host, path);
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let proofs = parts
        .headers
        .get_all(latchkey_core::dpop::HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let g = guard::authenticate(
        &verifier,
        authorization,
        proofs,
        parts.method.as_str(),
        &uri,
    )
    .await?;
    parts.extensions.insert(guard::Verified {
        by: verifier.clone(),
        grants: g.clone(),
    });
    parts.extensions.insert(g.clone());
    parts.extensions.insert(verifier);
    Ok(g)
}

/// An [`Answer`] as an `http` response, with a body made from its JSON text.
pub(crate) fn response<B: From<String>>(a: Answer) -> Response<B> {
    let mut r = Response::new(B::from(
        a.body.as_ref().map(|b| b.to_string()).unwrap_or_default(),
    ));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    if a.body.is_some() {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    if let Some(www) = a
        .www_authenticate
        .and_then(|w| HeaderValue::from_str(&w).ok())
    {
        h.insert(header::WWW_AUTHENTICATE, www);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A layer that requires a valid access token (and, when set, a feature and a level) for
/// every request of the service it wraps.
#[derive(Clone)]
pub struct RequireToken {
    verifier: Arc<Verifier>,
    feature: Option<Arc<str>>,
    acr: Option<Acr>,
}

impl RequireToken {
    pub fn new(verifier: Arc<Verifier>) -> RequireToken {
        RequireToken {
            verifier,
            feature: None,
            acr: None,
        }
    }

    /// Also requires the token to grant `feature` (else 403 `insufficient_scope`).
    pub fn feature(mut self, feature: &str) -> RequireToken {
        self.feature = Some(feature.into());
        self
    }

    /// Also requires an authentication at `level` or stronger (else 401
    /// `insufficient_user_authentication` with `acr_values`, RFC 9470).
    pub fn acr(mut self, level: Acr) -> RequireToken {
        self.acr = Some(level);
        self
    }

    async fn check(&self, parts: &mut Parts) -> Result<(), AuthError> {
        let g = authenticate(parts, Some(self.verifier.clone())).await?;
        if let Some(f) = &self.feature
            && !g.allows(f)
        {
            return Err(AuthError::Forbidden(f.to_string()));
        }
        if let Some(level) = self.acr {
            g.require_acr(level).map_err(AuthError::StepUp)?;
        }
        Ok(())
    }
}

impl<S> tower_layer::Layer<S> for RequireToken {
    type Service = RequireTokenService<S>;

    fn layer(&self, inner: S) -> RequireTokenService<S> {
        RequireTokenService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`RequireToken`] wraps around another.
#[derive(Clone)]
pub struct RequireTokenService<S> {
    inner: S,
    layer: RequireToken,
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for RequireTokenService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The ready inner service serves this request; a clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match layer.check(&mut parts).await {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(e) => Ok(response(e.answer())),
            }
        })
    }
}

#[cfg(test)]
#[cfg(feature = "axum")]
mod tests {
    use super::*;
    use crate::testkit::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::{Extension, Router};
    use tower::ServiceExt;

    async fn approve(Extension(g): Extension<Grants>, p: crate::axum::Principal) -> String {
        assert_eq!(g.subject, p.0.subject, "verified once, read twice");
        format!("approved by {}", g.subject)
    }

    fn app(issuer: &TestIssuer) -> Router {
        Router::new()
            .route("/approve", get(approve))
            .layer(
                RequireToken::new(Arc::new(issuer.verifier()))
                    .feature("invoices:approve")
                    .acr(Acr::Mfa),
            )
            .route("/health", get(|| async { "ok" }))
    }

    async fn call(app: Router, token: Option<&str>, path: &str) -> (u16, Option<String>) {
        let mut b = Request::get(path);
        if let Some(t) = token {
            b = b.header("Authorization", format!("Bearer {t}"));
        }
        let r = app.oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
        let www = r
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), www)
    }

    #[tokio::test]
    async fn a_route_with_its_own_verifier_does_not_reuse_another_verifiers_grants() {
        let issuer = TestIssuer::new("k1");
        let admin = crate::Verifier::from_jwks(
            crate::VerifierOptions::new(ISSUER, "lk_admin").lab("lab-a"),
            &issuer.jwks(),
        )
        .unwrap();
        let app = Router::new()
            .route("/admin", get(|| async { "admin" }))
            .layer(RequireToken::new(Arc::new(admin)))
            .layer(RequireToken::new(Arc::new(issuer.verifier())));
        let user = issuer.access_token(|_| {});
        let (status, www) = call(app.clone(), Some(&user), "/admin").await;
        assert_eq!(status, 401, "the inner verifier checks its own audience");
        assert!(www.unwrap().contains("invalid_token"));
        let both = issuer.access_token(|c| c["aud"] = serde_json::json!(["lk_orders", "lk_admin"]));
        assert_eq!(call(app, Some(&both), "/admin").await.0, 200);
    }

    #[tokio::test]
    async fn rfc6750_rfc9470_the_tower_layer_guards_every_request_it_wraps() {
        let issuer = TestIssuer::new("k1");
        assert_eq!(
            call(app(&issuer), None, "/health").await.0,
            200,
            "not wrapped"
        );
        let (status, www) = call(app(&issuer), None, "/approve").await;
        assert_eq!(status, 401);
        assert!(www.unwrap().starts_with("Bearer, DPoP"));
        let no_feature = issuer.access_token(|c| c["acr"] = "mfa".into());
        let (status, www) = call(app(&issuer), Some(&no_feature), "/approve").await;
        assert_eq!(status, 403);
        assert!(www.unwrap().contains("insufficient_scope"));
        let weak = issuer.access_token(|c| c["features"] = serde_json::json!(["invoices:approve"]));
        let (status, www) = call(app(&issuer), Some(&weak), "/approve").await;
        assert_eq!(status, 401);
        assert!(www.unwrap().contains("acr_values=\"mfa\""));
        let good = issuer.access_token(|c| {
            c["features"] = serde_json::json!(["invoices:approve"]);
            c["acr"] = "mfa".into();
            c["amr"] = serde_json::json!(["pwd", "otp"]);
        });
        assert_eq!(call(app(&issuer), Some(&good), "/approve").await.0, 200);
        let other_lab = issuer.access_token(|c| {
            c["features"] = serde_json::json!(["invoices:approve"]);
            c["acr"] = "mfa".into();
            c["lab"] = "lab-b".into();
        });
        let (status, www) = call(app(&issuer), Some(&other_lab), "/approve").await;
        assert_eq!(status, 401);
        assert!(www.unwrap().contains("invalid_token"));
    }
}
