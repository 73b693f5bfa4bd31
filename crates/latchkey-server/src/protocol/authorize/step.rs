//! The next step of a login flow (OIDC Core section 3.1.2.3-3.1.2.4): whether the user counts
//! as signed in for the request (`prompt=login`, `max_age`), which factor is missing for the
//! level demanded, whether consent is needed, or whether a code can be issued.

use super::super::strength::{
    Demands, Enrolled, Factor, Gap, Grace, Rules, Strength, assess, offer,
};
use super::AuthRequest;
use latchkey_core::{Acr, ErrorCode};

/// Whether the session's factors include a first factor fresh enough for this request, i.e.
/// the user counts as signed in for it (the lab is decided only then).
pub fn signed_in(req: &AuthRequest, factors: &[Factor], now: i64) -> bool {
    match counted(req, factors, now) {
        None => false,
        // Whether there is a first factor does not depend on the rules.
        Some(fresh) => !matches!(
            assess(&fresh, None, Acr::Pwd, Rules::default()),
            Gap::FirstFactor
        ),
    }
}

/// What is known about the signed-in user when deciding a step.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// The factors the session proved, and when.
    pub factors: &'a [Factor],
    /// The levels the request, the client, the lab and the user's roles demand.
    pub demands: Demands,
    /// The factors the user has enrolled.
    pub enrolled: Enrolled,
    /// The lab policy's enrolment grace as this user stands in it (`None`: no grace).
    pub grace: Option<Grace>,
    /// What this deployment asks of factors (`[authentication]`).
    pub rules: Rules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask for a first factor (password or passkey).
    Login,
    /// Ask only for the missing factor.
    StepUp {
        need: Acr,
    },
    /// The user has no factor that reaches `need`: enrol one now. `can_defer` while the
    /// policy's grace period lasts and nothing but policy demands it.
    Enrol {
        need: Acr,
        can_defer: bool,
    },
    Consent,
    /// Issue a code carrying this strength.
    Issue(Strength),
    /// Send an error to the client (`prompt=none`, or a level the user cannot reach).
    Refuse(ErrorCode),
}

/// The session's factors that count for this request. Without `prompt=login` or `max_age`,
/// all of them. With `max_age`, those proven at most `max_age` seconds ago, and those proven
/// within this flow however long it took. With `prompt=login` / `max_age=0`, only those proven
/// within this flow: a factor proven before the flow never counts, even in the same whole
/// second as the request (timestamps are whole seconds). `None`: the request demands an
/// authentication in this flow and none happened yet.
pub fn counted(req: &AuthRequest, factors: &[Factor], now: i64) -> Option<Vec<Factor>> {
    // A method proven in this flow is recorded in the session at the time of that proof,
    // which is never before the request arrived.
    let in_flow = |f: &Factor| f.at >= req.requested_at && req.proven.contains(&f.method);
    // max_age=0 means "authenticate now", like prompt=login (OIDC Core errata).
    let keep: Vec<Factor> = if req.prompt.login || req.max_age == Some(0) {
        if !req.authenticated() {
            return None;
        }
        factors.iter().filter(|f| in_flow(f)).copied().collect()
    } else if let Some(m) = req.max_age {
        factors
            .iter()
            .filter(|f| f.at >= now.saturating_sub(m) || in_flow(f))
            .copied()
            .collect()
    } else {
        factors.to_vec()
    };
    Some(keep)
}

/// Decides the next step of a flow from the request, the user's standing and the consent on
/// record.
pub fn next_step(
    req: &AuthRequest,
    standing: Option<Standing<'_>>,
    consent_on_record: bool,
    now: i64,
) -> Next {
    let login = || {
        if req.prompt.none {
            Next::Refuse(ErrorCode::LoginRequired)
        } else {
            Next::Login
        }
    };
    let Some(st) = standing else {
        return login();
    };
    let Some(fresh) = counted(req, st.factors, now) else {
        return login();
    };
    let grace_open = st.grace.is_some_and(|g| g.open(now));
    // A deferral was granted (and counted) while the grace was open; it holds for this flow.
    let need = if req.deferred_enrolment && st.grace.is_some() {
        st.demands.without_policy()
    } else {
        st.demands.level()
    };
    let strength = match assess(&fresh, None, need, st.rules) {
        Gap::FirstFactor => return login(),
        Gap::Met(s) => s,
        Gap::StepUp { have, need } => {
            let interactive = |n: Next| {
                if req.prompt.none {
                    Next::Refuse(ErrorCode::InteractionRequired)
                } else {
                    n
                }
            };
            if offer(&st.enrolled, need, st.rules).any() {
                return interactive(Next::StepUp { need });
            }
            if grace_open {
                return interactive(Next::Enrol {
                    need,
                    can_defer: have >= st.demands.without_policy(),
                });
            }
            return Next::Refuse(ErrorCode::UnmetAuthenticationRequirements);
        }
    };
    if req.prompt.consent || !consent_on_record {
        return if req.prompt.none {
            Next::Refuse(ErrorCode::ConsentRequired)
        } else {
            Next::Consent
        };
    }
    Next::Issue(strength)
}
