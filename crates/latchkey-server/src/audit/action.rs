//! The audit log's vocabulary: every action Latchkey records, with what it means. This list
//! is the one source: `docs/audit.md` is checked against [`Action::ALL`] by a test, and no
//! caller writes an action name as text.

/// Defines [`Action`], its wire names and descriptions from one table.
macro_rules! actions {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// An audited action. Its [`Action::as_str`] is what the log stores.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Action {
            /// Every action, in the order `docs/audit.md` lists them.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The name stored in the log (`member.add`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// One line saying when the action is recorded.
            pub fn describe(self) -> &'static str {
                match self {
                    $(Action::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }

            /// The action with this stored name.
            pub fn parse(name: &str) -> Option<Action> {
                match name {
                    $($name => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    /// A signing key was generated.
    KeyCreated = "key.created",
    /// A key was published in the JWKS ahead of signing.
    KeyStaged = "key.staged",
    /// A staged key started signing.
    KeyActivated = "key.activated",
    /// A key stopped signing; it stays published until its tokens expire.
    KeyRetiring = "key.retiring",
    /// A retired key left the JWKS.
    KeyRemoved = "key.removed",
    /// A key was revoked in an emergency (removed at once).
    KeyRevoked = "key.revoked",
    /// Every private key was re-encrypted under a new key-encryption key.
    KekRewrapped = "kek.rewrapped",
    /// Old entries were pruned behind a signed checkpoint (`through_seq`, `entries`, `before`).
    AuditPruned = "audit.pruned",
    /// A password was proven as the first factor.
    LoginPassword = "login.password",
    /// A passkey was proven as the first factor.
    LoginPasskey = "login.passkey",
    /// A second factor was proven (TOTP or security key).
    LoginStepUp = "login.step_up",
    /// A recovery code was used; `unused_left` says how many are left.
    LoginRecoveryCode = "login.recovery_code",
    /// A password sign-in failed: `reason` is `wrong password`, `account disabled` or `unknown
    /// email` (then the target is `unknown`: the e-mail is not recorded).
    LoginFailed = "login.failed",
    /// Entries of earlier versions only: too many wrong passwords paused the account's
    /// password sign-in. Budgets replaced the lock (`login.throttled`).
    LoginLocked = "login.locked",
    /// A password budget was used up for the rest of its window (one entry per budget and
    /// window; further attempts are refused unchecked): `budget` (`global`, `source`, `account`, `account_source`, `device`),
    /// `limit`, `window_secs`, `source`, `user_agent`. The target is the account's user, or
    /// `unknown` (an e-mail that is not an account, or the global and source budgets).
    LoginThrottled = "login.throttled",
    /// A sign-in could not reach the required level.
    LoginUnmetRequirements = "login.unmet_requirements",
    /// A TOTP code was used a second time in its step and refused.
    TotpReplayRefused = "totp.replay_refused",
    /// An authenticator's signature counter went backwards (a cloned key) and was refused.
    WebauthnCounterRegression = "webauthn.counter_regression",
    /// Too many wrong second-factor codes: codes are refused for a while (`locked_for_secs`),
    /// or, at `authentication.max_code_failures`, until an administrator resets the user's
    /// attempts (`blocked: true`).
    FactorLocked = "factor.locked",
    /// An intrusion detector raised an alert (`docs/security-monitoring.md`): `detector`,
    /// `subject`, `alert` (its id), `source` and `user_agent` of the latest request behind it,
    /// and the detector's counts. The target is the user concerned, or `unknown`.
    SecurityAlert = "security.alert",
    /// An authenticated administrator's call was refused by policy: `reason` (`forbidden`:
    /// outside their rights; `insufficient_user_authentication`: an API call with a sign-in
    /// too weak or too old), `method`, `route`, `status`, `source`, `user_agent`.
    AdminRefused = "admin.refused",
    /// The user enrolled a factor (TOTP, passkey, security key); for a passkey or security
    /// key, `hardware` (its attestation proved a hardware key) and `attested_by` (the trusted
    /// root's subject, or null).
    FactorEnrolled = "factor.enrolled",
    /// The user removed a factor.
    FactorRemoved = "factor.removed",
    /// The user renamed a passkey or security key (`credential`, `name`).
    FactorRenamed = "factor.renamed",
    /// The user generated a new set of recovery codes.
    RecoveryCodesGenerated = "recovery_codes.generated",
    /// The user changed their password on the account page: `sessions_ended` (other browsers
    /// signed out), `grants_revoked` (applications' tokens ended), `kept_others`, `source`,
    /// `user_agent`.
    PasswordChanged = "password.changed",
    /// A password-reset link was asked for (the sign-in page's "forgot password", or an
    /// administrator's `by`) and mailed to the account's address; or none was sent (`sent:
    /// false`, `reason`: `unknown email` (target `unknown`), `account disabled`, `hourly
    /// allowance used`). `source`, `user_agent`.
    PasswordResetRequested = "password.reset_requested",
    /// The password was reset with a mailed link: every session and application token
    /// ended (`sessions_ended`); `source`, `user_agent`.
    PasswordReset = "password.reset",
    /// A link to confirm the account's e-mail address was mailed to it.
    EmailConfirmRequested = "email.confirm_requested",
    /// The account's e-mail address was confirmed (`email`): tokens say `email_verified`.
    EmailConfirmed = "email.confirmed",
    /// The user asked to change their e-mail address (`new`): a link went to each address.
    EmailChangeRequested = "email.change_requested",
    /// One address confirmed a requested change (`side`: `old` or `new`).
    EmailChangeConfirmed = "email.change_confirmed",
    /// The account's e-mail address changed (`before`, `after`), confirmed by both addresses
    /// or set by an administrator.
    EmailChanged = "email.changed",
    /// The user withdrew their consent to an application on the account page: `client`,
    /// `grants_revoked` (its grants and refresh tokens ended), `source`, `user_agent`.
    ConsentWithdrawn = "consent.withdrawn",
    /// An authorization code was used twice: what it issued (`grant`) is revoked. Recorded
    /// once per grant, by the replay that revoked it; `source`, `user_agent` of the request.
    CodeReplayed = "code.replayed",
    /// The user approved a device's request (RFC 8628) after signing in at `/device`: the
    /// device's next poll gets tokens (`client`, `scope`, `lab`, `acr`).
    DeviceApproved = "device.approved",
    /// The user denied a device's request at `/device`, or their sign-in could not reach the
    /// level it needs (`client`, `error`): the device is told `access_denied`.
    DeviceDenied = "device.denied",
    /// A rotated refresh token was used again: its whole family (`grant`) is revoked. Recorded
    /// once per family; `source`, `user_agent` of the request.
    RefreshReuseDetected = "refresh.reuse_detected",
    /// A refresh was refused and its grant ended: the user is disabled, or the sign-in it
    /// carries no longer meets the client's or the lab's minimum (`client`, `reason`).
    GrantEnded = "grant.ended",
    /// A client revoked a token (RFC 7009).
    TokenRevoked = "token.revoked",
    /// A user signed out.
    SessionEnded = "session.ended",
    /// A lab was created.
    LabCreate = "lab.create",
    /// A user became a member of a lab (with `before` and `after`).
    MemberAdd = "member.add",
    /// A member was removed from a lab; their sessions and the lab's refresh tokens end.
    MemberRemove = "member.remove",
    /// A member became, or stopped being, a lab administrator.
    MemberAdmin = "member.admin",
    /// A member's roles changed.
    MemberRoles = "member.roles",
    /// A feature was allowed, denied or cleared for one member.
    MemberFeature = "member.feature",
    /// A role was created or its features or minimum level changed.
    RolePut = "role.put",
    /// A role was deleted.
    RoleDelete = "role.delete",
    /// A lab's MFA policy changed.
    PolicyLab = "policy.lab",
    /// A role's minimum level changed through the policy command.
    PolicyRole = "policy.role",
    /// A client's minimum level changed.
    PolicyClient = "policy.client",
    /// An invitation was created.
    InvitationCreate = "invitation.create",
    /// An invitation was withdrawn.
    InvitationDelete = "invitation.delete",
    /// An invitation's link was issued to a system administrator or the operator, to send to
    /// the invited address; any link issued before stopped working.
    InvitationLink = "invitation.link",
    /// An invitation was accepted and its account created.
    InvitationAccept = "invitation.accept",
    /// An account was created.
    UserCreate = "user.create",
    /// An account was disabled: its sessions and refresh tokens ended.
    UserDisable = "user.disable",
    /// An account was enabled again.
    UserEnable = "user.enable",
    /// An account's second factors were reset.
    UserResetFactors = "user.reset_factors",
    /// An account's sessions and refresh tokens were ended.
    UserEndSessions = "user.end_sessions",
    /// An administrator reset an account's sign-in attempts: its password budgets (every
    /// source and browser) and its count of wrong codes (`cleared`).
    UserResetAttempts = "user.reset_attempts",
    /// System administration was granted or revoked.
    UserSystemAdmin = "user.system_admin",
    /// An account's personal data was exported.
    UserExported = "user.exported",
    /// An account's personal data was erased.
    UserErased = "user.erased",
    /// The person asked, on the account page, for their account to be deleted: it is erased
    /// after `grace_days` (0: by an administrator) unless they cancel.
    UserDeletionRequested = "user.deletion_requested",
    /// The person withdrew their request to delete their account.
    UserDeletionCancelled = "user.deletion_cancelled",
    /// A client was registered.
    ClientCreate = "client.create",
    /// A client's name or redirect URIs changed (`before`, `after`).
    ClientUpdate = "client.update",
    /// A client was disabled: it cannot authenticate and its tokens are inactive.
    ClientDisable = "client.disable",
    /// A disabled client was enabled again.
    ClientEnable = "client.enable",
    /// A client was deleted with its grants, refresh tokens and consents (`grants`,
    /// `consents`: how many ended).
    ClientDelete = "client.delete",
    /// A client's secret was replaced; the old one works until `old_secret_until` (`null`:
    /// it stopped at once).
    ClientSecretRotate = "client.secret_rotate",
}

impl Action {
    /// The table of every action as `docs/audit.md` shows it (a test keeps the two equal).
    pub fn markdown_table() -> String {
        let mut t = String::from("| action | when |\n| --- | --- |\n");
        for a in Action::ALL {
            let when = a
                .describe()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            t.push_str(&format!("| `{}` | {when} |\n", a.as_str()));
        }
        t
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for a in Action::ALL {
            assert!(seen.insert(a.as_str()), "{a} twice");
            assert_eq!(Action::parse(a.as_str()), Some(*a));
            assert!(!a.describe().is_empty(), "{a} has no description");
        }
    }
}
