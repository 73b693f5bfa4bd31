//! The lockout rule for wrong passwords and wrong second-factor codes (NIST SP 800-63B section
//! 5.2.2, "rate limiting"): failures count per user and kind; from a threshold on, attempts of
//! that kind are refused unchecked for 30 s, doubling up to the kind's cap. Pure: the count
//! lives in the store and the sign-in service (`signin::throttle`) applies this rule to it.

/// What kind of attempt failed: counted and locked separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A second-factor code (TOTP or recovery code): locked from the 5th failure in a row,
    /// 30 s doubling up to an hour.
    Code,
    /// A password: locked from the 10th failure in a row, 30 s doubling up to 15 minutes.
    /// Passkey sign-in stays open, so a lock cannot shut a passkey user out.
    Password,
}

impl Attempt {
    /// The kind's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::Code => "code",
            Attempt::Password => "password",
        }
    }

    /// How many seconds `failures` consecutive failures lock further attempts, if at all.
    pub fn lock(self, failures: i64) -> Option<i64> {
        let (threshold, max) = match self {
            Attempt::Code => (5, 3600),
            Attempt::Password => (10, 900),
        };
        (failures >= threshold).then(|| {
            let exp = u32::try_from((failures - threshold).min(7)).unwrap_or(7);
            (30_i64 << exp).min(max)
        })
    }

    /// What the user reads while locked for `secs` more seconds.
    pub fn message(self, secs: i64) -> String {
        let wait = if secs < 90 {
            format!("{} seconds", secs.max(1))
        } else {
            format!("{} minutes", (secs + 59) / 60)
        };
        match self {
            Attempt::Code => format!("Too many wrong codes. Wait {wait} before trying again."),
            Attempt::Password => format!(
                "Too many failed sign-ins. Wait {wait} before trying again. Or sign in with a passkey."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Attempt;

    #[test]
    fn locks_start_at_the_threshold_and_double_up_to_the_cap() {
        assert_eq!(Attempt::Code.lock(4), None);
        assert_eq!(Attempt::Code.lock(5), Some(30));
        assert_eq!(Attempt::Code.lock(6), Some(60));
        assert_eq!(Attempt::Code.lock(50), Some(3600));
        assert_eq!(Attempt::Password.lock(9), None);
        assert_eq!(Attempt::Password.lock(10), Some(30));
        assert_eq!(Attempt::Password.lock(50), Some(900));
    }

    #[test]
    fn lock_message_rounds_up_to_minutes_from_90_seconds() {
        assert_eq!(
            Attempt::Code.message(0),
            "Too many wrong codes. Wait 1 seconds before trying again."
        );
        assert_eq!(
            Attempt::Code.message(89),
            "Too many wrong codes. Wait 89 seconds before trying again."
        );
        assert_eq!(
            Attempt::Code.message(90),
            "Too many wrong codes. Wait 2 minutes before trying again."
        );
        assert_eq!(
            Attempt::Password.message(900),
            "Too many failed sign-ins. Wait 15 minutes before trying again. Or sign in with a passkey."
        );
    }
}
