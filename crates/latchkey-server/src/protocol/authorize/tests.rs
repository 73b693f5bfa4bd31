//! Unit tests of request validation, the lab choice and the next step.

use super::*;
use crate::protocol::strength::{Demands, Enrolled, Factor, Grace, Method, Rules};
use latchkey_core::{Acr, ErrorCode};

const CB: &str = "https://app.example/cb";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn uris() -> Vec<String> {
    vec![CB.to_owned()]
}

fn params(extra: &[(&str, &str)]) -> RawParams {
    let mut pairs: Vec<(String, String)> = vec![
        ("client_id".into(), "c1".into()),
        ("redirect_uri".into(), CB.into()),
        ("response_type".into(), "code".into()),
        ("scope".into(), "openid".into()),
        ("code_challenge".into(), CHALLENGE.into()),
        ("code_challenge_method".into(), "S256".into()),
    ];
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            pairs.push(((*k).into(), (*v).into()));
        }
    }
    RawParams::from_pairs(pairs)
}

fn run(p: RawParams, public: bool) -> Result<AuthRequest, AuthorizeError> {
    run_for(p, public, false)
}

fn run_for(p: RawParams, public: bool, pkce_optional: bool) -> Result<AuthRequest, AuthorizeError> {
    let u = uris();
    validate(
        p,
        Some(ClientView {
            redirect_uris: &u,
            public,
            pkce_optional,
            allows_authorization_code: true,
            require_par: false,
            resources: &[],
        }),
        1000,
    )
}

/// RFC 9126 section 5: a client that must push is refused a request it did not push (back at
/// its redirect URI: the URI is registered), and served one it did.
#[test]
fn rfc9126_a_client_that_must_push_is_refused_an_unpushed_request() {
    let u = uris();
    let view = || ClientView {
        redirect_uris: &u,
        public: true,
        pkce_optional: false,
        allows_authorization_code: true,
        require_par: true,
        resources: &[],
    };
    let refused = validate(params(&[]), Some(view()), 1000);
    assert_eq!(redirect_code(refused), ErrorCode::InvalidRequest);
    let mut pushed = params(&[]);
    pushed.pushed = true;
    assert!(validate(pushed, Some(view()), 1000).is_ok());
}

fn redirect_code(r: Result<AuthRequest, AuthorizeError>) -> ErrorCode {
    match r {
        Err(AuthorizeError::Redirect { error, .. }) => error.code,
        other => panic!("expected an error redirect, got {other:?}"),
    }
}

#[test]
fn valid_request() {
    let r = run(params(&[("state", "s"), ("max_age", "60")]), true).unwrap();
    assert_eq!(r.max_age, Some(60));
    assert_eq!(r.state.as_deref(), Some("s"));
}

#[test]
fn rfc6749_4_1_2_1_unknown_client_never_redirects() {
    let r = validate(params(&[]), None, 0);
    assert!(matches!(r, Err(AuthorizeError::Page(_))));
}

#[test]
fn rfc6749_4_1_2_1_unregistered_redirect_uri_never_redirects() {
    for uri in [
        "https://evil.example/cb",
        "https://app.example/cb/x",
        "https://app.example/cb?a=1",
    ] {
        assert!(matches!(
            run(params(&[("redirect_uri", uri)]), false),
            Err(AuthorizeError::Page(_))
        ));
    }
    assert!(matches!(
        run(params(&[("redirect_uri", "")]), false),
        Err(AuthorizeError::Page(_))
    ));
}

#[test]
fn rfc9700_2_1_1_client_without_pkce_is_invalid_request_unless_it_opted_out() {
    let p = params(&[("code_challenge", ""), ("code_challenge_method", "")]);
    assert_eq!(
        redirect_code(run(p.clone(), true)),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        redirect_code(run(p.clone(), false)),
        ErrorCode::InvalidRequest,
        "confidential clients need PKCE too"
    );
    assert!(run_for(p.clone(), false, true).is_ok(), "a legacy client");
    // A public client can never opt out.
    assert_eq!(
        redirect_code(run_for(p, true, true)),
        ErrorCode::InvalidRequest
    );
}

#[test]
fn rfc7636_plain_method_is_refused() {
    let p = params(&[("code_challenge_method", "plain")]);
    assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
    let p = params(&[("code_challenge_method", "")]);
    assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
}

#[test]
fn rfc6749_3_1_duplicate_parameters_are_invalid_request() {
    let mut p = params(&[]);
    p.duplicates.push("scope".into());
    assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
}

#[test]
fn rfc6749_4_1_2_1_response_type_token_is_unsupported() {
    let p = params(&[("response_type", "token")]);
    assert_eq!(
        redirect_code(run(p, false)),
        ErrorCode::UnsupportedResponseType
    );
}

#[test]
fn oidc_core_3_1_2_1_prompt_none_with_login_is_invalid() {
    let p = params(&[("prompt", "none login")]);
    assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
}

const PWD: Method = Method::Password;

fn standing(factors: &[Factor]) -> Standing<'_> {
    Standing {
        factors,
        demands: Demands::default(),
        enrolled: Enrolled::default(),
        grace: None,
        rules: Rules::default(),
    }
}

fn at(method: Method, at: i64) -> [Factor; 1] {
    [Factor { method, at }]
}

fn issued(n: Next) -> Acr {
    match n {
        Next::Issue(s) => s.acr,
        other => panic!("expected a code, got {other:?}"),
    }
}

#[test]
fn oidc_core_3_1_2_1_prompt_none_without_session_is_login_required() {
    let r = run(params(&[("prompt", "none")]), false).unwrap();
    assert_eq!(
        next_step(&r, None, true, 1000),
        Next::Refuse(ErrorCode::LoginRequired)
    );
}

#[test]
fn oidc_core_3_1_2_1_prompt_none_without_consent_is_consent_required() {
    let r = run(params(&[("prompt", "none")]), false).unwrap();
    let f = at(PWD, 900);
    assert_eq!(
        next_step(&r, Some(standing(&f)), false, 1000),
        Next::Refuse(ErrorCode::ConsentRequired)
    );
    assert_eq!(
        issued(next_step(&r, Some(standing(&f)), true, 1000)),
        Acr::Pwd
    );
}

#[test]
fn oidc_core_3_1_2_1_prompt_login_forces_reauthentication() {
    let mut r = run(params(&[("prompt", "login")]), false).unwrap();
    let f = at(PWD, r.requested_at);
    assert_eq!(next_step(&r, Some(standing(&f)), true, 1000), Next::Login);
    r.proven.push(PWD);
    assert_eq!(
        issued(next_step(&r, Some(standing(&f)), true, 1001)),
        Acr::Pwd
    );
}

/// Only the factors of this sign-in count for `prompt=login` and `max_age=0`: a TOTP code
/// proven before the flow, in the very second the request arrived, is not re-proven by a
/// password given within the flow.
#[test]
fn oidc_core_3_1_2_1_prompt_login_counts_only_factors_proven_in_this_flow() {
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let mut r = run(params(&[extra]), false).unwrap();
        let t = r.requested_at;
        let mut st = standing(&[]);
        st.demands.request = Some(Acr::Mfa);
        st.enrolled.totp = true;
        let earlier = [
            Factor { method: PWD, at: t },
            Factor {
                method: Method::Totp,
                at: t,
            },
        ];
        st.factors = &earlier;
        assert_eq!(next_step(&r, Some(st), true, t), Next::Login, "{extra:?}");
        // The password again, within the flow and the same second: the TOTP code does not
        // count, so mfa needs a fresh second factor.
        r.proven.push(PWD);
        assert_eq!(
            next_step(&r, Some(st), true, t),
            Next::StepUp { need: Acr::Mfa },
            "{extra:?}"
        );
        st.demands.request = None;
        match next_step(&r, Some(st), true, t) {
            Next::Issue(s) => {
                assert_eq!((s.acr, s.amr), (Acr::Pwd, vec![latchkey_core::Amr::Pwd]));
            }
            other => panic!("expected a code, got {other:?}"),
        }
        // Once the code is given within the flow, both count.
        r.proven.push(Method::Totp);
        assert_eq!(issued(next_step(&r, Some(st), true, t)), Acr::Mfa);
    }
}

/// With `max_age`, a factor proven before the flow counts only while it is young enough,
/// even if it shares the request's second; a factor proven in the flow counts however long
/// the flow took.
#[test]
fn oidc_core_3_1_2_1_max_age_does_not_count_an_earlier_factor_of_the_same_second() {
    let mut r = run(params(&[("max_age", "5")]), false).unwrap();
    r.requested_at = 1000;
    r.proven.push(PWD);
    for (now, want) in [(1010, None), (1004, Some(Acr::Mfa))] {
        let factors = [
            Factor {
                method: PWD,
                at: now,
            },
            Factor {
                method: Method::Totp,
                at: 1000,
            },
        ];
        let mut st = standing(&factors);
        st.demands.request = Some(Acr::Mfa);
        st.enrolled.totp = true;
        let next = next_step(&r, Some(st), true, now);
        match want {
            None => assert_eq!(next, Next::StepUp { need: Acr::Mfa }),
            Some(acr) => assert_eq!(issued(next), acr),
        }
    }
}

#[test]
fn oidc_core_3_1_2_1_max_age_exceeded_forces_reauthentication() {
    let mut r = run(params(&[("max_age", "60")]), false).unwrap();
    r.requested_at = 1000;
    assert_eq!(
        next_step(&r, Some(standing(&at(PWD, 900))), true, 1000),
        Next::Login
    );
    assert_eq!(
        issued(next_step(&r, Some(standing(&at(PWD, 950))), true, 1000)),
        Acr::Pwd
    );
    // A password given in this flow counts however long the flow took.
    r.proven.push(PWD);
    assert_eq!(
        issued(next_step(&r, Some(standing(&at(PWD, 1000))), true, 1200)),
        Acr::Pwd
    );
}

#[test]
fn prompt_consent_always_asks() {
    let r = run(params(&[("prompt", "consent")]), false).unwrap();
    assert_eq!(
        next_step(&r, Some(standing(&at(PWD, 999))), true, 1000),
        Next::Consent
    );
}

#[test]
fn acr_values_and_essential_claims_set_the_requested_level() {
    let r = run(params(&[("acr_values", "phr mfa")]), false).unwrap();
    assert_eq!(r.requested_acr, Some(Acr::Mfa));
    let claims = r#"{"id_token":{"acr":{"essential":true,"values":["phr"]}}}"#;
    let r = run(params(&[("acr_values", "mfa"), ("claims", claims)]), false).unwrap();
    assert_eq!(r.requested_acr, Some(Acr::Phr));
    let r = run(params(&[("acr_values", "urn:x")]), false).unwrap();
    assert_eq!(r.requested_acr, None);
}

#[test]
fn oidc_core_5_5_1_1_essential_acr_with_only_unknown_values_is_refused() {
    // acr values are case-sensitive: `PHR` is none of ours, and issuing `pwd` instead would
    // silently weaken what the client said it must have.
    for claims in [
        r#"{"id_token":{"acr":{"essential":true,"values":["PHR"]}}}"#,
        r#"{"userinfo":{"acr":{"essential":true,"value":"urn:x:loa:4"}}}"#,
    ] {
        let p = params(&[("claims", claims)]);
        assert_eq!(
            redirect_code(run(p, false)),
            ErrorCode::UnmetAuthenticationRequirements,
            "{claims}"
        );
    }
    // One known value among unknown ones is enough; no values, or not essential: no demand.
    let known = r#"{"id_token":{"acr":{"essential":true,"values":["PHR","mfa"]}}}"#;
    let r = run(params(&[("claims", known)]), false).unwrap();
    assert_eq!(r.requested_acr, Some(Acr::Mfa));
    for claims in [
        r#"{"id_token":{"acr":{"essential":true}}}"#,
        r#"{"id_token":{"acr":{"essential":false,"values":["PHR"]}}}"#,
    ] {
        let r = run(params(&[("claims", claims)]), false).unwrap();
        assert_eq!(r.requested_acr, None, "{claims}");
    }
}

#[test]
fn oidc_core_5_5_1_essential_acr_values_of_the_wrong_shape_are_invalid_request() {
    for acr in [
        r#"{"essential":true,"value":["phr"]}"#,
        r#"{"essential":true,"values":"phr"}"#,
        r#"{"essential":true,"values":[["phr"]]}"#,
        r#"{"essential":true,"values":[1]}"#,
        r#"{"essential":true,"values":[]}"#,
        r#"{"essential":true,"values":["phr",2]}"#,
    ] {
        let claims = format!(r#"{{"id_token":{{"acr":{acr}}}}}"#);
        let p = params(&[("claims", claims.as_str())]);
        assert_eq!(
            redirect_code(run(p, false)),
            ErrorCode::InvalidRequest,
            "{claims}"
        );
    }
}

#[test]
fn oidc_core_5_5_malformed_claims_parameter_is_invalid_request() {
    let p = params(&[("claims", "{not json")]);
    assert_eq!(redirect_code(run(p, false)), ErrorCode::InvalidRequest);
}

#[test]
fn insufficient_strength_steps_up_or_refuses_with_prompt_none() {
    let mut r = run(params(&[("acr_values", "mfa")]), false).unwrap();
    let f = at(PWD, 999);
    let mut st = standing(&f);
    st.demands.request = r.requested_acr;
    st.enrolled.totp = true;
    assert_eq!(
        next_step(&r, Some(st), true, 1000),
        Next::StepUp { need: Acr::Mfa }
    );
    r.prompt.none = true;
    assert_eq!(
        next_step(&r, Some(st), true, 1000),
        Next::Refuse(ErrorCode::InteractionRequired)
    );
}

#[test]
fn unreachable_level_without_grace_is_unmet_authentication_requirements() {
    let r = run(params(&[]), false).unwrap();
    let f = at(PWD, 999);
    let mut st = standing(&f);
    st.demands.client = Some(Acr::Mfa);
    assert_eq!(
        next_step(&r, Some(st), true, 1000),
        Next::Refuse(ErrorCode::UnmetAuthenticationRequirements)
    );
}

#[test]
fn lab_policy_with_grace_leads_to_enrolment_that_can_be_deferred() {
    let mut r = run(params(&[]), false).unwrap();
    let f = at(PWD, 999);
    let mut st = standing(&f);
    st.demands.lab = Some(Acr::Mfa);
    st.grace = Some(Grace {
        days: Some(7),
        logins: None,
        started_at: None,
        used_logins: 0,
    });
    assert_eq!(
        next_step(&r, Some(st), true, 1000),
        Next::Enrol {
            need: Acr::Mfa,
            can_defer: true
        }
    );
    r.deferred_enrolment = true;
    assert_eq!(issued(next_step(&r, Some(st), true, 1000)), Acr::Pwd);
    // The client's own minimum is not deferred by the lab's grace.
    st.demands.client = Some(Acr::Mfa);
    r.deferred_enrolment = false;
    assert_eq!(
        next_step(&r, Some(st), true, 1000),
        Next::Enrol {
            need: Acr::Mfa,
            can_defer: false
        }
    );
    // Once the grace is over, enrolment is no longer offered at sign-in.
    st.grace = Some(Grace {
        days: Some(7),
        logins: None,
        started_at: Some(0),
        used_logins: 0,
    });
    assert_eq!(
        next_step(&r, Some(st), true, 8 * 86_400),
        Next::Refuse(ErrorCode::UnmetAuthenticationRequirements)
    );
}

const LABS: [LabRef<'static>; 2] = [
    LabRef {
        id: "lab-a",
        name: "Alpha",
        chosen_before: false,
    },
    LabRef {
        id: "lab-b",
        name: "Beta",
        chosen_before: false,
    },
];

#[test]
fn one_lab_or_none_needs_no_choice() {
    let r = run(params(&[("lab", "lab-b")]), false).unwrap();
    assert_eq!(choose_lab(&r, &[]), LabChoice::NoLab);
    assert_eq!(
        choose_lab(&r, &LABS[..1]),
        LabChoice::Lab("lab-a".into()),
        "the only lab, whatever the hint"
    );
}

#[test]
fn several_labs_take_a_member_hint_by_id_or_name_else_pick() {
    let r = run(params(&[]), false).unwrap();
    assert_eq!(choose_lab(&r, &LABS), LabChoice::Pick);
    for hint in ["lab-b", "Beta"] {
        let mut r = run(params(&[("lab", hint)]), false).unwrap();
        assert_eq!(r.lab_hint.as_deref(), Some(hint));
        // A browser already signed in, a lab never chosen for this client: ask.
        assert_eq!(choose_lab(&r, &LABS), LabChoice::Pick);
        let mut labs = LABS;
        labs[1].chosen_before = true;
        assert_eq!(choose_lab(&r, &labs), LabChoice::Lab("lab-b".into()));
        // The user signed in within this flow: they see the request anyway.
        r.proven.push(PWD);
        assert_eq!(choose_lab(&r, &LABS), LabChoice::Lab("lab-b".into()));
    }
    let r = run(params(&[("lab", "lab-z")]), false).unwrap();
    assert_eq!(
        choose_lab(&r, &LABS),
        LabChoice::Pick,
        "foreign hint ignored"
    );
}

#[test]
fn a_chosen_lab_holds_only_while_the_user_is_a_member() {
    let mut r = run(params(&[("lab", "Alpha")]), false).unwrap();
    r.proven.push(PWD);
    r.lab = Some("lab-b".into());
    assert_eq!(choose_lab(&r, &LABS), LabChoice::Lab("lab-b".into()));
    r.lab = Some("lab-z".into());
    assert_eq!(choose_lab(&r, &LABS), LabChoice::Lab("lab-a".into()));
}

#[test]
fn oidc_core_3_1_2_6_prompt_none_with_several_labs_is_interaction_required() {
    let r = run(params(&[("prompt", "none")]), false).unwrap();
    assert_eq!(
        choose_lab(&r, &LABS),
        LabChoice::Refuse(ErrorCode::InteractionRequired)
    );
    // A hint for a lab the user never chose for this client is refused like a foreign one,
    // so `prompt=none` cannot list the user's labs; a lab chosen before is taken silently.
    for hint in ["Beta", "lab-b", "lab-z"] {
        let r = run(params(&[("prompt", "none"), ("lab", hint)]), false).unwrap();
        assert_eq!(
            choose_lab(&r, &LABS),
            LabChoice::Refuse(ErrorCode::InteractionRequired),
            "{hint}"
        );
    }
    let mut labs = LABS;
    labs[1].chosen_before = true;
    let r = run(params(&[("prompt", "none"), ("lab", "Beta")]), false).unwrap();
    assert_eq!(choose_lab(&r, &labs), LabChoice::Lab("lab-b".into()));
    let r = run(params(&[("prompt", "none"), ("lab", "Alpha")]), false).unwrap();
    assert_eq!(
        choose_lab(&r, &labs),
        LabChoice::Refuse(ErrorCode::InteractionRequired)
    );
}

#[test]
fn requests_stored_before_labs_still_parse() {
    let r = run(params(&[]), false).unwrap();
    let mut v = serde_json::to_value(&r).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("lab");
    o.remove("lab_hint");
    let back: AuthRequest = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}
