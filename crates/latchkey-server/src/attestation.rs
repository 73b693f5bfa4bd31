//! WebAuthn attestation (W3C WebAuthn Level 2 sections 6.5 and 7.1 steps 19-21): which
//! credentials are proven to live in hardware, so that a token may say `amr` `hwk` (RFC 8176)
//! and, when `authentication.phr_requires_attestation` is set, reach `phr`.
//!
//! At registration Latchkey asks for the authenticator's attestation (`direct`); webauthn-rs
//! verifies the attestation statement's signature over the new credential. [`Roots::root_of`]
//! then checks the statement's certificate chain against the trusted roots: those bundled in
//! `crates/latchkey-server/attestation/` (vendors' published roots; see its README for where
//! each comes from and how to update them) and the operator's
//! `authentication.webauthn_attestation_roots` file. The root it chained to is stored with the
//! credential (its SHA-256); self attestation, `none` and unknown roots store nothing.
//!
//! A credential counts as hardware ([`Roots::is_hardware`]) while its root is still trusted
//! (taking a root out of the configuration demotes every key it vouched for at the next
//! sign-in) and while it is not backup-eligible: a synced passkey's key leaves the device, so
//! it is `swk` however it was attested.

use std::collections::BTreeMap;
use std::path::Path;
use webauthn_rs::prelude::{AttestationCaList, AttestationMetadata, Credential};

/// The roots bundled with Latchkey: file name and PEM.
const BUNDLED: &[(&str, &str)] = &[
    (
        "apple-webauthn-root-ca.pem",
        include_str!("../attestation/apple-webauthn-root-ca.pem"),
    ),
    (
        "microsoft-tpm-root-ca-2014.pem",
        include_str!("../attestation/microsoft-tpm-root-ca-2014.pem"),
    ),
    (
        "nitrokey-fido2-root-ca.pem",
        include_str!("../attestation/nitrokey-fido2-root-ca.pem"),
    ),
    (
        "nitrokey-root-ca-2.pem",
        include_str!("../attestation/nitrokey-root-ca-2.pem"),
    ),
    (
        "yubico-u2f-root-ca-serial-457200631.pem",
        include_str!("../attestation/yubico-u2f-root-ca-serial-457200631.pem"),
    ),
];

/// The attestation roots this node trusts.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    list: AttestationCaList,
    /// Hex SHA-256 of each root certificate → its subject, for pages and logs.
    labels: BTreeMap<String, String>,
}

/// A trusted root, as pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Hex SHA-256 of the root certificate (DER).
    pub id: String,
    /// Its subject (RFC 4514).
    pub subject: String,
}

/// A root's maker for pages: the organisation (`O=`) of its subject, else its common name.
pub fn short_name(subject: &str) -> String {
    let parts: Vec<String> = {
        let mut parts = vec![String::new()];
        let mut escaped = false;
        for ch in subject.chars() {
            match ch {
                ',' if !escaped => parts.push(String::new()),
                _ => {
                    if let Some(p) = parts.last_mut() {
                        p.push(ch);
                    }
                }
            }
            escaped = ch == '\\' && !escaped;
        }
        parts
    };
    let attr = |name: &str| {
        parts
            .iter()
            .find_map(|p| p.trim().strip_prefix(name).map(|v| v.replace('\\', "")))
    };
    attr("O=")
        .or_else(|| attr("CN="))
        .unwrap_or_else(|| subject.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The PEM certificate blocks of `pem`, in order.
fn blocks(pem: &str) -> Vec<&str> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            // An unterminated block: handed on whole, so that parsing it fails loudly.
            out.push(&rest[start..]);
            break;
        };
        let end = start + len + END.len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

impl Roots {
    /// The bundled roots (if `bundled`) and those in the PEM file `extra`. Errors name the file
    /// and the certificate that could not be read.
    pub fn load(bundled: bool, extra: Option<&Path>) -> Result<Roots, String> {
        let mut roots = Roots::default();
        if bundled {
            for (name, pem) in BUNDLED {
                roots.add_pem(name, pem)?;
            }
        }
        if let Some(path) = extra {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "authentication.webauthn_attestation_roots: cannot read {}: {e}",
                    path.display()
                )
            })?;
            let before = roots.labels.len();
            roots.add_pem(&path.display().to_string(), &pem)?;
            if roots.labels.len() == before && blocks(&pem).is_empty() {
                return Err(format!(
                    "authentication.webauthn_attestation_roots: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
        }
        Ok(roots)
    }

    /// Adds every certificate of `pem` (from `source`) as a root trusted for any device.
    pub fn add_pem(&mut self, source: &str, pem: &str) -> Result<(), String> {
        for (i, block) in blocks(pem).into_iter().enumerate() {
            let one = AttestationCaList::try_from(block.as_bytes()).map_err(|e| {
                format!(
                    "attestation root {} of {source} is not a PEM certificate: {e}",
                    i + 1
                )
            })?;
            for (kid, ca) in one.cas() {
                let subject = ca.ca().tbs_certificate().subject().to_string();
                let not_after = ca
                    .ca()
                    .tbs_certificate()
                    .validity()
                    .not_after
                    .to_system_time();
                if not_after < std::time::SystemTime::now() {
                    // Nothing chains to it any more (chains are checked at registration time).
                    tracing::warn!(root = %subject, %source, "attestation root has expired: no key registers as hardware under it");
                }
                self.labels.insert(hex(kid), subject);
            }
            self.list.union(&one);
        }
        Ok(())
    }

    /// The trusted roots, in the order of their ids.
    pub fn list(&self) -> Vec<Root> {
        self.labels
            .iter()
            .map(|(id, subject)| Root {
                id: id.clone(),
                subject: subject.clone(),
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The trusted root a credential's attestation chains to (hex SHA-256), checked now: at
    /// its registration. `None` for no attestation, self attestation, an untrusted or expired
    /// chain, or a device the root does not vouch for.
    pub fn root_of(&self, cred: &Credential) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let ca = match cred.verify_attestation(&self.list) {
            Ok(Some(ca)) => ca,
            Ok(None) => return None,
            Err(e) => {
                tracing::info!(error = %e, "WebAuthn attestation not trusted: the key counts as software");
                return None;
            }
        };
        if !ca.blanket_allow() {
            let aaguid = match &cred.attestation.metadata {
                AttestationMetadata::Packed { aaguid }
                | AttestationMetadata::Tpm { aaguid, .. } => aaguid,
                _ => return None,
            };
            if !ca.aaguids().contains_key(aaguid) {
                return None;
            }
        }
        ca.get_kid().ok().map(|kid| hex(&kid))
    }

    /// The subject of trusted root `id`, if it is trusted.
    pub fn subject(&self, id: &str) -> Option<&str> {
        self.labels.get(id).map(String::as_str)
    }

    /// Who vouched for a credential attested by `root`, for pages ([`short_name`]), while it
    /// is a hardware key ([`Roots::is_hardware`]).
    pub fn maker(&self, root: Option<&str>, backup_eligible: bool) -> Option<String> {
        if !self.is_hardware(root, backup_eligible) {
            return None;
        }
        root.and_then(|r| self.subject(r)).map(short_name)
    }

    /// Whether a credential attested by `root` at registration is a hardware key now: the root
    /// is still trusted and the credential is not backup-eligible (synced).
    pub fn is_hardware(&self, root: Option<&str>, backup_eligible: bool) -> bool {
        !backup_eligible && root.is_some_and(|r| self.labels.contains_key(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_is_named_by_its_organisation_else_its_common_name() {
        assert_eq!(
            short_name("CN=Apple WebAuthn Root CA,O=Apple Inc.,ST=California"),
            "Apple Inc."
        );
        assert_eq!(
            short_name("CN=Yubico U2F Root CA Serial 457200631"),
            "Yubico U2F Root CA Serial 457200631"
        );
        assert_eq!(short_name("CN=Lab\\, Inc. root"), "Lab, Inc. root");
    }

    #[test]
    fn bundled_roots_all_load() {
        let roots = Roots::load(true, None).unwrap();
        assert_eq!(roots.list().len(), BUNDLED.len());
        assert!(
            roots
                .list()
                .iter()
                .any(|r| r.subject.contains("Yubico U2F Root CA Serial 457200631")),
            "{:?}",
            roots.list()
        );
    }

    #[test]
    fn a_root_file_that_is_not_pem_is_refused_with_its_name() {
        let dir = std::env::temp_dir().join(format!("lk-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("roots.pem");
        std::fs::write(&f, "not a certificate").unwrap();
        let e = Roots::load(false, Some(&f)).unwrap_err();
        assert!(
            e.contains("roots.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        std::fs::write(
            &f,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = Roots::load(false, Some(&f)).unwrap_err();
        assert!(e.contains("attestation root 1 of"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// RFC 8176 `hwk`: only while the root that vouched for the key is trusted, and never for
    /// a key that may be synced off the device.
    #[test]
    fn rfc8176_hwk_needs_a_trusted_root_and_a_device_bound_key() {
        let roots = Roots::load(true, None).unwrap();
        let trusted = roots.list()[0].id.clone();
        assert!(roots.is_hardware(Some(&trusted), false));
        assert!(!roots.is_hardware(Some(&trusted), true), "synced");
        assert!(!roots.is_hardware(None, false), "not attested");
        assert!(
            !roots.is_hardware(Some("00ff"), false),
            "root no longer trusted"
        );
        assert!(!Roots::default().is_hardware(Some(&trusted), false));
    }

    /// A real YubiKey 5's registration (fido-u2f attestation, recorded by webauthn-rs for
    /// relying party `127.0.0.1` and a zero challenge) chains to the bundled Yubico root, and
    /// to nothing without it.
    #[test]
    fn a_real_yubikey_attestation_chains_to_the_bundled_yubico_root() {
        use webauthn_rs_core::WebauthnCore;
        use webauthn_rs_core::proto::{
            AttestationConveyancePreference, RegisterPublicKeyCredential, RegistrationState,
        };
        let origin = url::Url::parse("http://127.0.0.1:8080").unwrap();
        let core = WebauthnCore::new_unsafe_experts_only(
            "Latchkey",
            "127.0.0.1",
            vec![origin],
            std::time::Duration::from_secs(60),
            None,
            None,
        );
        let builder = core
            .new_challenge_register_builder(b"xxx", "xxx", "xxx")
            .unwrap()
            .attestation(AttestationConveyancePreference::Direct);
        let (_, state) = core.generate_challenge_register(builder).unwrap();
        // The recorded answer signed a challenge of 32 zero bytes.
        let mut state = serde_json::to_value(state).unwrap();
        state["challenge"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
        let state: RegistrationState = serde_json::from_value(state).unwrap();
        let rsp = r#"
        {
            "id":"0xYE4bQ_HZM51-XYwp7WHJu8RfeA2Oz3_9HnNIZAKqRTz9gsUlF3QO7EqcJ0pgLSwDcq6cL1_aQpTtKLeGu6Ig",
            "rawId":"0xYE4bQ_HZM51-XYwp7WHJu8RfeA2Oz3_9HnNIZAKqRTz9gsUlF3QO7EqcJ0pgLSwDcq6cL1_aQpTtKLeGu6Ig",
            "response":{
                 "attestationObject":"o2NmbXRoZmlkby11MmZnYXR0U3RtdKJjc2lnWEcwRQIhALjRb43YFcbJ3V9WiYPpIrZkhgzAM6KTR8KIjwCXejBCAiAO5Lvp1VW4dYBhBDv7HZIrxZb1SwKKYOLfFRXykRxMqGN4NWOBWQLBMIICvTCCAaWgAwIBAgIEGKxGwDANBgkqhkiG9w0BAQsFADAuMSwwKgYDVQQDEyNZdWJpY28gVTJGIFJvb3QgQ0EgU2VyaWFsIDQ1NzIwMDYzMTAgFw0xNDA4MDEwMDAwMDBaGA8yMDUwMDkwNDAwMDAwMFowbjELMAkGA1UEBhMCU0UxEjAQBgNVBAoMCVl1YmljbyBBQjEiMCAGA1UECwwZQXV0aGVudGljYXRvciBBdHRlc3RhdGlvbjEnMCUGA1UEAwweWXViaWNvIFUyRiBFRSBTZXJpYWwgNDEzOTQzNDg4MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeeo7LHxJcBBiIwzSP-tg5SkxcdSD8QC-hZ1rD4OXAwG1Rs3Ubs_K4-PzD4Hp7WK9Jo1MHr03s7y-kqjCrutOOqNsMGowIgYJKwYBBAGCxAoCBBUxLjMuNi4xLjQuMS40MTQ4Mi4xLjcwEwYLKwYBBAGC5RwCAQEEBAMCBSAwIQYLKwYBBAGC5RwBAQQEEgQQy2lIHo_3QDmT7AonKaFUqDAMBgNVHRMBAf8EAjAAMA0GCSqGSIb3DQEBCwUAA4IBAQCXnQOX2GD4LuFdMRx5brr7Ivqn4ITZurTGG7tX8-a0wYpIN7hcPE7b5IND9Nal2bHO2orh_tSRKSFzBY5e4cvda9rAdVfGoOjTaCW6FZ5_ta2M2vgEhoz5Do8fiuoXwBa1XCp61JfIlPtx11PXm5pIS2w3bXI7mY0uHUMGvxAzta74zKXLslaLaSQibSKjWKt9h-SsXy4JGqcVefOlaQlJfXL1Tga6wcO0QTu6Xq-Uw7ZPNPnrpBrLauKDd202RlN4SP7ohL3d9bG6V5hUz_3OusNEBZUn5W3VmPj1ZnFavkMB3RkRMOa58MZAORJT4imAPzrvJ0vtv94_y71C6tZ5aGF1dGhEYXRhWMQSyhe0mvIolDbzA-AWYDCiHlJdJm4gkmdDOAGo_UBxoEEAAAAAAAAAAAAAAAAAAAAAAAAAAABA0xYE4bQ_HZM51-XYwp7WHJu8RfeA2Oz3_9HnNIZAKqRTz9gsUlF3QO7EqcJ0pgLSwDcq6cL1_aQpTtKLeGu6IqUBAgMmIAEhWCCe1KvqpcVWN416_QZc8vJynt3uo3_WeJ2R4uj6kJbaiiJYIDC5ssxxummKviGgLoP9ZLFb836A9XfRO7op18QY3i5m",
                 "clientDataJSON":"eyJjaGFsbGVuZ2UiOiJBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBIiwiY2xpZW50RXh0ZW5zaW9ucyI6e30sImhhc2hBbGdvcml0aG0iOiJTSEEtMjU2Iiwib3JpZ2luIjoiaHR0cDovLzEyNy4wLjAuMTo4MDgwIiwidHlwZSI6IndlYmF1dGhuLmNyZWF0ZSJ9"
            },
            "type":"public-key"}
        "#;
        let rsp: RegisterPublicKeyCredential = serde_json::from_str(rsp).unwrap();
        let cred = core.register_credential(&rsp, &state, None).unwrap();

        let bundled = Roots::load(true, None).unwrap();
        let root = bundled
            .root_of(&cred)
            .expect("the Yubico root vouches for it");
        assert_eq!(
            bundled.subject(&root),
            Some("CN=Yubico U2F Root CA Serial 457200631")
        );
        assert!(bundled.is_hardware(Some(&root), cred.backup_eligible));
        let mut others = Roots::default();
        for (name, pem) in BUNDLED.iter().filter(|(n, _)| !n.starts_with("yubico")) {
            others.add_pem(name, pem).unwrap();
        }
        assert_eq!(others.root_of(&cred), None, "no root of another vendor");
        assert_eq!(Roots::default().root_of(&cred), None);
    }
}
