//! The names and ids that cross layers in administration: e-mail addresses, role names,
//! feature names and the ids of users, labs and clients. Each name type has one validator
//! (`parse`), so the CLI, the admin API and the console accept exactly the same values; a value
//! of the type is proof that it passed. Ids are opaque strings made typed so one kind cannot be
//! passed where another is expected.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a name was refused; `Display` says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("`{0}` is not an email address: give one like ada@example.org")]
    Email(String),
    #[error("`{0}` is not a role name: use letters, digits and `-_.:`, up to 64 characters")]
    Role(String),
    #[error(
        "`{0}` is not a feature name: use lowercase letters, digits and `:_.-`, up to 64 characters"
    )]
    Feature(String),
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

macro_rules! validated_name {
    ($name:ident) => {
        string_newtype!($name);

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::parse(&s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        // Deserialising validates: a request carrying an invalid name fails to parse.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A normalised e-mail address: trimmed, lowercase, `local@domain.tld`, at most 254 bytes, no
/// whitespace or control characters. Not RFC 5321 in full: it is the shape a person types.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

/// Whether `c` must not appear in a display name (a lab's, a client's, a person's): a control
/// character, or an invisible text-direction mark or override (Unicode bidi controls), with
/// which a name could show text in another order than it holds ("Trojan Source").
pub fn is_unsafe_in_name(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

impl Email {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let e = s.trim().to_lowercase();
        // No whitespace, control characters or the specials of RFC 5322 (3.2.3) a mail
        // system would read as a display name, a comment, a quoted part or a route: the
        // address must be the mailbox mail goes to, character for character.
        let ok = e.len() <= 254
            && !e
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
            && e.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if ok {
            Ok(Self(e))
        } else {
            Err(NameError::Email(s.to_owned()))
        }
    }

    /// The local part and the domain: context words a password must not be built from.
    pub fn parts(&self) -> (&str, &str) {
        self.0.split_once('@').unwrap_or((&self.0, ""))
    }
}
validated_name!(Email);

/// A role name: 1 to 64 of ASCII letters, digits and `-_.:`, and not only dots (`.` and `..`
/// would be path segments in the API's URLs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.chars().all(|c| c == '.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Role(s.to_owned()))
        }
    }
}
validated_name!(RoleName);

/// A feature name (`orders:read`): 1 to 64 of lowercase ASCII letters, digits and `:._-`, the
/// form features take in access tokens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeatureName(String);

impl FeatureName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if Self::is_valid(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Feature(s.to_owned()))
        }
    }

    /// The rule alone, for callers that only filter.
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b':' | b'.' | b'_' | b'-')
            })
    }
}
validated_name!(FeatureName);

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id read from the database or a URL; ids are not validated, an unknown
            /// one is simply not found.
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
        }

        string_newtype!($name);

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_newtype!(
    /// A user's id (the `sub` of its tokens).
    UserId
);
id_newtype!(
    /// A lab's id.
    LabId
);
id_newtype!(
    /// An OAuth client's `client_id`.
    ClientId
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_names_refuse_controls_and_text_direction_marks() {
        for c in [
            '\n', '\u{7}', '\u{202E}', '\u{2066}', '\u{200F}', '\u{061C}',
        ] {
            assert!(is_unsafe_in_name(c), "{c:?}");
        }
        for c in ['a', 'é', '漢', ' ', '-', '\u{05D0}'] {
            assert!(!is_unsafe_in_name(c), "{c:?}");
        }
    }

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.ORG ").unwrap().as_str(),
            "ada@example.org"
        );
        for bad in [
            "",
            "ada",
            "@example.org",
            "ada@",
            "ada@example",
            "ada@.example.org",
            "ada@example.org.",
            "a da@example.org",
            "ada@ex@ample.org",
            "ada@exa\u{7}mple.org",
            "zz<ada@example.org>",
            "\"q\"@example.org",
            "ada@example.org>",
            "ada,bob@example.org",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err(NameError::Email(bad.into())),
                "{bad:?}"
            );
        }
        assert!(Email::parse(&format!("{}@example.org", "a".repeat(243))).is_err());
    }

    #[test]
    fn role_names_exclude_dot_segments() {
        for good in ["admin", "lab-admin", "a.b", "x:y_z", "..a", "R2"] {
            assert!(RoleName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "...", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(RoleName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn feature_names_are_lowercase() {
        assert!(FeatureName::parse("orders:read").is_ok());
        assert!(FeatureName::parse("Orders").is_err());
        assert!(FeatureName::parse("").is_err());
        assert!(FeatureName::parse("a b").is_err());
    }

    #[test]
    fn serde_validates_and_is_transparent() {
        let r: RoleName = serde_json::from_str("\"admin\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"admin\"");
        assert!(serde_json::from_str::<RoleName>("\"..\"").is_err());
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
        let id: UserId = serde_json::from_str("\"u1\"").unwrap();
        assert_eq!(id, UserId::new("u1"));
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"u1\"");
    }

    proptest! {
        #[test]
        fn role_parse_round_trips(s in "[A-Za-z0-9._:-]{1,64}") {
            match RoleName::parse(&s) {
                Ok(r) => prop_assert_eq!(r.to_string(), s),
                Err(_) => prop_assert!(s.chars().all(|c| c == '.')),
            }
        }

        #[test]
        fn role_parse_never_accepts_other_characters(s in "\\PC*") {
            if let Ok(r) = RoleName::parse(&s) {
                prop_assert!(r.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)));
                prop_assert!(!r.as_str().chars().all(|c| c == '.'));
            }
        }

        #[test]
        fn feature_accepted_iff_rule(s in "\\PC{0,70}") {
            let ok = FeatureName::parse(&s).is_ok();
            prop_assert_eq!(ok, !s.is_empty() && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b":._-".contains(&b)));
        }

        #[test]
        fn email_parse_is_idempotent(s in "\\PC{0,40}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
                let (local, domain) = e.parts();
                prop_assert!(!local.is_empty() && domain.contains('.'));
            }
        }
    }
}
