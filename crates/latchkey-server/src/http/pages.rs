//! The hosted pages: one askama template struct per page (templates in `templates/`).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub client_name: String,
    pub flow: String,
    pub csrf: String,
    pub email: String,
    pub error: Option<String>,
    /// WebAuthn is available (the issuer has a host name).
    pub passkeys: bool,
}

#[derive(Template)]
#[template(path = "lab_picker.html")]
pub struct LabPickerPage {
    pub client_name: String,
    pub flow: String,
    pub csrf: String,
    pub email: String,
    /// The user's labs as (id, name, preselected), oldest membership first; the request's
    /// `lab` hint, when it names one of them, is preselected.
    pub labs: Vec<(String, String, bool)>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "verify.html")]
pub struct VerifyPage {
    pub client_name: String,
    pub flow: String,
    pub csrf: String,
    pub need: String,
    pub email: String,
    pub totp: bool,
    pub webauthn: bool,
    pub recovery: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "enrol.html")]
pub struct EnrolPage {
    pub client_name: String,
    pub flow: String,
    pub csrf_flow: String,
    pub csrf_account: String,
    pub need: String,
    pub offer_totp: bool,
    pub can_defer: bool,
    pub days_left: Option<i64>,
    pub logins_left: Option<i64>,
    pub passkeys: bool,
}

pub struct CredentialView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub synced: bool,
    /// Who vouched for it, when it counts as a hardware key (verified attestation).
    pub hardware: Option<String>,
    pub added: String,
    pub last_used: Option<String>,
}

/// A signed-in browser, as the account page lists it.
pub struct SessionView {
    pub id: String,
    /// "Firefox on Linux" and the like, from the user agent.
    pub browser: String,
    /// The whole user agent (shown on hover).
    pub user_agent: String,
    pub source: String,
    pub signed_in: String,
    pub last_used: String,
    pub acr: String,
    /// The browser showing the page.
    pub this: bool,
}

/// An application the user allowed, as the account page lists it.
pub struct ConsentView {
    pub client: String,
    pub name: String,
    pub scope: String,
    pub given: String,
    /// When the consent expires (`tokens.consent_ttl_days` after it was given).
    pub until: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub email: String,
    pub csrf: String,
    /// The session's current strength and what the user's lab and roles require.
    pub acr: String,
    pub policy: String,
    pub totp_since: Option<String>,
    pub credentials: Vec<CredentialView>,
    pub recovery_unused: i64,
    pub recovery_total: i64,
    pub recovery_last_used: Option<String>,
    /// Unused codes made before keyed hashes: the page asks for new ones.
    pub recovery_legacy: i64,
    pub events: Vec<(String, String)>,
    /// A refusal to show at the top.
    pub notice: Option<String>,
    /// What a change just did (e.g. "Your password was changed.").
    pub done: Option<String>,
    /// The account has a password (the change form then asks for it).
    pub has_password: bool,
    /// A link mailed to the address was opened (`email_verified` in tokens).
    pub email_verified: bool,
    /// The person asked for the account's deletion: when it happens ("on 2026-12-17", or
    /// "when an administrator completes it").
    pub deletion: Option<String>,
    /// The applications the user allowed, newest first.
    pub consents: Vec<ConsentView>,
    /// The signed-in browsers, most recently used first.
    pub sessions: Vec<SessionView>,
    pub passkeys: bool,
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
pub struct TotpSetupPage {
    pub csrf: String,
    pub qr: String,
    pub key: String,
    pub flow: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub codes: Vec<String>,
    pub next: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub client_name: String,
    pub flow: String,
    pub csrf: String,
    pub scopes: Vec<(String, String)>,
    /// The services (RFC 8707 resources) its tokens will be for: (name, resource URI).
    pub resources: Vec<(String, String)>,
    pub user_email: String,
    /// The user code, when a device asks (RFC 8628): the page asks the user to compare it.
    pub device_code: Option<String>,
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage {
    pub csrf: String,
    /// The code as typed, or from `verification_uri_complete`.
    pub user_code: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub csrf: String,
    pub client_id: String,
    pub post_logout_redirect_uri: String,
    pub state: String,
    pub client_name: Option<String>,
    pub user_email: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub title: String,
    pub message: String,
    pub detail: Option<String>,
    pub error_code: Option<String>,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage {
    pub redirect_uri: String,
    pub params: Vec<(String, String)>,
}

/// Renders a page with `Cache-Control: no-store` (pages carry CSRF tokens and personal data).
pub fn render(status: StatusCode, t: &impl Template) -> HttpResponse {
    match t.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header(("Cache-Control", "no-store"))
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Latchkey could not render this page.")
        }
    }
}

/// Renders a form shown again with a refusal: `status` (the input was refused), or, when
/// `busy` (the account's one password check at a time is running for another request, so
/// nothing was checked), `503` with `Retry-After: 1`, as the login form answers then.
pub fn render_refusal(status: StatusCode, busy: bool, t: &impl Template) -> HttpResponse {
    if !busy {
        return render(status, t);
    }
    let mut r = render(StatusCode::SERVICE_UNAVAILABLE, t);
    r.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(1),
    );
    r
}

/// Renders a page whose forms may lead (through a redirect after the POST) to `target`, the
/// client's registered redirect URI: CSP `form-action` also governs those redirects.
pub fn render_posting_to(
    status: StatusCode,
    t: &impl Template,
    target: Option<&str>,
) -> HttpResponse {
    let mut resp = render(status, t);
    if let Some(source) = target.and_then(form_action_source) {
        let csp = super::CSP_SELF.replace(
            "form-action 'self'",
            &format!("form-action 'self' {source}"),
        );
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&csp) {
            resp.headers_mut()
                .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, v);
        }
    }
    resp
}

/// The CSP source expression (CSP Level 3 section 2.3.1) that allows a form, or the redirect
/// that follows it, to reach `redirect_uri`. For `http`/`https`: its origin and path (a source
/// carries no query). A private-use scheme (RFC 8252 section 7.1, `com.example.app:/cb`) has no
/// host a source could name, so it is the scheme-source `com.example.app:`. `None` when the
/// URI cannot be parsed.
pub fn form_action_source(redirect_uri: &str) -> Option<String> {
    let target = url::Url::parse(redirect_uri).ok()?;
    match target.scheme() {
        "http" | "https" => {
            if !target.has_host() {
                return None;
            }
            // `;` and `,` would end the directive or the policy: percent-encode them, as the
            // source grammar wants.
            let path = target.path().replace(';', "%3B").replace(',', "%2C");
            Some(format!("{}{path}", target.origin().ascii_serialization()))
        }
        // A scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), nothing a policy parses.
        scheme => Some(format!("{scheme}:")),
    }
}

pub fn message(
    status: StatusCode,
    title: &str,
    message: &str,
    detail: Option<String>,
    error_code: Option<String>,
) -> HttpResponse {
    render(
        status,
        &MessagePage {
            title: title.into(),
            message: message.into(),
            detail,
            error_code,
        },
    )
}

/// Human descriptions of scopes for the consent page.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are (your account identifier)",
        "profile" => "See your name",
        "email" => "See your email address",
        "offline_access" => "Stay signed in to it when you are away",
        _ => "Access part of your account",
    }
}

#[cfg(test)]
mod tests {
    use super::form_action_source;

    #[test]
    fn csp_form_action_source_of_a_redirect_uri() {
        let src = |u: &str| form_action_source(u);
        assert_eq!(
            src("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example/cb")
        );
        assert_eq!(
            src("http://127.0.0.1:9/cb").as_deref(),
            Some("http://127.0.0.1:9/cb")
        );
        assert_eq!(
            src("https://app.example/a;b,c").as_deref(),
            Some("https://app.example/a%3Bb%2Cc")
        );
        assert_eq!(
            src("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(
            src("com.example.app://callback/x").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(src("not a uri"), None);
    }
}
