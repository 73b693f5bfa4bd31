//! The two halves of a WebAuthn ceremony. Beginning asks the relying party (webauthn-rs) for
//! a challenge and stores its server half ([`Pending`]) as a ceremony bound to the browser
//! (by the hash of its browser id) for `authentication.webauthn_timeout_secs`; finishing
//! takes that ceremony once, refuses it from another browser, and verifies the
//! authenticator's answer against it.

use super::{Begun, Finished, Kind, Options, Outcome, Refusal, assertion, registration};
use crate::factors;
use crate::secret::{TokenHash, random_id};
use crate::signin::{Next, SignInError, SignedIn, account};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::factors::{Ceremony, Taken};
use crate::store::flows::LoginFlow;
use crate::store::sessions::Session;
use crate::store::users::User;
use latchkey_core::Acr;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, SecurityKeyAuthentication,
    SecurityKeyRegistration,
};

/// The server half of a ceremony, stored between begin and finish.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Pending {
    /// Passwordless sign-in within a login flow.
    Login {
        flow: String,
        state: DiscoverableAuthentication,
    },
    /// Step-up with user verification (reaches `phr`).
    VerifyPasskey {
        flow: String,
        state: PasskeyAuthentication,
    },
    /// Step-up as a second factor after a password (reaches `mfa`, `phr` when verified).
    VerifySecurityKey {
        flow: String,
        state: SecurityKeyAuthentication,
    },
    /// Registration; `back`: where the page goes once the credential is stored.
    RegisterPasskey {
        back: String,
        state: PasskeyRegistration,
    },
    RegisterSecurityKey {
        back: String,
        state: SecurityKeyRegistration,
    },
}

impl Pending {
    /// The ceremony's purpose as stored.
    fn purpose(&self) -> &'static str {
        match self {
            Pending::Login { .. } => "login",
            Pending::VerifyPasskey { .. } | Pending::VerifySecurityKey { .. } => "verify",
            Pending::RegisterPasskey { .. } | Pending::RegisterSecurityKey { .. } => "register",
        }
    }
}

/// What the browser answers at the end of a ceremony: the ceremony's id, the
/// authenticator's credential (JSON, as `navigator.credentials` gave it) and, for a
/// registration, the name the user gave it.
#[derive(Debug)]
pub struct Answer {
    pub ceremony: String,
    pub credential: serde_json::Value,
    pub name: Option<String>,
    /// Who sent it (`source`, `user_agent`), for the audit entry of a sign-in or step-up.
    pub origin: serde_json::Value,
}

/// Why a step of a ceremony stops early: a refusal for the user or a failure. Lets the steps
/// below use `?` for both; [`settle`] splits them again.
enum Stop {
    Refused(Refusal),
    Failed(SignInError),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refused(r)
    }
}

impl From<SignInError> for Stop {
    fn from(e: SignInError) -> Stop {
        Stop::Failed(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Failed(e.into())
    }
}

fn settle<T>(r: Result<T, Stop>) -> Result<Result<T, Refusal>, SignInError> {
    match r {
        Ok(t) => Ok(Ok(t)),
        Err(Stop::Refused(r)) => Ok(Err(r)),
        Err(Stop::Failed(e)) => Err(e),
    }
}

/// The relying party, if Latchkey is served where passkeys work.
fn rp(state: &AppState) -> Result<&Webauthn, Refusal> {
    state.webauthn.as_ref().ok_or(Refusal::Unavailable)
}

/// Stores `pending` as a ceremony bound to `browser`; returns its id.
async fn put(
    state: &AppState,
    browser: &str,
    user_id: Option<String>,
    pending: &Pending,
    now: i64,
) -> Result<String, SignInError> {
    let c = Ceremony {
        id: random_id(),
        browser_hash: TokenHash::of(browser).to_vec(),
        user_id,
        purpose: pending.purpose().to_owned(),
        state: serde_json::to_string(pending).map_err(SignInError::internal)?,
        expires_at: now + state.config.authentication.webauthn_timeout_secs,
    };
    state.store.put_ceremony(&c).await?;
    Ok(c.id)
}

/// Takes ceremony `id` (once), if it is this browser's: its server half and the user it
/// began for.
async fn take(
    state: &AppState,
    browser: &str,
    id: &str,
) -> Result<(Pending, Option<String>), Stop> {
    let mine = TokenHash::of(browser);
    let c = match state
        .store
        .take_ceremony(id, move |stored| mine.matches(stored))
        .await?
    {
        Taken::Ceremony(c) => c,
        Taken::Gone => return Err(Refusal::Expired.into()),
        Taken::OtherBrowser => return Err(Refusal::OtherBrowser.into()),
    };
    let pending = serde_json::from_str(&c.state).map_err(SignInError::internal)?;
    Ok((pending, c.user_id))
}

/// Passwordless sign-in in `flow`: a challenge any discoverable credential may answer.
/// `conditional`: offered through the browser's autofill (conditional mediation) rather than
/// a modal dialog.
pub async fn begin_login(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    conditional: bool,
    now: i64,
) -> Result<Result<Begun, Refusal>, SignInError> {
    settle(start_login(state, flow, browser, conditional, now).await)
}

async fn start_login(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    conditional: bool,
    now: i64,
) -> Result<Begun, Stop> {
    let (mut options, st) = rp(state)?
        .start_discoverable_authentication()
        .map_err(SignInError::internal)?;
    if !conditional {
        options.mediation = None;
    }
    let pending = Pending::Login {
        flow: flow.id.clone(),
        state: st,
    };
    let ceremony = put(state, browser, None, &pending, now).await?;
    Ok(Begun {
        ceremony,
        options: Options::Request(options),
    })
}

/// The step-up of `flow`: a challenge for the signed-in user's own credentials (`current`:
/// the browser's live session). With `need` = `phr` the credential must verify its user (a
/// passkey); otherwise it is a second factor after the password (a security key).
pub async fn begin_verify(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    current: Option<(Session, User)>,
    need: Option<Acr>,
    now: i64,
) -> Result<Result<Begun, Refusal>, SignInError> {
    settle(start_verify(state, flow, browser, current, need, now).await)
}

async fn start_verify(
    state: &AppState,
    flow: &LoginFlow,
    browser: &str,
    current: Option<(Session, User)>,
    need: Option<Acr>,
    now: i64,
) -> Result<Begun, Stop> {
    let (session, _) = current.ok_or(Refusal::SignInEnded)?;
    let mut rows = state.store.list_webauthn(&session.user_id).await?;
    // Where `phr` needs a hardware key, only those are asked for: another would prove no
    // more than the session has.
    if need == Some(Acr::Phr) && state.config.authentication.phr_requires_attestation {
        rows.retain(|r| state.is_hardware(r));
    }
    if rows.is_empty() {
        return Err(Refusal::NoCredentials.into());
    }
    let creds: Vec<Credential> = rows
        .iter()
        .map(factors::credential)
        .collect::<Result<_, _>>()
        .map_err(SignInError::internal)?;
    let rp = rp(state)?;
    let flow = flow.id.clone();
    let (options, pending) = if need == Some(Acr::Phr) {
        let keys: Vec<_> = creds.into_iter().map(Into::into).collect();
        let (o, st) = rp
            .start_passkey_authentication(&keys)
            .map_err(SignInError::internal)?;
        (o, Pending::VerifyPasskey { flow, state: st })
    } else {
        let keys: Vec<_> = creds.into_iter().map(Into::into).collect();
        let (o, st) = rp
            .start_securitykey_authentication(&keys)
            .map_err(SignInError::internal)?;
        (o, Pending::VerifySecurityKey { flow, state: st })
    };
    let ceremony = put(state, browser, Some(session.user_id), &pending, now).await?;
    Ok(Begun {
        ceremony,
        options: Options::Request(options),
    })
}

/// Registration of a credential of `kind` for the signed-in user (`current`), which needs a
/// recent sign-in at their level ([`account::change_requirement`]). `flow`: the login flow
/// that asked for an enrolment, which the page returns to (otherwise the account page).
pub async fn begin_register(
    state: &AppState,
    browser: &str,
    current: Option<(Session, User)>,
    kind: Kind,
    flow: Option<&str>,
    now: i64,
) -> Result<Result<Begun, Refusal>, SignInError> {
    settle(start_register(state, browser, current, kind, flow, now).await)
}

async fn start_register(
    state: &AppState,
    browser: &str,
    current: Option<(Session, User)>,
    kind: Kind,
    flow: Option<&str>,
    now: i64,
) -> Result<Begun, Stop> {
    let (session, user) = current.ok_or(Refusal::NotSignedIn)?;
    if account::change_requirement(state, &session, &user.id, now)
        .await?
        .is_some()
    {
        return Err(Refusal::ConfirmFirst.into());
    }
    let back = match flow {
        Some(f) => format!(
            "/login/continue?flow={}",
            url::form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
        ),
        None => "/account".to_owned(),
    };
    let existing = state.store.list_webauthn(&user.id).await?;
    let exclude: Vec<_> = existing
        .iter()
        .filter_map(|r| factors::credential(r).ok())
        .map(|c| c.cred_id)
        .collect();
    let handle = factors::user_handle(&user.id).map_err(SignInError::internal)?;
    let display = user.name.clone().unwrap_or_else(|| user.email.clone());
    let rp = rp(state)?;
    let (mut options, pending) = match kind {
        Kind::SecurityKey => {
            let (mut o, st) = rp
                .start_securitykey_registration(
                    handle,
                    &user.email,
                    &display,
                    Some(exclude),
                    None,
                    None,
                )
                .map_err(SignInError::internal)?;
            // webauthn-rs asks for credProtect `userVerificationRequired` beside
            // userVerification `preferred`, a combination Chromium refuses before asking any
            // authenticator. A security key is a second factor after the password and need not
            // verify its user, so its credential is not bound to user verification either.
            if let Some(ext) = o.public_key.extensions.as_mut() {
                ext.cred_protect = None;
            }
            (o, Pending::RegisterSecurityKey { back, state: st })
        }
        Kind::Passkey => {
            let (mut o, st) = rp
                .start_passkey_registration(handle, &user.email, &display, Some(exclude))
                .map_err(SignInError::internal)?;
            // A passkey must be discoverable so that it can sign in without a
            // username (`residentKey` supersedes the legacy `requireResidentKey` in
            // WebAuthn Level 2).
            if let Some(sel) = o.public_key.authenticator_selection.as_mut() {
                sel.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
            }
            (o, Pending::RegisterPasskey { back, state: st })
        }
    };
    // The authenticator's attestation, verified against the trusted roots when the answer
    // comes ([`crate::attestation`]), is what lets a key count as hardware (`hwk`). An
    // authenticator that gives none, or a browser that withholds it, registers all the same.
    if state.config.authentication.webauthn_request_attestation {
        options.public_key.attestation =
            Some(webauthn_rs_proto::AttestationConveyancePreference::Direct);
    }
    let ceremony = put(state, browser, Some(user.id), &pending, now).await?;
    Ok(Begun {
        ceremony,
        options: Options::Creation(options),
    })
}

/// The authenticator's answer, in the shape the ceremony expects.
fn parse<T: DeserializeOwned>(credential: serde_json::Value) -> Result<T, Refusal> {
    serde_json::from_value(credential).map_err(|_| Refusal::Malformed)
}

/// Where the page goes after a factor was proven in a ceremony (a JSON answer: the page
/// navigates itself).
fn located(s: SignedIn) -> Result<Finished, SignInError> {
    let next = match s.next {
        Next::Local(l) => l,
        Next::Page { path, flow, .. } => format!("{path}?flow={flow}"),
        // The page shows the refusal where the flow continues.
        Next::NotAMember {
            flow: Some(flow), ..
        } => format!("/login/continue?flow={flow}"),
        Next::Client(_) | Next::NotAMember { flow: None, .. } => {
            return Err(SignInError::internal(
                "a ceremony answered the client directly",
            ));
        }
    };
    Ok(Finished {
        next,
        token: Some(s.token),
    })
}

/// Finishes the ceremony `answer` names, begun in this browser (`browser`: its id, if it
/// sent the cookie; `current`: its live session): a sign-in or step-up moves its login flow
/// on ([`assertion`]), a registration stores the credential ([`registration`]).
pub async fn finish(
    state: &AppState,
    browser: Option<&str>,
    current: Option<(Session, User)>,
    answer: Answer,
    now: i64,
) -> Result<Outcome, SignInError> {
    settle(finish_answer(state, browser, current, answer, now).await)
}

async fn finish_answer(
    state: &AppState,
    browser: Option<&str>,
    current: Option<(Session, User)>,
    answer: Answer,
    now: i64,
) -> Result<Finished, Stop> {
    let browser = browser.ok_or(Refusal::CookiesNeeded)?;
    let (pending, ceremony_user) = take(state, browser, &answer.ceremony).await?;
    let Answer {
        credential,
        name,
        origin,
        ..
    } = answer;
    match pending {
        Pending::Login { flow, state: st } => {
            let pkc: PublicKeyCredential = parse(credential)?;
            let rp = rp(state)?;
            let (handle, cred_id) = rp
                .identify_discoverable_authentication(&pkc)
                .map_err(|_| Refusal::Anonymous)?;
            let row = state
                .store
                .find_webauthn(&factors::cred_id_b64(cred_id))
                .await?
                .filter(|r| factors::user_handle(&r.user_id).ok() == Some(handle))
                .ok_or(Refusal::UnknownCredential)?;
            let mut cred = factors::credential(&row).map_err(SignInError::internal)?;
            let result = rp.finish_discoverable_authentication_v2(&pkc, st, &cred);
            let s = assertion::sign_in(
                state, &flow, browser, current, &row, &mut cred, result, &origin, now,
            )
            .await??;
            Ok(located(s)?)
        }
        Pending::VerifyPasskey { flow, state: st } => {
            let pkc: PublicKeyCredential = parse(credential)?;
            let result = rp(state)?.finish_passkey_authentication(&pkc, &st);
            let s = assertion::step_up(
                state,
                &flow,
                browser,
                current,
                ceremony_user.as_deref(),
                pkc.get_credential_id(),
                result,
                &origin,
                now,
            )
            .await??;
            Ok(located(s)?)
        }
        Pending::VerifySecurityKey { flow, state: st } => {
            let pkc: PublicKeyCredential = parse(credential)?;
            let result = rp(state)?.finish_securitykey_authentication(&pkc, &st);
            let s = assertion::step_up(
                state,
                &flow,
                browser,
                current,
                ceremony_user.as_deref(),
                pkc.get_credential_id(),
                result,
                &origin,
                now,
            )
            .await??;
            Ok(located(s)?)
        }
        Pending::RegisterPasskey { back, state: st } => {
            let reg: RegisterPublicKeyCredential = parse(credential)?;
            let result = rp(state)?
                .finish_passkey_registration(&reg, &st)
                .map(Credential::from);
            let token = registration::register(
                state,
                current,
                ceremony_user.as_deref(),
                Kind::Passkey,
                name.as_deref(),
                result,
                now,
            )
            .await??;
            Ok(Finished { next: back, token })
        }
        Pending::RegisterSecurityKey { back, state: st } => {
            let reg: RegisterPublicKeyCredential = parse(credential)?;
            let result = rp(state)?
                .finish_securitykey_registration(&reg, &st)
                .map(Credential::from);
            let token = registration::register(
                state,
                current,
                ceremony_user.as_deref(),
                Kind::SecurityKey,
                name.as_deref(),
                result,
                now,
            )
            .await??;
            Ok(Finished { next: back, token })
        }
    }
}
