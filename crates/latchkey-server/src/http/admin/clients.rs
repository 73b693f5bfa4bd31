//! The console's clients page, for system administrators: every client, and one client's
//! page with its edit form, disable or enable, secret rotation (the new secret shown once)
//! and deletion. Rotation, disabling and deletion are confirmed on a page first; every form
//! carries the CSRF token, and each action is one `admin::ops` operation.

use super::pages::{ConfirmPage, Head, when};
use super::{CSRF_PURPOSE, Console, console, html, refusal};
use crate::admin::AdminError;
use crate::admin::ops::{self, ClientUpdateBody, ClientView, LogoutDeliveryView, RotateSecretBody};
use crate::http::authorize::see_other;
use crate::http::{State, cookies, decode_pairs};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use latchkey_core::names::ClientId;

/// A client in the list, with its expiry as text.
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub builtin: bool,
    pub disabled: bool,
    pub admin_of: Option<String>,
    /// A legacy client allowed to leave PKCE out: shown so it is not forgotten.
    pub pkce_optional: bool,
    pub expires: String,
    /// Which labs it serves, in words.
    pub labs: String,
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
pub struct ClientsPage {
    pub head: Head,
    pub notice: Option<String>,
    pub clients: Vec<ClientRow>,
}

#[derive(Template)]
#[template(path = "admin/client.html")]
pub struct ClientPage {
    pub head: Head,
    pub notice: Option<String>,
    pub client: ClientView,
    pub expires: String,
    /// A new secret, right after a rotation (shown once).
    pub secret: Option<String>,
    pub old_secret: String,
    /// Every lab as (id, name, served by this client).
    pub labs: Vec<(String, String, bool)>,
    /// The client serves every lab.
    pub all_labs: bool,
    /// Its newest back-channel logout deliveries, with when each was queued.
    pub logouts: Vec<(LogoutDeliveryView, String)>,
}

fn expires(t: Option<i64>) -> String {
    t.map_or_else(|| "never".to_owned(), when)
}

fn query(req: &HttpRequest, key: &str) -> Option<String> {
    decode_pairs(req.query_string().as_bytes())
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn with_notice(path: &str, notice: &str) -> HttpResponse {
    see_other(&format!(
        "{path}?notice={}",
        url::form_urlencoded::byte_serialize(notice.as_bytes()).collect::<String>()
    ))
}

/// `GET /admin/clients`.
pub async fn list(state: State, req: HttpRequest) -> HttpResponse {
    let c = match console(&state, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let clients = match ops::list_clients(&state, &c.admin).await {
        Ok(v) => v,
        Err(e) => return refusal(&req, &e),
    };
    html(&ClientsPage {
        head: c.head(&req),
        notice: query(&req, "notice"),
        clients: clients
            .into_iter()
            .map(|v| ClientRow {
                expires: expires(v.expires_at),
                client_id: v.client_id.to_string(),
                name: v.name,
                public: v.public,
                builtin: v.builtin,
                disabled: v.disabled,
                admin_of: v.admin_of,
                pkce_optional: v.pkce_optional,
                labs: if v.labs.iter().any(|l| l == "*") {
                    "every lab".to_owned()
                } else if v.labs.is_empty() {
                    "none".to_owned()
                } else {
                    format!("{} lab(s)", v.labs.len())
                },
            })
            .collect(),
    })
}

async fn client_page(
    state: &State,
    c: Console,
    req: &HttpRequest,
    client: ClientView,
    notice: Option<String>,
) -> Result<ClientPage, AdminError> {
    let all_labs = client.labs.iter().any(|l| l == "*");
    let labs = ops::list_labs(state, &c.admin)
        .await?
        .into_iter()
        .map(|l| {
            let served = client.labs.iter().any(|s| *s == *l.id.as_str());
            (l.id.to_string(), l.name, served)
        })
        .collect();
    let logouts = ops::client_logout_deliveries(state, &c.admin, &client.client_id)
        .await?
        .into_iter()
        .map(|d| {
            let at = when(d.created_at);
            (d, at)
        })
        .collect();
    Ok(ClientPage {
        head: c.head(req),
        logouts,
        notice,
        expires: expires(client.expires_at),
        client,
        secret: None,
        old_secret: String::new(),
        labs,
        all_labs,
    })
}

/// `GET /admin/clients/{client}`.
pub async fn page(state: State, req: HttpRequest, client: web::Path<ClientId>) -> HttpResponse {
    let c = match console(&state, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let notice = query(&req, "notice");
    let page = match ops::get_client(&state, &c.admin, &client).await {
        Ok(v) => client_page(&state, c, &req, v, notice).await,
        Err(e) => Err(e),
    };
    match page {
        Ok(p) => html(&p),
        Err(e) => refusal(&req, &e),
    }
}

/// `POST /admin/clients/{client}/{update|disable|enable|rotate-secret|delete}`.
pub async fn action(
    state: State,
    req: HttpRequest,
    path: web::Path<(ClientId, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let c = match console(&state, &req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (client, action) = path.into_inner();
    let form = decode_pairs(&body);
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if !cookies::csrf_ok(&state, &c.browser, CSRF_PURPOSE, get("csrf").unwrap_or("")) {
        return refusal(
            &req,
            &AdminError::invalid(
                "csrf",
                "this form has expired: reload the page and try again",
            ),
        );
    }
    let back = format!("/admin/clients/{client}");
    let question = match action.as_str() {
        "delete" => Some((
            "Delete this client?",
            "Its grants, refresh tokens and consents end at once and its access tokens stop \
             passing introspection. This cannot be undone.",
            "Delete client",
        )),
        "rotate-secret" => Some((
            "Rotate this client's secret?",
            "A new secret is shown once; the old one keeps working for the overlap you chose, \
             then stops.",
            "Rotate secret",
        )),
        "disable" => Some((
            "Disable this client?",
            "It cannot authenticate and its tokens are inactive until it is enabled again.",
            "Disable client",
        )),
        // Saving with a lab unticked ends the client's grants there: ask first.
        "update" => {
            let serves = match ops::get_client(&state, &c.admin, &client).await {
                Ok(v) => v.labs,
                Err(e) => return refusal(&req, &e),
            };
            let ticked: Vec<&str> = form
                .iter()
                .filter(|(k, _)| k == "labs")
                .map(|(_, v)| v.as_str())
                .collect();
            let narrows = get("all_labs").is_none()
                && serves
                    .iter()
                    .any(|l| l == "*" || !ticked.contains(&l.as_str()));
            narrows.then_some((
                "Stop serving some labs?",
                "This client's grants for the labs you unticked end at once, and their members \
                 can no longer sign in to it.",
                "Save",
            ))
        }
        _ => None,
    };
    if let Some((q, consequence, button)) = question
        && get("confirm") != Some("yes")
    {
        return html(&ConfirmPage {
            head: c.head(&req),
            question: q.to_owned(),
            consequence: consequence.to_owned(),
            button: button.to_owned(),
            action: req.path().to_owned(),
            cancel: back,
            fields: form
                .iter()
                .filter(|(k, _)| k != "csrf" && k != "confirm")
                .cloned()
                .collect(),
        });
    }
    let a = &c.admin;
    let done = match action.as_str() {
        "update" => {
            let body = ClientUpdateBody {
                name: get("name").map(str::to_owned),
                redirect_uris: Some(
                    get("redirect_uris")
                        .unwrap_or("")
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                post_logout_redirect_uris: None,
                labs: Some(if get("all_labs").is_some() {
                    vec!["*".to_owned()]
                } else {
                    form.iter()
                        .filter(|(k, v)| k == "labs" && !v.is_empty())
                        .map(|(_, v)| v.clone())
                        .collect()
                }),
                features: Some(
                    get("features")
                        .unwrap_or("")
                        .split(|c: char| c.is_whitespace() || c == ',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                // Text that is not JSON stays text, which the JWK Set check then refuses.
                jwks: get("jwks")
                    .filter(|j| !j.trim().is_empty())
                    .map(|j| serde_json::from_str(j).unwrap_or_else(|_| j.to_owned().into())),
                jwks_uri: get("jwks_uri").map(str::to_owned),
                // The form's checkboxes, when it carries them (`flags`): unticked is false.
                pkce_optional: get("pkce_flag").map(|_| get("pkce_optional").is_some()),
                require_par: get("flags").map(|_| get("require_par").is_some()),
                require_dpop: get("flags").map(|_| get("require_dpop").is_some()),
                // Empty stops back-channel logout.
                backchannel_logout_uri: get("flags")
                    .map(|_| get("backchannel_logout_uri").unwrap_or("").to_owned()),
                // Empty: no longer a resource server.
                resource_uri: get("flags").map(|_| get("resource_uri").unwrap_or("").to_owned()),
                resources: get("flags").map(|_| {
                    get("resources")
                        .unwrap_or("")
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect()
                }),
            };
            ops::update_client(&state, a, &client, body)
                .await
                .map(|_| with_notice(&back, "Saved."))
        }
        "disable" | "enable" => {
            let off = action == "disable";
            ops::set_client_disabled(&state, a, &client, off)
                .await
                .map(|_| {
                    with_notice(
                        &back,
                        if off {
                            "Client disabled."
                        } else {
                            "Client enabled."
                        },
                    )
                })
        }
        "delete" => ops::delete_client(&state, a, &client).await.map(|d| {
            with_notice(
                "/admin/clients",
                &format!(
                    "Client {} deleted: {} grant(s) and {} consent(s) ended.",
                    d.client_id, d.grants, d.consents
                ),
            )
        }),
        "rotate-secret" => {
            let body = RotateSecretBody {
                overlap: get("overlap").map(str::to_owned),
            };
            match ops::rotate_client_secret(&state, a, &client, body).await {
                Ok(r) => {
                    let old = match r.old_secret_until {
                        Some(t) => format!("The old secret works until {}, then stops.", when(t)),
                        None => "The old secret stopped working.".to_owned(),
                    };
                    return match client_page(&state, c, &req, r.client, None).await {
                        Ok(mut page) => {
                            page.secret = Some(r.client_secret);
                            page.old_secret = old;
                            html(&page)
                        }
                        Err(e) => refusal(&req, &e),
                    };
                }
                Err(e) => Err(e),
            }
        }
        _ => Err(AdminError::NotFound("no such action".into())),
    };
    done.unwrap_or_else(|e| refusal(&req, &e))
}
