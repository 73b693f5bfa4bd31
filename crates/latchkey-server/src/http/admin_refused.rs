//! Records an authenticated administrator's refused call (`admin.refused`): an operation
//! outside their rights (403), or an API call made with a sign-in weaker or older than the
//! administration policy allows (401 `insufficient_user_authentication`). Not recorded: calls
//! without a valid token, from people who administer nothing (anyone could fill the log with
//! them), and a page another site sent the administrator's browser to (`Sec-Fetch-Site:
//! cross-site`: the browser's choice, not theirs). The intrusion detectors alert once per
//! administrator and window (`admin_outside_policy`).

use super::State;
use crate::audit::{Action, Event};
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;

/// Put in a request's extensions once its administrator is authenticated.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub String);

pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let weak = status == StatusCode::UNAUTHORIZED
        && res
            .headers()
            .get("WWW-Authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("insufficient_user_authentication"));
    if status != StatusCode::FORBIDDEN && !weak {
        return Ok(res);
    }
    let cross_site = res
        .request()
        .headers()
        .get("Sec-Fetch-Site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site && res.request().method() == actix_web::http::Method::GET {
        return Ok(res);
    }
    let caller = res.request().extensions().get::<AdminCaller>().cloned();
    let (Some(AdminCaller(actor)), Some(state)) =
        (caller, res.request().app_data::<State>().cloned())
    else {
        return Ok(res);
    };
    let who = super::client_addr::requester(&state, res.request());
    let mut details = who.details();
    details["method"] = res.request().method().as_str().into();
    details["route"] = res.request().match_pattern().unwrap_or_default().into();
    details["status"] = status.as_u16().into();
    details["reason"] = if weak {
        "insufficient_user_authentication"
    } else {
        "forbidden"
    }
    .into();
    let event = Event::new(&actor, Action::AdminRefused, &actor, details);
    if let Err(e) = state.store.audit(event).await {
        tracing::error!(error = %e, "cannot record a refused administrator call");
    }
    Ok(res)
}
