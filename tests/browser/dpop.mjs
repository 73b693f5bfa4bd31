// A public relying party using panva's openid-client (npm) with DPoP (RFC 9449): it signs its
// user in through Latchkey's hosted login in headless Chromium, redeems the code with a proof
// (the tokens are bound to its key), reads UserInfo and refreshes with proofs (the library
// answers Latchkey's use_dpop_nonce itself), then calls a lab service protected by
// latchkey-client's actix extractor with the bound token.
// Inputs (environment): ISSUER, CLIENT_ID, REDIRECT_URI, LOGIN_EMAIL, LOGIN_PASSWORD,
// RESOURCE_URL. Prints one JSON line: {"tokenType", "cnf", "userinfo", "refreshed", "resource",
// "bearerStatus", "bearerChallenge"}.
import * as oidc from 'openid-client';
import { env, signInAt } from './chromium.mjs';

// The test server speaks plain HTTP on loopback.
const config = await oidc.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), undefined,
  oidc.None(), { execute: [oidc.allowInsecureRequests] });
const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));

const verifier = oidc.randomPKCECodeVerifier();
const state = oidc.randomState();
const nonce = oidc.randomNonce();
const url = oidc.buildAuthorizationUrl(config, {
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
}, undefined, { DPoP });
const claims = tokens.claims();
const at = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));
const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });

// The lab service verifies the bound token and the proof openid-client makes for it.
const resource = await oidc.fetchProtectedResource(config, refreshed.access_token,
  new URL(env('RESOURCE_URL')), 'GET', undefined, undefined, { DPoP });
// The same token as a bearer token is refused there.
const bearer = await fetch(env('RESOURCE_URL'), {
  headers: { authorization: `Bearer ${refreshed.access_token}` },
});
console.log(JSON.stringify({
  tokenType: tokens.token_type,
  cnf: at.cnf,
  userinfo,
  refreshed: { tokenType: refreshed.token_type },
  resource: { status: resource.status, body: await resource.json() },
  bearerStatus: bearer.status,
  bearerChallenge: bearer.headers.get('www-authenticate'),
}));
