//! HTTP: thin actix-web handlers, one module per endpoint. Each parses its request, calls
//! `protocol` and `store`, and renders JSON, a page or a redirect.

pub mod account;
pub mod account_data;
pub mod admin;
pub mod admin_refused;
pub mod api;
pub mod authorize;
pub mod client_addr;
pub mod consent;
pub mod cookies;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod email;
pub mod errors;
pub mod home;
pub mod hsts;
pub mod introspect;
pub mod invite;
pub mod jwks;
pub mod lab_picker;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod pages;
pub mod par;
pub mod password_reset;
pub mod ready;
pub mod revoke;
pub mod static_files;
pub mod token;
pub mod userinfo;
pub mod verify;
pub mod webauthn;

use actix_web::web;

pub type State = web::Data<crate::state::AppState>;

/// The `metrics.bind` listener's one route.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics::scrape_open));
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(security_headers())
            .wrap(actix_web::middleware::from_fn(hsts::add))
            .wrap(actix_web::middleware::from_fn(admin_refused::record))
            .wrap(actix_web::middleware::from_fn(metrics::observe))
            .route("/", web::get().to(home::page))
            .route(
                "/.well-known/openid-configuration",
                web::get().to(discovery::openid_configuration),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                web::get().to(discovery::oauth_metadata),
            )
            .route("/jwks.json", web::get().to(jwks::jwks))
            .route("/authorize", web::get().to(authorize::get))
            .route("/authorize", web::post().to(authorize::post))
            .route("/login", web::get().to(login::page))
            .route("/login", web::post().to(login::submit))
            .route("/login/continue", web::get().to(login::resume))
            .route("/login/lab", web::get().to(lab_picker::page))
            .route("/login/lab", web::post().to(lab_picker::submit))
            .route("/login/verify", web::get().to(verify::page))
            .route("/login/verify", web::post().to(verify::submit))
            .route("/login/enrol", web::get().to(verify::enrol_page))
            .route("/login/enrol", web::post().to(verify::defer))
            .route(
                "/webauthn/login/begin",
                web::post().to(webauthn::login_begin),
            )
            .route(
                "/webauthn/verify/begin",
                web::post().to(webauthn::verify_begin),
            )
            .route(
                "/webauthn/register/begin",
                web::post().to(webauthn::register_begin),
            )
            .route("/webauthn/finish", web::post().to(webauthn::finish))
            .route("/account", web::get().to(account::page))
            .route("/account/totp/setup", web::post().to(account::totp_setup))
            .route(
                "/account/totp/confirm",
                web::post().to(account::totp_confirm),
            )
            .route("/account/totp/remove", web::post().to(account::totp_remove))
            .route(
                "/account/password",
                web::post().to(account::password_change),
            )
            .route("/account/email", web::post().to(email::change))
            .route("/account/data", web::post().to(account_data::download))
            .route(
                "/account/delete",
                web::post().to(account_data::request_deletion),
            )
            .route(
                "/account/delete/cancel",
                web::post().to(account_data::cancel_deletion),
            )
            .route(
                "/account/email/confirm",
                web::post().to(email::send_confirmation),
            )
            .route("/email/confirm/{token}", web::get().to(email::confirm_page))
            .route(
                "/email/confirm/{token}",
                web::post().to(email::confirm_submit),
            )
            .route(
                "/password/forgot",
                web::get().to(password_reset::forgot_page),
            )
            .route(
                "/password/forgot",
                web::post().to(password_reset::forgot_submit),
            )
            .route(
                "/password/reset/{token}",
                web::get().to(password_reset::reset_page),
            )
            .route(
                "/password/reset/{token}",
                web::post().to(password_reset::reset_submit),
            )
            .route(
                "/account/consents/withdraw",
                web::post().to(account::consent_withdraw),
            )
            .route(
                "/account/sessions/end",
                web::post().to(account::session_end),
            )
            .route(
                "/account/webauthn/rename",
                web::post().to(account::webauthn_rename),
            )
            .route(
                "/account/webauthn/remove",
                web::post().to(account::webauthn_remove),
            )
            .route(
                "/account/recovery-codes",
                web::post().to(account::recovery_codes),
            )
            .route("/consent", web::get().to(consent::page))
            .route("/consent", web::post().to(consent::submit))
            .route("/token", web::post().to(token::token))
            .route("/par", web::post().to(par::push))
            .route(
                "/device_authorization",
                web::post().to(device::device_authorization),
            )
            .route("/device", web::get().to(device::page))
            .route("/device", web::post().to(device::submit))
            .route("/device/done", web::get().to(device::done))
            .route("/userinfo", web::get().to(userinfo::get))
            .route("/userinfo", web::post().to(userinfo::post))
            .route("/revoke", web::post().to(revoke::revoke))
            .route("/introspect", web::post().to(introspect::introspect))
            .route("/logout", web::get().to(logout::get))
            .route("/logout", web::post().to(logout::post))
            .route("/invite/{token}", web::get().to(invite::page))
            .route("/invite/{token}", web::post().to(invite::submit))
            .configure(admin::configure)
            .configure(api::configure)
            .route("/health", web::get().to(health))
            .route("/health", web::head().to(health))
            .route("/ready", web::get().to(ready::ready))
            .route("/ready", web::head().to(ready::ready))
            .route("/metrics", web::get().to(metrics::scrape))
            .route("/static/{file}", web::get().to(static_files::serve))
            .default_service(web::to(not_found)),
    );
}

/// The hosted pages' Content-Security-Policy: nothing inline, forms post to Latchkey only,
/// scripts talk to Latchkey only (`webauthn.js`).
pub const CSP_SELF: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add((
            "Content-Security-Policy",
            // Pages post only to Latchkey; the form_post response sets its own policy naming
            // the client's redirect URI (DefaultHeaders keeps a header a handler set).
            CSP_SELF,
        ))
}

async fn health() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

async fn not_found() -> actix_web::HttpResponse {
    not_found_page()
}

/// The 404 page.
pub fn not_found_page() -> actix_web::HttpResponse {
    pages::message(
        actix_web::http::StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
        None,
        None,
    )
}

/// Decodes an `application/x-www-form-urlencoded` body or query string into pairs, keeping
/// duplicates so that callers can refuse them (RFC 6749 section 3.1).
pub fn decode_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A hosted page's form body: single-valued fields; a repeated one, or one holding a NUL
/// character (no name, address or id has one, and PostgreSQL cannot store it), is a 400 page
/// naming it.
pub fn page_form(body: &[u8]) -> Result<Params, errors::PageError> {
    let form = Params::parse(body).map_err(|k| {
        errors::PageError::bad_request("Invalid form", format!("The field `{k}` was sent twice."))
    })?;
    if let Some((k, _)) = form.single.iter().find(|(_, v)| v.contains('\0')) {
        return Err(errors::PageError::bad_request(
            "Invalid form",
            format!("The field `{k}` holds a character that is not allowed."),
        ));
    }
    Ok(form)
}

/// Refuses (400 page) a form whose `csrf` field is not this browser's token for `purpose`.
pub fn require_csrf(
    state: &crate::state::AppState,
    browser: &str,
    purpose: &str,
    form: &Params,
) -> Result<(), errors::PageError> {
    if cookies::csrf_ok(state, browser, purpose, form.get("csrf").unwrap_or("")) {
        Ok(())
    } else {
        Err(errors::PageError::bad_request(
            "This form has expired",
            "The form could not be verified. Reload the page and try again.",
        ))
    }
}

/// Single-valued form parameters; a repeated parameter is an error naming it, except
/// `resource` (RFC 8707 section 2), which may repeat.
pub struct Params {
    single: std::collections::HashMap<String, String>,
    resource: Vec<String>,
}

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Params, String> {
        let mut single = std::collections::HashMap::new();
        let mut resource = Vec::new();
        for (k, v) in decode_pairs(raw) {
            if k == "resource" {
                resource.push(v);
            } else if single.insert(k.clone(), v).is_some() {
                return Err(k);
            }
        }
        Ok(Params { single, resource })
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.single
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    /// Every `resource` value, in order (RFC 8707).
    pub fn resources(&self) -> &[String] {
        &self.resource
    }
}

#[cfg(test)]
mod tests {
    use super::{Params, decode_pairs, page_form};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any request body is decoded, or refused by name; nothing panics.
        #[test]
        fn any_form_body_is_answered(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_pairs(&body);
            let _ = Params::parse(&body);
            let _ = page_form(&body);
        }

        /// A form of distinct fields reads back as sent; a field sent twice is refused by its
        /// name (RFC 6749 section 3.1: parameters must not be repeated).
        #[test]
        fn forms_read_back_and_repeats_are_refused(
            fields in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{1,30}", 1..8)
        ) {
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            prop_assume!(!fields.contains_key("resource"));
            let parsed = Params::parse(body.as_bytes()).unwrap();
            for (k, v) in &fields {
                prop_assert_eq!(parsed.get(k), Some(v.as_str()));
            }
            let (k, v) = fields.iter().next().unwrap();
            let twice = format!("{body}&{}", url::form_urlencoded::Serializer::new(String::new())
                .append_pair(k, v).finish());
            prop_assert_eq!(Params::parse(twice.as_bytes()).err(), Some(k.clone()));
        }

        /// A value holding NUL is refused on the hosted pages (PostgreSQL cannot store it).
        #[test]
        fn nul_in_a_page_form_is_refused(a in "\\PC{0,10}", b in "\\PC{0,10}") {
            let body: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("name", &format!("{a}\0{b}"))
                .finish();
            prop_assert!(page_form(body.as_bytes()).is_err());
        }
    }
}
