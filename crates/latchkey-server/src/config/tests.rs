//! The configuration's defaults, validation and sources (file, environment).

use super::*;

#[test]
fn defaults_are_valid_and_local() {
    let c = Config::default();
    c.validate().unwrap();
    assert_eq!(c.issuer(), "http://localhost:8080");
    assert!(c.insecure_cookies());
}

#[test]
#[expect(clippy::result_large_err, reason = "figment's Jail API")]
fn log_and_config_variables_are_not_config_keys() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("LATCHKEY_LOG", "warn");
        jail.set_env("LATCHKEY_LOG_FORMAT", "json");
        jail.set_env("LATCHKEY_CONFIG", "x.toml");
        jail.set_env("LATCHKEY_TOKENS__ACCESS_TOKEN_TTL_SECS", "600");
        let c: Config =
            with_env(Figment::from(Serialized::defaults(Config::default()))).extract()?;
        assert_eq!(c.tokens.access_token_ttl_secs, 600);
        jail.set_env("LATCHKEY_TOKENS__ACESS_TOKEN_TTL_SECS", "600");
        let typo =
            with_env(Figment::from(Serialized::defaults(Config::default()))).extract::<Config>();
        assert!(typo.is_err(), "a misspelt key is an error");
        Ok(())
    });
}

#[test]
#[expect(clippy::result_large_err, reason = "figment's Jail API")]
fn trusted_proxies_and_their_header_come_from_the_environment_as_documented() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("LATCHKEY_PROXY__TRUSTED", r#"["10.0.0.0/8", "127.0.0.1"]"#);
        jail.set_env("LATCHKEY_PROXY__HEADER", "forwarded");
        let c: Config =
            with_env(Figment::from(Serialized::defaults(Config::default()))).extract()?;
        let nets: Vec<String> = c.proxy.trusted.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32"]);
        assert_eq!(c.proxy.header, ForwardedHeader::Forwarded);
        jail.set_env("LATCHKEY_PROXY__TRUSTED", r#"["10.0.0.0/33"]"#);
        let bad =
            with_env(Figment::from(Serialized::defaults(Config::default()))).extract::<Config>();
        assert!(bad.is_err(), "a network that is none is an error");
        Ok(())
    });
}

#[test]
#[expect(clippy::result_large_err, reason = "figment's Jail API")]
fn admin_minimum_is_mfa_by_default_and_pwd_is_refused() {
    assert_eq!(Config::default().admin.min_acr, latchkey_core::Acr::Mfa);
    figment::Jail::expect_with(|jail| {
        jail.set_env("LATCHKEY_ADMIN__MIN_ACR", "phr");
        let c: Config =
            with_env(Figment::from(Serialized::defaults(Config::default()))).extract()?;
        assert_eq!(c.admin.min_acr, latchkey_core::Acr::Phr);
        c.validate().map_err(|e| e.to_string())?;
        jail.set_env("LATCHKEY_ADMIN__MIN_ACR", "pwd");
        let c: Config =
            with_env(Figment::from(Serialized::defaults(Config::default()))).extract()?;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("admin.min_acr"), "{e}");
        Ok(())
    });
    let c = Config {
        admin: AdminConfig {
            idle_timeout_secs: 7200,
            max_age_secs: 3600,
            ..AdminConfig::default()
        },
        ..Config::default()
    };
    assert!(
        c.validate().is_err(),
        "idle longer than the absolute maximum"
    );
}

#[test]
#[expect(clippy::result_large_err, reason = "figment's Jail API")]
fn kubernetes_service_link_variables_are_not_settings() {
    figment::Jail::expect_with(|jail| {
        for (k, v) in [
            ("LATCHKEY_SERVICE_HOST", "10.96.12.34"),
            ("LATCHKEY_SERVICE_PORT", "80"),
            ("LATCHKEY_SERVICE_PORT_HTTP", "80"),
            ("LATCHKEY_PORT", "tcp://10.96.12.34:80"),
            ("LATCHKEY_PORT_80_TCP", "tcp://10.96.12.34:80"),
            ("LATCHKEY_PORT_80_TCP_PROTO", "tcp"),
            ("LATCHKEY_PORT_80_TCP_ADDR", "10.96.12.34"),
            ("LATCHKEY_DB_SERVICE_HOST", "10.96.1.1"),
            ("LATCHKEY_DB_PORT_5432_TCP_PORT", "5432"),
        ] {
            jail.set_env(k, v);
        }
        jail.set_env("LATCHKEY_WORKERS", "3");
        let c: Config =
            with_env(Figment::from(Serialized::defaults(Config::default()))).extract()?;
        assert_eq!(c.workers, 3);
        Ok(())
    });
    let all = serde_json::to_value(Config::default()).unwrap();
    for key in all.as_object().unwrap().keys() {
        assert!(!kubernetes_service_link(key), "{key}");
    }
}

#[test]
fn remote_http_issuer_is_refused() {
    let c = Config {
        issuer: Some("http://id.example.org".into()),
        ..Config::default()
    };
    assert!(c.validate().is_err());
}

#[test]
fn known_hashing_nice_outside_minus_20_to_0_is_refused() {
    for bad in [1, -21] {
        let mut c = Config::default();
        c.argon2.known_nice = bad;
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("argon2.known_nice must be between -20 and 0"),
            "{e}"
        );
    }
}

#[test]
fn anonymous_hashing_nice_beyond_19_is_refused() {
    let mut c = Config::default();
    c.argon2.anonymous_nice = 20;
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.contains("argon2.anonymous_nice must be between 0 and 19"),
        "{e}"
    );
    c.argon2.anonymous_nice = 0;
    assert!(c.validate().is_ok());
}
