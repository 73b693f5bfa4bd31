// A relying party using panva's openid-client (npm) pushes its authorization request
// (RFC 9126) and signs its user in through Latchkey's hosted login in headless Chromium.
// Inputs (environment): ISSUER, CLIENT_ID, REDIRECT_URI, LOGIN_EMAIL, LOGIN_PASSWORD, and
// either CLIENT_SECRET or, for private_key_jwt (RFC 7523), PRIVATE_KEY (an ES256 key as
// base64 PKCS#8) and KEY_ID. Prints one JSON line: {"requestUri", "authorizationUrl",
// "claims", ...}.
import * as oidc from 'openid-client';
import { env, signInAt } from './chromium.mjs';

// The client authenticates to /par and /token with its secret, or with assertions it signs.
let auth;
if (process.env.PRIVATE_KEY) {
  const key = await crypto.subtle.importKey('pkcs8', Buffer.from(env('PRIVATE_KEY'), 'base64'),
    { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  auth = oidc.PrivateKeyJwt({ key, kid: env('KEY_ID') });
} else {
  auth = oidc.ClientSecretPost(env('CLIENT_SECRET'));
}

// The test server speaks plain HTTP on loopback.
const config = await oidc.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), undefined, auth,
  { execute: [oidc.allowInsecureRequests] });
const metadata = config.serverMetadata();

const verifier = oidc.randomPKCECodeVerifier();
const state = oidc.randomState();
const nonce = oidc.randomNonce();
const url = await oidc.buildAuthorizationUrlWithPAR(config, {
  redirect_uri: env('REDIRECT_URI'),
  scope: 'openid email',
  code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});

const callback = await signInAt(url.href);

const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
console.log(JSON.stringify({
  authMethods: metadata.token_endpoint_auth_methods_supported,
  parEndpoint: metadata.pushed_authorization_request_endpoint,
  requirePar: metadata.require_pushed_authorization_requests,
  authorizationUrl: url.href,
  requestUri: url.searchParams.get('request_uri'),
  claims: tokens.claims(),
}));
