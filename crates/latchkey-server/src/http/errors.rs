//! Rendering errors: `OAuthError` as the RFCs' JSON body with the right status and headers;
//! page errors as Latchkey's own HTML page.

use crate::protocol::OAuthError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use latchkey_core::ErrorCode;

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(d) = &self.debug {
            tracing::warn!(error = %self.code, debug = %d, "request refused");
        }
        let mut r = HttpResponse::build(self.status_code());
        r.insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"));
        // The one place an `OAuthError` becomes a response body or challenge: the
        // description is restricted to RFC 6749's character set here (no quote or backslash
        // is left to break the challenge's quoted string either).
        let description = self.public_description();
        if let Some(n) = &self.dpop_nonce {
            r.insert_header((latchkey_core::dpop::NONCE_HEADER, &**n));
        }
        match self.code {
            _ if self.dpop_challenge => {
                r.insert_header((
                    "WWW-Authenticate",
                    format!(
                        "DPoP error=\"{}\", error_description=\"{description}\", algs=\"{}\"",
                        self.code,
                        crate::token::dpop::algs().join(" "),
                    ),
                ));
            }
            ErrorCode::InvalidToken | ErrorCode::InsufficientScope => {
                r.insert_header((
                    "WWW-Authenticate",
                    format!(
                        "Bearer error=\"{}\", error_description=\"{description}\"",
                        self.code,
                    ),
                ));
            }
            ErrorCode::InvalidClient if self.basic_challenge => {
                r.insert_header(("WWW-Authenticate", "Basic realm=\"latchkey\""));
            }
            _ => {}
        }
        r.json(serde_json::json!({
            "error": self.code.as_str(),
            "error_description": description,
        }))
    }
}

/// An error shown as a page: the browser gets Latchkey's own page, never a redirect.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    pub code: Option<ErrorCode>,
    pub debug: Option<String>,
    /// Seconds for `Retry-After` (a 429 or 503).
    pub retry_after: Option<i64>,
}

impl PageError {
    pub fn bad_request(title: &str, message: impl Into<String>) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            title: title.into(),
            message: message.into(),
            code: None,
            debug: None,
            retry_after: None,
        }
    }

    pub fn from_oauth(e: OAuthError) -> PageError {
        PageError {
            status: StatusCode::BAD_REQUEST,
            title: "This sign-in request is not valid".into(),
            message: format!(
                "{} Return to the application and try again, or tell its administrators.",
                capitalise(&e.description)
            ),
            code: Some(e.code),
            debug: e.debug,
            retry_after: None,
        }
    }

    pub fn internal(debug: impl std::fmt::Display) -> PageError {
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong".into(),
            message: "Latchkey could not complete this request. Please try again in a moment."
                .into(),
            code: Some(ErrorCode::ServerError),
            debug: Some(debug.to_string()),
            retry_after: None,
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => {
            let mut out: String = f.to_uppercase().collect();
            out.push_str(c.as_str());
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.message)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        if let Some(d) = &self.debug {
            if self.status.is_server_error() {
                tracing::error!(debug = %d, "{}", self.title);
            } else {
                tracing::info!(debug = %d, "{}", self.title);
            }
        }
        let mut r = super::pages::message(
            self.status,
            &self.title,
            &self.message,
            None,
            self.code.map(|c| c.as_str().to_owned()),
        );
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(secs.max(1)),
            );
        }
        r
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> PageError {
        PageError::internal(e)
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> OAuthError {
        OAuthError::server_error(e)
    }
}

impl From<crate::keys::KeysError> for OAuthError {
    fn from(e: crate::keys::KeysError) -> OAuthError {
        OAuthError::server_error(e)
    }
}

impl From<crate::keys::KeysError> for PageError {
    fn from(e: crate::keys::KeysError) -> PageError {
        PageError::internal(e)
    }
}

impl From<crate::signin::SignInError> for PageError {
    fn from(e: crate::signin::SignInError) -> PageError {
        use crate::signin::SignInError as E;
        match e {
            E::InvalidRequest(e) => PageError::from_oauth(e),
            E::FlowGone => PageError::bad_request(
                "This sign-in has expired",
                "This sign-in page is no longer valid (it expired or was already used). Return to the application and start again.",
            ),
            E::CookiesNeeded => PageError::bad_request(
                "Cookies are needed to sign in",
                "Your browser did not send Latchkey's cookie. Allow cookies for this site, then return to the application and start again.",
            ),
            E::OtherBrowser => PageError::bad_request(
                "This sign-in was started elsewhere",
                "This sign-in page belongs to another browser. Return to the application and start again.",
            ),
            E::SignInFirst => PageError::bad_request(
                "Sign in first",
                "This step needs the sign-in you started. Return to the application and start again.",
            ),
            E::TooManyCodes => PageError::bad_request(
                "Too many wrong codes",
                "This sign-in was stopped after too many wrong codes. Return to the application and start again.",
            ),
            E::TooManyFlows { retry_after } => PageError {
                status: StatusCode::TOO_MANY_REQUESTS,
                title: "Too many sign-ins started".into(),
                message: "Too many sign-ins were started from your network address lately. Wait a few minutes, then return to the application and start again.".into(),
                code: None,
                debug: None,
                retry_after: Some(retry_after),
            },
            E::TooManyUserCodes { retry_after } => PageError {
                status: StatusCode::TOO_MANY_REQUESTS,
                title: "Too many wrong codes".into(),
                message: "Too many wrong device codes were entered from your network address lately. Wait a few minutes, then enter the code your device shows again.".into(),
                code: None,
                debug: None,
                retry_after: Some(retry_after),
            },
            E::LabNotAvailable => PageError::bad_request(
                "This lab is not available",
                "You can only continue with one of the labs offered. Return to the application and start again.",
            ),
            E::NotAMember { client } => PageError {
                status: StatusCode::FORBIDDEN,
                title: "Not available for your labs".into(),
                message: format!(
                    "You are signed in, but {client} is only for members of the labs it serves, and you are not a member of any of them. Ask your lab's administrator to add you, or sign out and use another account."
                ),
                code: Some(ErrorCode::AccessDenied),
                debug: None,
                retry_after: None,
            },
            E::TotpAlreadySetUp => PageError::bad_request(
                "Authenticator app already set up",
                "Remove the current authenticator app first, then set up the new one.",
            ),
            E::NameMissing => {
                PageError::bad_request("Name missing", "Give the passkey or security key a name.")
            }
            E::NotPossible(description) => {
                PageError::bad_request("Sign-in not possible", description)
            }
            E::Store(e) => PageError::internal(e),
            E::Internal(d) => PageError::internal(d),
        }
    }
}
