//! Enrolment within a login flow: a user who has no factor that reaches the level their lab
//! or role policy demands is led through setting one up while the lab's grace period lasts,
//! and may defer it ("not now") when only policy demands it. Each deferral counts against the
//! grace of the flow's lab.

use super::{Next, SignInError, flow};
use crate::protocol::authorize::{self, Standing, Transition, next_step};
use crate::protocol::strength::{Grace, Rules};
use crate::state::AppState;
use crate::store::flows::LoginFlow;
use crate::store::sessions::Session;
use crate::store::users::User;
use latchkey_core::Acr;

/// What the enrolment page shows, when it is the flow's step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enrol {
    pub need: Acr,
    pub can_defer: bool,
    /// What is left of the grace, when the user may defer.
    pub days_left: Option<i64>,
    pub logins_left: Option<i64>,
}

/// The step `next_step` decides for this flow and user now (consent taken as given: only the
/// authentication part matters here).
async fn step_now(
    state: &AppState,
    flow: &LoginFlow,
    session: &Session,
    user: &User,
    now: i64,
) -> Result<(authorize::Next, Option<Grace>), SignInError> {
    let client = flow::client(state, &flow.request.client_id).await?;
    let (demands, enrolled, grace) =
        flow::demands_for(state, &flow.request, &client, &user.id).await?;
    let standing = Standing {
        factors: &session.factors,
        demands,
        enrolled,
        grace,
        rules: Rules::of(&state.config),
    };
    Ok((next_step(&flow.request, Some(standing), true, now), grace))
}

/// The enrolment the flow asks for now; `None`: nothing to enrol (any more), the flow decides
/// where to go (`/login/continue`).
pub async fn current(
    state: &AppState,
    flow: &LoginFlow,
    session: &Session,
    user: &User,
    now: i64,
) -> Result<Option<Enrol>, SignInError> {
    let (step, grace) = step_now(state, flow, session, user, now).await?;
    let authorize::Next::Enrol { need, can_defer } = step else {
        return Ok(None);
    };
    let grace = grace.filter(|_| can_defer);
    Ok(Some(Enrol {
        need,
        can_defer,
        days_left: grace.and_then(|g| g.days_left(now)),
        logins_left: grace.and_then(|g| g.logins_left()),
    }))
}

/// "Not now": only where the enrolment page offers it (the user has no factor that reaches
/// the level, only lab or role policy demands it, and the grace period is open).
pub async fn defer(
    state: &AppState,
    flow: &LoginFlow,
    current: (Session, User),
    now: i64,
) -> Result<Next, SignInError> {
    let (step, _) = step_now(state, flow, &current.0, &current.1, now).await?;
    if !matches!(
        step,
        authorize::Next::Enrol {
            can_defer: true,
            ..
        }
    ) {
        return Ok(Next::Local(format!("/login/continue?flow={}", flow.id)));
    }
    // The grace counted is the flow's lab's (the one whose policy offered the deferral).
    if let Some(lab) = &flow.request.lab {
        state.store.count_grace_login(&current.1.id, lab).await?;
    }
    flow::advance(
        state,
        flow,
        Transition::EnrolmentDeferred,
        Some(current),
        now,
    )
    .await
}
