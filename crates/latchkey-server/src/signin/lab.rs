//! The lab picker of a login flow: a signed-in user who belongs to several labs, whose
//! authorization request named none of them, chooses the lab the tokens will be for. The
//! choice then decides everything lab-specific (MFA policy, enrolment grace, the code's lab).
//! Only the user's own labs that the client serves are offered or accepted.

use super::{Next, SignInError, flow};
use crate::protocol::authorize::Transition;
use crate::state::AppState;
use crate::store::clients::Client;
use crate::store::flows::LoginFlow;
use crate::store::labs::Lab;
use crate::store::sessions::Session;
use crate::store::users::User;

/// The labs a token for `client` may be for: the user's labs that the client serves.
pub async fn served(
    state: &AppState,
    user_id: &str,
    client: &Client,
) -> Result<Vec<Lab>, SignInError> {
    let mut labs = state.store.member_labs(user_id).await?;
    labs.retain(|l| client.labs.serves(Some(&l.id)));
    Ok(labs)
}

/// What the picker offers; `None`: nothing to choose (any more), the flow decides where to go.
pub async fn choices(
    state: &AppState,
    flow: &LoginFlow,
    user: &User,
) -> Result<Option<Vec<Lab>>, SignInError> {
    let client = flow::client(state, &flow.request.client_id).await?;
    let labs = served(state, &user.id, &client).await?;
    Ok((labs.len() >= 2).then_some(labs))
}

/// The outcome of the picker's form.
#[derive(Debug)]
pub enum Outcome {
    /// Show the picker again with these labs and this message.
    Retry {
        labs: Vec<Lab>,
        message: String,
    },
    Next(Next),
}

/// Records the chosen lab (`chosen`: a lab id) in the flow and moves it on.
pub async fn pick(
    state: &AppState,
    flow: &LoginFlow,
    current: (Session, User),
    chosen: Option<&str>,
    now: i64,
) -> Result<Outcome, SignInError> {
    let client = flow::client(state, &flow.request.client_id).await?;
    let labs = served(state, &current.1.id, &client).await?;
    let Some(chosen) = chosen else {
        return Ok(Outcome::Retry {
            labs,
            message: "Choose one of your labs.".into(),
        });
    };
    let Some(lab) = labs.iter().find(|l| l.id == chosen) else {
        // Only a tampered form gets here: the page offers the user's own labs (that the
        // client serves) only.
        tracing::info!(user = %current.1.id, flow = %flow.id, "lab picker: not one of the user's labs");
        state.store.finish_flow(&flow.id).await?;
        return Err(SignInError::LabNotAvailable);
    };
    let t = Transition::LabDecided(Some(lab.id.clone()));
    Ok(Outcome::Next(
        flow::advance(state, flow, t, Some(current), now).await?,
    ))
}
