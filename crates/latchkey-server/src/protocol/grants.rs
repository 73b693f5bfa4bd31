//! The effective features of a lab member, computed one way, here: the union of the features
//! of the member's roles, plus the features allowed to them individually, minus the features
//! denied to them individually (a deny wins over any role).

use std::collections::BTreeSet;

/// A feature name: `area:action`-style, 1 to 64 characters of `a-z 0-9 : . _ -`
/// (`latchkey_core::names::FeatureName`).
pub fn valid_feature(f: &str) -> bool {
    latchkey_core::names::FeatureName::is_valid(f)
}

/// `role_features`: the features of the member's roles; `overrides`: (feature, allow).
pub fn effective<'a>(
    role_features: impl IntoIterator<Item = &'a str>,
    overrides: &[(String, bool)],
) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = role_features.into_iter().map(str::to_owned).collect();
    for (f, allow) in overrides {
        if *allow {
            set.insert(f.clone());
        }
    }
    for (f, allow) in overrides {
        if !*allow {
            set.remove(f);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_give_features_allows_add_and_denies_win() {
        let roles = ["orders:read", "invoices:approve", "orders:read"];
        let overrides = vec![
            ("reports:export".to_owned(), true),
            ("invoices:approve".to_owned(), false),
        ];
        let got: Vec<String> = effective(roles, &overrides).into_iter().collect();
        assert_eq!(got, vec!["orders:read", "reports:export"]);
        // A deny wins even when the same feature is also allowed individually.
        let overrides = vec![("x:y".to_owned(), true), ("x:y".to_owned(), false)];
        assert!(effective([], &overrides).is_empty());
    }

    #[test]
    fn feature_names_are_restricted() {
        assert!(valid_feature("invoices:approve"));
        assert!(valid_feature("a.b_c-d:9"));
        for bad in ["", "Invoices", "a b", "ä", &"x".repeat(65)] {
            assert!(!valid_feature(bad), "{bad}");
        }
    }
}
