//! `Strict-Transport-Security` (RFC 6797) on every response to a request that came over
//! HTTPS: on this listener (`tls.cert_file`), or through a trusted proxy that says so
//! (`X-Forwarded-Proto` / `Forwarded: proto=`, see `client_addr::proxied_https`). Browsers
//! ignore the header on plain HTTP, so it is not sent there. `tls.hsts_max_age_secs = 0`
//! turns it off.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, STRICT_TRANSPORT_SECURITY};
use actix_web::middleware::Next;

pub async fn add(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let header = req.app_data::<super::State>().and_then(|state| {
        let value = state.config.tls.hsts_header()?;
        let proxy = &state.config.proxy;
        let https = req.app_config().secure()
            || super::client_addr::proxied_https(
                &proxy.trusted,
                proxy.header,
                req.peer_addr().map(|a| a.ip()),
                req.headers(),
            );
        https.then_some(value)
    });
    let mut res = next.call(req).await?;
    if let Some(value) = header.and_then(|v| HeaderValue::from_str(&v).ok()) {
        res.headers_mut().insert(STRICT_TRANSPORT_SECURITY, value);
    }
    Ok(res)
}
