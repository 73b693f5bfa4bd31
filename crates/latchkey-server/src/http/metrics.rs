//! `GET /metrics` (Prometheus text format) and the middleware that counts and times every
//! request. The endpoint is served on the main listener only to a bearer of `metrics.token`,
//! and without a token on the separate `metrics.bind` listener; with neither configured it
//! does not exist (404).

use super::State;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use std::time::Instant;

/// Counts and times each request by its route pattern (`/invite/{token}`), method and
/// status; unknown methods and unrouted paths share one label each.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let state = req.app_data::<State>().cloned();
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let res = next.call(req).await?;
    if let Some(state) = state {
        let route = res.request().match_pattern();
        let route = route
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or("unmatched");
        state.metrics.request(
            route,
            method,
            res.status().as_u16(),
            start.elapsed().as_secs_f64(),
        );
    }
    Ok(res)
}

/// `GET /metrics` on the main listener: only with `Authorization: Bearer <metrics.token>`.
pub async fn scrape(state: State, req: HttpRequest) -> HttpResponse {
    let Some(token) = &state.config.metrics.token else {
        return super::not_found_page();
    };
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(latchkey_core::bearer::bearer_token)
        .unwrap_or("");
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        presented.as_bytes(),
        token.expose().as_bytes(),
    )) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", r#"Bearer realm="metrics""#))
            .content_type("text/plain; charset=utf-8")
            .body("metrics need the bearer token configured as metrics.token\n");
    }
    render(&state).await
}

/// `GET /metrics` on the `metrics.bind` listener.
pub async fn scrape_open(state: State) -> HttpResponse {
    render(&state).await
}

async fn render(state: &crate::state::AppState) -> HttpResponse {
    let now = crate::store::now();
    let keys = match state.store.list_keys().await {
        Ok(keys) => keys
            .into_iter()
            .map(|k| {
                let age = (now - k.created_at).max(0) as f64;
                (k.kid, k.alg, k.state, age)
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the signing keys");
            Vec::new()
        }
    };
    let last_backup = match state.store.last_backup().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the backup runs");
            None
        }
    };
    let outbox = state.store.outbox_counts().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "metrics: cannot read the mail outbox");
        Vec::new()
    });
    let snap = crate::metrics::Snapshot {
        argon2_queue_depth: state.hasher.depth(),
        keys,
        pools: state.store.pool_status(),
        last_backup,
        outbox,
    };
    match state.metrics.render(&snap) {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot render");
            HttpResponse::InternalServerError().finish()
        }
    }
}
