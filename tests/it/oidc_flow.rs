//! The whole authorization-code flow with the `openidconnect` crate as the relying party:
//! discovery → authorize → login → consent → code → tokens → ID token verified → userinfo →
//! refresh → introspect → revoke → logout. On both databases.

use crate::both;
use crate::common::*;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, AuthType, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, ProviderMetadata,
    RedirectUrl, RevocationUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};

#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
pub struct ExtraMeta {
    pub revocation_endpoint: Option<RevocationUrl>,
    pub introspection_endpoint: Option<IntrospectionUrl>,
    pub end_session_endpoint: Option<EndSessionUrl>,
}
impl AdditionalProviderMetadata for ExtraMeta {}

/// Latchkey's discovery document with `E`, the metadata the core types leave out.
pub type ProviderMetadataWith<E> = ProviderMetadata<
    E,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

pub type LkProviderMetadata = ProviderMetadataWith<ExtraMeta>;

pub type LkClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

pub fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn rp_client(
    app: &TestApp,
    id: &str,
    secret: Option<&str>,
) -> (LkClient, LkProviderMetadata) {
    let meta =
        LkProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &rp_http())
            .await
            .expect("discovery");
    let intro = meta
        .additional_metadata()
        .introspection_endpoint
        .clone()
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new(id.into()),
        secret.map(|s| ClientSecret::new(s.into())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap())
    .set_introspection_url(intro);
    (client, meta)
}

async fn full_flow(app: &TestApp, alg: latchkey_core::SigningAlg, post_auth: bool) {
    let created = app.client(|c| c.id_token_alg = alg).await;
    let secret = created.client_secret.clone().unwrap();
    let (mut client, meta) = rp_client(app, &created.client_id, Some(&secret)).await;
    if post_auth {
        client = client.set_auth_type(AuthType::RequestBody);
    }
    let http = rp_http();

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new(app);
    let back = browser.login(auth_url.as_str(), EMAIL, PASSWORD).await;
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.base.as_str())
    );
    let code = query_param(&back, "code").expect("code");
    assert!(code.starts_with("lk_ac_"));

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = token.id_token().expect("id_token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("ID token verifies");
    assert_eq!(claims.subject().as_str(), app.user_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(
        claims.auth_context_ref().map(|a| a.as_str()),
        Some("pwd"),
        "acr is pwd at this stage"
    );
    assert!(claims.auth_time().is_some());
    let at_hash = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, at_hash);
    let raw_header: serde_json::Value = {
        use base64::Engine;
        let h = id_token.to_string();
        let h = h.split('.').next().unwrap().to_owned();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(raw_header["alg"], alg.as_str());

    // The access token is an RFC 9068 JWT carrying sub, acr, amr, auth_time, sid and lab.
    let at = token.access_token().secret().clone();
    let at_claims = latchkey_server::token::jwt::verify_access_token(
        &app.state.keys.current(),
        &app.base,
        &at,
        latchkey_server::store::now(),
    )
    .expect("access token verifies");
    assert_eq!(at_claims.sub, app.user_id);
    assert_eq!(at_claims.acr.as_deref(), Some("pwd"));
    assert_eq!(at_claims.amr, vec!["pwd".to_owned()]);
    assert_eq!(at_claims.lab.as_deref(), Some(app.lab_id.as_str()));
    assert!(at_claims.sid.is_some() && at_claims.auth_time.is_some());

    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().map(|e| e.as_str()), Some(EMAIL));

    let rt = token.refresh_token().expect("refresh token").clone();
    assert!(rt.secret().starts_with("lk_rt_"));
    let refreshed = client
        .exchange_refresh_token(&rt)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let rt2 = refreshed
        .refresh_token()
        .expect("rotated refresh token")
        .clone();
    assert_ne!(rt2.secret(), rt.secret());

    let intro = client
        .introspect(refreshed.access_token())
        .set_token_type_hint("access_token")
        .request_async(&http)
        .await
        .expect("introspect");
    assert!(intro.active());
    assert_eq!(intro.sub(), Some(app.user_id.as_str()));

    // RFC 7009 revocation (openidconnect refuses plain-http revocation URLs, so POST directly).
    let revocation = meta
        .additional_metadata()
        .revocation_endpoint
        .clone()
        .unwrap();
    let mut req = http.post(revocation.as_str());
    req = if post_auth {
        req.form(&[
            ("token", rt2.secret().as_str()),
            ("client_id", &created.client_id),
            ("client_secret", &secret),
        ])
    } else {
        req.basic_auth(&created.client_id, Some(&secret))
            .form(&[("token", rt2.secret().as_str())])
    };
    assert_eq!(req.send().await.unwrap().status(), 200);
    let intro = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .expect("introspect after revoke");
    assert!(
        !intro.active(),
        "revoking the refresh token revokes its grant's access tokens"
    );
    assert!(
        client
            .exchange_refresh_token(&rt2)
            .unwrap()
            .request_async(&http)
            .await
            .is_err()
    );

    // RP-initiated logout with a confirmation page, back to the registered URI with state.
    let end_session = meta
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .unwrap();
    let mut logout = url::Url::parse(end_session.as_str()).unwrap();
    logout
        .query_pairs_mut()
        .append_pair("id_token_hint", &id_token.to_string())
        .append_pair("post_logout_redirect_uri", LOGOUT_CALLBACK)
        .append_pair("state", "bye");
    let page = browser.get(logout.as_str()).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign out") && html.contains("Stay signed in"));
    let csrf = html_input(&html, "csrf").unwrap();
    let r = browser
        .post_form(
            "/logout",
            &[
                ("csrf", &csrf),
                ("client_id", &created.client_id),
                ("post_logout_redirect_uri", LOGOUT_CALLBACK),
                ("state", "bye"),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{LOGOUT_CALLBACK}?state=bye"));
    // The session is gone: prompt=none now answers login_required.
    let (auth_url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .url();
    let r = browser.get(auth_url.as_str()).await;
    let back = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("login_required")
    );
}

both!(openidconnect_rp_full_code_flow, async |app: &TestApp| {
    full_flow(app, latchkey_core::SigningAlg::RS256, false).await
});

both!(
    openidconnect_rp_es256_client_secret_post,
    async |app: &TestApp| { full_flow(app, latchkey_core::SigningAlg::ES256, true).await }
);

both!(openidconnect_rp_eddsa_id_tokens, async |app: &TestApp| {
    full_flow(app, latchkey_core::SigningAlg::EdDSA, false).await
});
