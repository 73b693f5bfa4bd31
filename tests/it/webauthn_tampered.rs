//! Property tests of what a browser sends to `POST /webauthn/finish`: a real passkey's
//! assertion (sign-in) and attestation (registration), with the client data, the
//! authenticator data or the signature changed in ways proptest chooses. Every one is refused
//! with a 4xx, none is a 500, and nothing changes: no sign-in, no new credential, the stored
//! signature counter as it was.

use crate::common::*;
use crate::passkeys::{client, login_page, sign_discoverable};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::CreationChallengeResponse;

#[derive(Debug, Clone)]
enum Tamper {
    /// clientDataJSON replaced by arbitrary bytes.
    Garbage(Vec<u8>),
    /// `type` other than the ceremony's.
    Type(String),
    /// A challenge that is not the one issued.
    Challenge(Vec<u8>),
    /// An origin other than Latchkey's.
    Origin(String),
    /// One byte of the signed authenticator data changed.
    AuthenticatorData(usize, u8),
    /// One byte of the signature changed (sign-in only).
    Signature(usize, u8),
}

fn tampering() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(Tamper::Garbage),
        "[ -~]{0,30}".prop_map(Tamper::Type),
        proptest::collection::vec(any::<u8>(), 0..48).prop_map(Tamper::Challenge),
        prop_oneof![
            "https?://[a-z.]{1,20}(:[0-9]{1,5})?".boxed(),
            "[ -~]{0,40}".boxed()
        ]
        .prop_map(Tamper::Origin),
        (any::<usize>(), 1u8..).prop_map(|(i, x)| Tamper::AuthenticatorData(i, x)),
        (any::<usize>(), 1u8..).prop_map(|(i, x)| Tamper::Signature(i, x)),
    ]
}

fn b64(v: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap()
}

/// Applies `t` to a credential answer (as `webauthn.js` posts it); false when the change
/// would leave it valid (the same type, challenge or origin drawn again), so the case is
/// skipped.
fn apply(credential: &mut Value, t: &Tamper, field: &str, real_type: &str, origin: &str) -> bool {
    let response = &mut credential["response"];
    let mut client_data: Value = serde_json::from_slice(&b64(&response["clientDataJSON"])).unwrap();
    let mut flip = |key: &str, i: usize, x: u8| {
        let Some(v) = response.get(key) else {
            return false;
        };
        let mut bytes = b64(v);
        if bytes.is_empty() {
            return false;
        }
        let at = i % bytes.len();
        bytes[at] ^= x;
        response[key] = json!(URL_SAFE_NO_PAD.encode(bytes));
        true
    };
    match t {
        Tamper::Garbage(bytes) => {
            if serde_json::from_slice::<Value>(bytes).ok().as_ref() == Some(&client_data) {
                return false;
            }
            response["clientDataJSON"] = json!(URL_SAFE_NO_PAD.encode(bytes));
            return true;
        }
        Tamper::Type(s) if s != real_type => client_data["type"] = json!(s),
        Tamper::Challenge(c) if URL_SAFE_NO_PAD.encode(c) != client_data["challenge"] => {
            client_data["challenge"] = json!(URL_SAFE_NO_PAD.encode(c))
        }
        Tamper::Origin(o) if o != origin => client_data["origin"] = json!(o),
        Tamper::AuthenticatorData(i, x) => return flip(field, *i, *x),
        Tamper::Signature(i, x) => return flip("signature", *i, *x),
        _ => return false,
    }
    response["clientDataJSON"] = json!(URL_SAFE_NO_PAD.encode(client_data.to_string()));
    true
}

#[test]
fn tampered_webauthn_answers_are_refused_and_change_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::with_config(Backend::Sqlite, on_localhost));
    let origin = origin(&app).as_str().trim_end_matches('/').to_owned();
    let account = Browser::new(&app);
    let mut sp = SoftPasskey::new(true);
    let (cred_id, c) = runtime.block_on(async {
        account_sign_in(&account).await;
        let id = register(&app, &account, &mut sp, "passkey").await;
        (id, client(&app).await)
    });
    let stored = || {
        runtime.block_on(async {
            let rows = app.state.store.list_webauthn(&app.user_id).await.unwrap();
            rows.iter()
                .map(|r| (r.id.clone(), r.sign_count))
                .collect::<Vec<_>>()
        })
    };
    let before = stored();
    let sp = std::cell::RefCell::new(sp);
    let tried = std::cell::Cell::new(0);

    let mut runner = TestRunner::new(Config::with_cases(40));
    runner
        .run(&(tampering(), any::<bool>()), |(t, sign_in)| {
            runtime.block_on(async {
                let b = Browser::new(&app);
                let (ceremony, mut answer, field, real_type) = if sign_in {
                    let (flow, csrf) = login_page(&app, &b, &c.0, &[]).await;
                    let (ceremony, options) = begin(
                        &b,
                        "/webauthn/login/begin",
                        &[("flow", &flow), ("csrf", &csrf), ("mode", "modal")],
                    )
                    .await;
                    let pkc = sign_discoverable(
                        &mut *sp.borrow_mut(),
                        options,
                        &cred_id,
                        &app.user_id,
                        &crate::common::origin(&app),
                    );
                    let v = serde_json::to_value(&pkc).unwrap();
                    (ceremony, v, "authenticatorData", "webauthn.get")
                } else {
                    let csrf = account_csrf(&account).await;
                    let (ceremony, options) = begin(
                        &account,
                        "/webauthn/register/begin",
                        &[("csrf", &csrf), ("kind", "passkey")],
                    )
                    .await;
                    let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
                    let mut fresh = SoftPasskey::new(true);
                    let cred = fresh
                        .do_registration(crate::common::origin(&app), ccr)
                        .unwrap();
                    let v = serde_json::to_value(&cred).unwrap();
                    (ceremony, v, "attestationObject", "webauthn.create")
                };
                if matches!(t, Tamper::Signature(..)) && !sign_in {
                    return Ok(());
                }
                if !apply(&mut answer, &t, field, real_type, &origin) {
                    return Ok(());
                }
                let who = if sign_in { &b } else { &account };
                let (status, v) = finish(who, &app, &ceremony, &answer).await;
                tried.set(tried.get() + 1);
                prop_assert!(
                    (400..500).contains(&status),
                    "{t:?} (sign-in: {sign_in}) answered {status}: {v}"
                );
                Ok(())
            })
        })
        .unwrap();

    assert!(
        tried.get() >= 20,
        "only {} tampered answers were sent",
        tried.get()
    );
    assert_eq!(stored(), before, "no credential added, no counter moved");
    let signed_in = runtime.block_on(async {
        let entries = app.state.store.audit_for(&app.user_id).await.unwrap();
        entries
            .iter()
            .filter(|e| e.action == "login.passkey")
            .count()
    });
    assert_eq!(signed_in, 0, "no tampered answer signed anyone in");
    runtime.block_on(app.stop());
}
