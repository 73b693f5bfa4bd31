//! diesel table definitions shared by both backends; the SQL lives in `migrations/{sqlite,postgres}`.

diesel::table! {
    labs (id) {
        id -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        disabled -> Bool,
        created_at -> BigInt,
        system_admin -> Bool,
        erased_at -> Nullable<BigInt>,
        email_verified_at -> Nullable<BigInt>,
        deletion_requested_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    memberships (user_id, lab_id) {
        user_id -> Text,
        lab_id -> Text,
        created_at -> BigInt,
        admin -> Bool,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Nullable<Binary>,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        access_token_ttl_secs -> Nullable<BigInt>,
        id_token_alg -> Text,
        skip_consent -> Bool,
        created_at -> BigInt,
        min_acr -> Nullable<Text>,
        admin_of -> Nullable<Text>,
        disabled_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
        previous_secret_hash -> Nullable<Binary>,
        previous_secret_expires_at -> Nullable<BigInt>,
        pkce_optional -> Bool,
        all_labs -> Bool,
        features -> Text,
        require_par -> Bool,
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        require_dpop -> Bool,
        backchannel_logout_uri -> Nullable<Text>,
        resource_uri -> Nullable<Text>,
        resources -> Text,
    }
}

diesel::table! {
    pushed_requests (uri_hash) {
        uri_hash -> Binary,
        client_id -> Text,
        params -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    device_authorizations (id) {
        id -> Text,
        device_code_hash -> Binary,
        user_code_hash -> Binary,
        client_id -> Text,
        scope -> Text,
        acr_values -> Text,
        lab_hint -> Nullable<Text>,
        status -> Text,
        interval_secs -> BigInt,
        last_polled_at -> Nullable<BigInt>,
        grant_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        acr -> Nullable<Text>,
        amr -> Nullable<Text>,
        lab_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        resources -> Text,
    }
}

diesel::table! {
    client_assertions (client_id, jti_hash) {
        client_id -> Text,
        jti_hash -> Binary,
        expires_at -> BigInt,
    }
}

diesel::table! {
    dpop_proofs (proof_hash) {
        proof_hash -> Binary,
        expires_at -> BigInt,
    }
}

diesel::table! {
    client_labs (client_id, lab_id) {
        client_id -> Text,
        lab_id -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        token_hash -> Binary,
        user_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        ended_at -> Nullable<BigInt>,
        factors -> Text,
        last_seen_at -> BigInt,
        source -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    login_flows (id) {
        id -> Text,
        browser_hash -> Binary,
        request -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        created_at -> BigInt,
        resources -> Text,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Binary,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        auth_time -> BigInt,
        acr -> Text,
        amr -> Text,
        lab_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        dpop_jkt -> Nullable<Text>,
        resources -> Text,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Text,
        scope -> Text,
        auth_time -> BigInt,
        acr -> Text,
        amr -> Text,
        lab_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        dpop_jkt -> Nullable<Text>,
        resources -> Text,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Binary,
        grant_id -> Text,
        created_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        state -> Text,
        private_key -> Binary,
        public_jwk -> Text,
        created_at -> BigInt,
        activated_at -> Nullable<BigInt>,
        retired_at -> Nullable<BigInt>,
        activate_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        details -> Text,
        seq -> Nullable<BigInt>,
        prev_hash -> Nullable<Binary>,
        hash -> Nullable<Binary>,
    }
}

diesel::table! {
    totp_credentials (user_id) {
        user_id -> Text,
        secret -> Binary,
        confirmed -> Bool,
        last_step -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    webauthn_credentials (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        kind -> Text,
        credential -> Text,
        sign_count -> BigInt,
        backup_eligible -> Bool,
        backup_state -> Bool,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        attestation_root -> Nullable<Text>,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Binary,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
        keyed -> Bool,
    }
}

diesel::table! {
    auth_failures (user_id, kind) {
        user_id -> Text,
        kind -> Text,
        failures -> BigInt,
        locked_until -> BigInt,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> Text,
        browser_hash -> Binary,
        user_id -> Nullable<Text>,
        purpose -> Text,
        state -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    lab_policies (lab_id) {
        lab_id -> Text,
        min_acr -> Text,
        grace_days -> Nullable<BigInt>,
        grace_logins -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    roles (lab_id, name) {
        lab_id -> Text,
        name -> Text,
        min_acr -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    user_roles (user_id, lab_id, role) {
        user_id -> Text,
        lab_id -> Text,
        role -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    role_features (lab_id, role, feature) {
        lab_id -> Text,
        role -> Text,
        feature -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    member_features (user_id, lab_id, feature) {
        user_id -> Text,
        lab_id -> Text,
        feature -> Text,
        allow -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    mfa_grace (user_id, lab_id) {
        user_id -> Text,
        lab_id -> Text,
        started_at -> BigInt,
        logins -> BigInt,
    }
}

diesel::table! {
    invitations (id) {
        id -> Text,
        token_hash -> Binary,
        lab_id -> Text,
        email -> Text,
        roles -> Text,
        created_by -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        accepted_at -> Nullable<BigInt>,
        accepted_by -> Nullable<Text>,
        link_disclosed -> Bool,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        recipient -> Text,
        kind -> Text,
        subject -> Text,
        body -> Nullable<Binary>,
        user_id -> Nullable<Text>,
        state -> Text,
        attempts -> BigInt,
        created_at -> BigInt,
        next_attempt_at -> BigInt,
        lease_until -> Nullable<BigInt>,
        sent_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    account_links (token_hash) {
        token_hash -> Binary,
        user_id -> Text,
        purpose -> Text,
        email -> Text,
        change_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(memberships -> labs (lab_id));
diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::joinable!(client_labs -> clients (client_id));
diesel::joinable!(client_labs -> labs (lab_id));
diesel::allow_tables_to_appear_in_same_query!(
    labs,
    users,
    memberships,
    clients,
    client_labs,
    pushed_requests,
    client_assertions,
    dpop_proofs,
    device_authorizations,
    sessions,
    login_flows,
    consents,
    authorization_codes,
    grants,
    refresh_tokens,
    signing_keys,
    audit_events,
    totp_credentials,
    webauthn_credentials,
    recovery_codes,
    webauthn_ceremonies,
    auth_failures,
    lab_policies,
    roles,
    user_roles,
    mfa_grace,
    role_features,
    member_features,
    invitations,
    account_links,
    logout_deliveries,
);

diesel::table! {
    throttle_counters (key) {
        key -> Text,
        window_start -> BigInt,
        count -> BigInt,
    }
}

diesel::table! {
    audit_checkpoints (seq) {
        seq -> BigInt,
        hash -> Binary,
        pruned -> BigInt,
        created_at -> BigInt,
        mac -> Binary,
    }
}

diesel::table! {
    security_alerts (id) {
        id -> Text,
        key -> Text,
        at -> BigInt,
        detector -> Text,
        subject -> Text,
        payload -> Text,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        alert_id -> Text,
        url -> Text,
        status -> Text,
        attempts -> BigInt,
        next_attempt_at -> Nullable<BigInt>,
        last_result -> Nullable<Text>,
        delivered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    logout_deliveries (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Text,
        url -> Text,
        status -> Text,
        attempts -> BigInt,
        created_at -> BigInt,
        next_attempt_at -> Nullable<BigInt>,
        last_result -> Nullable<Text>,
        delivered_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(webhook_deliveries -> security_alerts (alert_id));
diesel::allow_tables_to_appear_in_same_query!(security_alerts, webhook_deliveries);

diesel::table! {
    server_secrets (name) {
        name -> Text,
        sealed -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    backup_runs (slot) {
        slot -> BigInt,
        node -> Text,
        started_at -> BigInt,
        finished_at -> Nullable<BigInt>,
        status -> Text,
        file -> Nullable<Text>,
        bytes -> Nullable<BigInt>,
        rows -> Nullable<BigInt>,
        error -> Nullable<Text>,
    }
}
