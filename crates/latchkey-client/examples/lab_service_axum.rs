//! The example lab service of `lab_service.rs`, on axum: the same routes and rules, with
//! `latchkey-client`'s axum extractors (a bearer token, or a DPoP-bound token with its proof,
//! RFC 9449) and its tower layer.
//!
//! ```sh
//! LATCHKEY_ISSUER=http://localhost:8080 LAB_SERVICE_AUDIENCE=<client_id or resource URI> \
//!   LAB_SERVICE_LABS=<lab id>[,<lab id>…] \
//!   cargo run -p latchkey-client --features axum --example lab_service_axum
//! ```
//!
//! - `GET /whoami`: any valid access token; returns its grants.
//! - `GET /orders`: needs the feature `orders:read` (granted to tokens with the `email` scope,
//!   through the service's own feature map).
//! - `POST /invoices/{id}/approve`: needs a two-factor login (`acr` ≥ `mfa`, else an RFC 9470
//!   step-up challenge) and the feature `invoices:approve` (role `approver`).
//! - `GET /reports`: behind the tower layer `RequireToken` (feature `reports:read`, role
//!   `approver`), which a route group can share instead of an extractor per handler.
//! - `GET /health`: the key cache's state (no token).
//! - `POST /backchannel-logout`: Latchkey's logout token (OpenID Connect Back-Channel Logout);
//!   from then on, the routes above refuse access tokens from the ended session (`sid`).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use latchkey_client::axum::{BackchannelLogout, Mfa, Principal, Require, RequireAcr};
use latchkey_client::tower::RequireToken;
use latchkey_client::{FeatureMap, Grants, Verifier, VerifierOptions, feature};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

feature!(ReadOrders = "orders:read");
feature!(ApproveInvoices = "invoices:approve");

/// The Latchkey sessions that ended (`sid`s from logout tokens).
#[derive(Default)]
pub struct EndedSessions(Mutex<HashSet<String>>);

impl EndedSessions {
    /// A refusal for a token whose session ended, as if the token had expired.
    fn refuse(&self, g: &Grants) -> Option<Response> {
        let sid = g.session_id.as_ref()?;
        let ended = self.0.lock().map(|s| s.contains(sid)).unwrap_or(true);
        ended.then(|| {
            (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    r#"Bearer error="invalid_token", error_description="the session has ended""#,
                )],
            )
                .into_response()
        })
    }
}

type Ended = Extension<Arc<EndedSessions>>;

async fn backchannel_logout(Extension(ended): Ended, t: BackchannelLogout) -> Response {
    if let (Some(sid), Ok(mut set)) = (t.0.sid, ended.0.lock()) {
        set.insert(sid);
    }
    ([(header::CACHE_CONTROL, "no-store")], "").into_response()
}

async fn whoami(Extension(ended): Ended, p: Principal) -> Response {
    if let Some(refused) = ended.refuse(&p.0) {
        return refused;
    }
    let g = p.0;
    Json(serde_json::json!({
        "sub": g.subject,
        "lab": g.lab,
        "roles": g.roles,
        "features": g.features,
        "scopes": g.scopes,
        "acr": g.acr.map(|a| a.as_str()),
        "amr": g.amr,
    }))
    .into_response()
}

async fn orders(Extension(ended): Ended, p: Require<ReadOrders>) -> Response {
    if let Some(refused) = ended.refuse(&p.0) {
        return refused;
    }
    Json(serde_json::json!({ "lab": p.0.lab, "orders": ["PO-1001", "PO-1002"] })).into_response()
}

async fn approve(
    Extension(ended): Ended,
    p: RequireAcr<Mfa>,
    // Verified once: the second extractor reads the first one's grants.
    _: Require<ApproveInvoices>,
    Path(id): Path<String>,
) -> Response {
    if let Some(refused) = ended.refuse(&p.0) {
        return refused;
    }
    Json(serde_json::json!({ "approved": id, "by": p.0.subject })).into_response()
}

async fn reports(Extension(ended): Ended, Extension(g): Extension<Grants>) -> Response {
    if let Some(refused) = ended.refuse(&g) {
        return refused;
    }
    Json(serde_json::json!({ "lab": g.lab, "reports": ["Q3 usage"] })).into_response()
}

async fn health(Extension(v): Extension<Arc<Verifier>>) -> Json<serde_json::Value> {
    let s = v.status();
    Json(serde_json::json!({
        "keys": s.keys,
        "stale": s.stale,
        "last_error": s.last_error,
        "fetches": s.fetches,
    }))
}

/// The service's own vocabulary: which roles and scopes grant which features.
pub fn feature_map() -> FeatureMap {
    FeatureMap::new()
        .scope("email", ["orders:read"])
        .role("approver", ["invoices:approve", "reports:read"])
}

/// The service's routes for `verifier`, remembering ended sessions in `ended`.
pub fn router(verifier: Verifier, ended: Arc<EndedSessions>) -> Router {
    let verifier = Arc::new(verifier);
    let guarded = Router::new()
        .route("/reports", get(reports))
        .layer(RequireToken::new(verifier.clone()).feature("reports:read"));
    Router::new()
        .route("/whoami", get(whoami))
        .route("/orders", get(orders))
        .route("/invoices/{id}/approve", post(approve))
        .route("/health", get(health))
        .route("/backchannel-logout", post(backchannel_logout))
        .merge(guarded)
        .layer(Extension(verifier))
        .layer(Extension(ended))
}

#[tokio::main]
#[allow(
    dead_code,
    reason = "tests include this file as a module and use router()"
)]
async fn main() -> std::io::Result<()> {
    let issuer =
        std::env::var("LATCHKEY_ISSUER").unwrap_or_else(|_| "http://localhost:8080".into());
    let audience = std::env::var("LAB_SERVICE_AUDIENCE").map_err(|_| {
        std::io::Error::other(
            "set LAB_SERVICE_AUDIENCE to the client id (or resource URI) this service accepts",
        )
    })?;
    let labs = std::env::var("LAB_SERVICE_LABS").map_err(|_| {
        std::io::Error::other(
            "set LAB_SERVICE_LABS to the lab ids this service serves (comma-separated), or `*`",
        )
    })?;
    let bind = std::env::var("LAB_SERVICE_BIND").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let opts = VerifierOptions::new(issuer, audience);
    let opts = if labs.trim() == "*" {
        opts.any_lab()
    } else {
        opts.labs(labs.split(',').map(str::trim).filter(|l| !l.is_empty()))
    };
    let verifier = Verifier::discover(opts)
        .await
        .map_err(std::io::Error::other)?
        .with_feature_map(feature_map());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    eprintln!("lab service (axum) listening on http://{bind}");
    axum::serve(listener, router(verifier, Arc::default())).await
}
