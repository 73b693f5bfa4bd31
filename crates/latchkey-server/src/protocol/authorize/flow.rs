//! The transitions of a stored login flow. Between steps, the flow's request changes only
//! through [`AuthRequest::apply`], so what a step may change is listed in one place and
//! tested without a database.

use super::super::strength::Method;
use super::AuthRequest;

/// Wrong second-factor codes allowed in one flow before it ends.
pub const FLOW_MAX_FAILED_CODES: u32 = 5;

/// Something that happened in a flow and changes what it needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The user proved a factor within this flow: it counts for `prompt=login` and `max_age`
    /// (and factors proven before the flow do not, whatever the clock's resolution).
    Proven(Method),
    /// A wrong second-factor code was entered in this flow.
    CodeRefused,
    /// The user chose to enrol later while their lab's grace period lasts.
    EnrolmentDeferred,
    /// The flow's lab (an id), decided from the memberships or picked; `None`: the picker
    /// must (again) decide.
    LabDecided(Option<String>),
    /// Consent was just given: don't ask again within this flow.
    Consented,
}

/// Whether the flow may go on after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Continue,
    /// Too many wrong codes: the flow ends.
    Stopped,
}

impl AuthRequest {
    /// Whether the user proved a factor within this flow.
    pub fn authenticated(&self) -> bool {
        !self.proven.is_empty()
    }

    /// Applies a transition to the flow's request.
    pub fn apply(&mut self, t: Transition) -> Progress {
        match t {
            Transition::Proven(m) => {
                if !self.proven.contains(&m) {
                    self.proven.push(m);
                }
            }
            Transition::CodeRefused => {
                self.failed_codes = self.failed_codes.saturating_add(1);
                if self.failed_codes >= FLOW_MAX_FAILED_CODES {
                    return Progress::Stopped;
                }
            }
            Transition::EnrolmentDeferred => self.deferred_enrolment = true,
            Transition::LabDecided(lab) => {
                // "Not now" was said to one lab's policy and grace: another lab asks again.
                if lab != self.lab {
                    self.deferred_enrolment = false;
                }
                self.lab = lab;
            }
            Transition::Consented => self.prompt.consent = false,
        }
        Progress::Continue
    }

    /// The request after a transition (for callers that own it).
    #[must_use]
    pub fn after(mut self, t: Transition) -> (AuthRequest, Progress) {
        let p = self.apply(t);
        (self, p)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ClientView, RawParams, validate};
    use super::*;

    fn request() -> AuthRequest {
        let uris = vec!["https://app.example/cb".to_owned()];
        let p = RawParams::from_pairs(vec![
            ("client_id".into(), "c1".into()),
            ("redirect_uri".into(), "https://app.example/cb".into()),
            ("response_type".into(), "code".into()),
            ("scope".into(), "openid".into()),
            ("prompt".into(), "consent".into()),
            (
                "code_challenge".into(),
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            ),
            ("code_challenge_method".into(), "S256".into()),
        ]);
        let client = ClientView {
            redirect_uris: &uris,
            public: true,
            pkce_optional: false,
            require_par: false,
            allows_authorization_code: true,
            resources: &[],
        };
        match validate(p, Some(client), 1_000) {
            Ok(r) => r,
            Err(e) => panic!("valid request refused: {e:?}"),
        }
    }

    #[test]
    fn flow_ends_at_the_fifth_wrong_code_in_it() {
        let mut r = request();
        for _ in 1..FLOW_MAX_FAILED_CODES {
            assert_eq!(r.apply(Transition::CodeRefused), Progress::Continue);
        }
        assert_eq!(r.apply(Transition::CodeRefused), Progress::Stopped);
        assert_eq!(r.failed_codes, FLOW_MAX_FAILED_CODES);
    }

    #[test]
    fn authenticated_deferred_lab_and_consent_are_recorded() {
        let (r, p) = request().after(Transition::Proven(Method::Password));
        assert_eq!(p, Progress::Continue);
        assert!(r.authenticated());
        let (r, _) = r.after(Transition::Proven(Method::Totp));
        let (r, _) = r.after(Transition::Proven(Method::Password));
        assert_eq!(r.proven, [Method::Password, Method::Totp]);
        let (r, _) = r.after(Transition::EnrolmentDeferred);
        assert!(r.deferred_enrolment);
        let (r, _) = r.after(Transition::LabDecided(Some("lab1".into())));
        assert_eq!(r.lab.as_deref(), Some("lab1"));
        assert!(r.prompt.consent);
        let (r, _) = r.after(Transition::Consented);
        assert!(!r.prompt.consent);
        let (r, _) = r.after(Transition::LabDecided(None));
        assert_eq!(r.lab, None);
    }

    #[test]
    fn enrolment_deferral_does_not_carry_over_to_another_lab() {
        let (r, _) = request().after(Transition::LabDecided(Some("lab-a".into())));
        let (r, _) = r.after(Transition::EnrolmentDeferred);
        let (r, _) = r.after(Transition::LabDecided(Some("lab-a".into())));
        assert!(r.deferred_enrolment, "the same lab decided again keeps it");
        let (r, _) = r.after(Transition::LabDecided(Some("lab-b".into())));
        assert!(!r.deferred_enrolment, "lab B's policy asks for itself");
    }
}
