//! An example lab service protected by Latchkey: every route verifies the caller's access
//! token offline with `latchkey-client` (a bearer token, or a DPoP-bound token with its proof,
//! RFC 9449).
//!
//! ```sh
//! LATCHKEY_ISSUER=http://localhost:8080 LAB_SERVICE_AUDIENCE=<client_id> \
//!   LAB_SERVICE_LABS=<lab id>[,<lab id>…] \
//!   cargo run -p latchkey-client --features actix --example lab_service
//! ```
//!
//! Only tokens for the labs in `LAB_SERVICE_LABS` (the labs the client is registered for;
//! `*` for a service of every lab) pass: a feature granted in another lab opens nothing here.
//!
//! - `GET /whoami`: any valid access token; returns its grants.
//! - `GET /orders`: needs the feature `orders:read` (this service grants it to tokens with the
//!   `email` scope, through its own feature map).
//! - `POST /invoices/{id}/approve`: needs a two-factor login (`acr` ≥ `mfa`, else an RFC 9470
//!   step-up challenge) and the feature `invoices:approve` (role `approver`).
//! - `GET /health`: the key cache's state.
//! - `POST /backchannel-logout`: Latchkey's logout token (OpenID Connect Back-Channel Logout;
//!   register `http://<bind>/backchannel-logout` as the client's `backchannel_logout_uri`).
//!   From then on, the routes above refuse access tokens from the ended session (their `sid`)
//!   although they have not expired yet.

use actix_web::{App, HttpResponse, HttpServer, web};
use latchkey_client::actix::{BackchannelLogout, Mfa, Principal, Require, RequireAcr};
use latchkey_client::{FeatureMap, Grants, Verifier, VerifierOptions, feature};
use std::collections::HashSet;
use std::sync::Mutex;

feature!(ReadOrders = "orders:read");

/// The Latchkey sessions that ended (`sid`s from logout tokens). A real service would keep
/// them in its own store for as long as its access tokens live, and end its own sessions.
#[derive(Default)]
pub struct EndedSessions(Mutex<HashSet<String>>);

impl EndedSessions {
    /// A refusal for a token whose session ended, as if the token had expired.
    fn refuse(&self, g: &Grants) -> Option<HttpResponse> {
        let sid = g.session_id.as_ref()?;
        let ended = self.0.lock().map(|s| s.contains(sid)).unwrap_or(true);
        ended.then(|| {
            HttpResponse::Unauthorized()
                .insert_header((
                    "WWW-Authenticate",
                    r#"Bearer error="invalid_token", error_description="the session has ended""#,
                ))
                .finish()
        })
    }
}

/// The hook Latchkey calls when a session ends: remember its `sid` (section 2.8: 200, no
/// cache).
async fn backchannel_logout(t: BackchannelLogout, ended: web::Data<EndedSessions>) -> HttpResponse {
    if let (Some(sid), Ok(mut set)) = (t.0.sid, ended.0.lock()) {
        set.insert(sid);
    }
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

async fn whoami(p: Principal, ended: web::Data<EndedSessions>) -> HttpResponse {
    if let Some(refused) = ended.refuse(&p.0) {
        return refused;
    }
    let g = p.0;
    HttpResponse::Ok().json(serde_json::json!({
        "sub": g.subject,
        "lab": g.lab,
        "roles": g.roles,
        "features": g.features,
        "scopes": g.scopes,
        "acr": g.acr.map(|a| a.as_str()),
        "amr": g.amr,
    }))
}

async fn orders(p: Require<ReadOrders>, ended: web::Data<EndedSessions>) -> HttpResponse {
    if let Some(refused) = ended.refuse(&p.0) {
        return refused;
    }
    HttpResponse::Ok().json(serde_json::json!({ "lab": p.0.lab, "orders": ["PO-1001", "PO-1002"] }))
}

async fn approve(
    p: RequireAcr<Mfa>,
    id: web::Path<String>,
    ended: web::Data<EndedSessions>,
) -> HttpResponse {
    if let Some(refused) = ended.refuse(&p.0) {
        return refused;
    }
    if !p.0.allows("invoices:approve") {
        let refusal = latchkey_client::actix::AuthError::Forbidden("invoices:approve".into());
        return actix_web::ResponseError::error_response(&refusal);
    }
    HttpResponse::Ok().json(serde_json::json!({ "approved": id.into_inner(), "by": p.0.subject }))
}

async fn health(v: web::Data<Verifier>) -> HttpResponse {
    let s = v.status();
    HttpResponse::Ok().json(serde_json::json!({
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
        .role("approver", ["invoices:approve"])
}

/// The routes, with a `web::Data<Verifier>` and a `web::Data<EndedSessions>` registered by
/// the caller.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/whoami", web::get().to(whoami))
        .route("/backchannel-logout", web::post().to(backchannel_logout))
        .route("/orders", web::get().to(orders))
        .route("/invoices/{id}/approve", web::post().to(approve))
        .route("/health", web::get().to(health));
}

#[actix_web::main]
#[allow(
    dead_code,
    reason = "tests include this file as a module and use routes()"
)]
async fn main() -> std::io::Result<()> {
    let issuer =
        std::env::var("LATCHKEY_ISSUER").unwrap_or_else(|_| "http://localhost:8080".into());
    let audience = std::env::var("LAB_SERVICE_AUDIENCE").map_err(|_| {
        std::io::Error::other("set LAB_SERVICE_AUDIENCE to the client id this service accepts")
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
    let data = web::Data::new(verifier);
    let ended = web::Data::new(EndedSessions::default());
    eprintln!("lab service listening on http://{bind}");
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(ended.clone())
            .configure(routes)
    })
    .workers(1)
    .bind(bind)?
    .run()
    .await
}
