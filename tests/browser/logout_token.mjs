// Verifies a Latchkey logout token with jose (a third-party JOSE library) as a relying party
// written for Node would: the signature against the issuer's JWKS (from discovery), explicit
// typing (`logout+jwt`), issuer, audience, lifetime, and the claims OpenID Connect
// Back-Channel Logout 1.0 section 2.6 requires. Prints the token's sub, sid and header.
//
// Environment: ISSUER, CLIENT_ID, LOGOUT_TOKEN.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const { ISSUER, CLIENT_ID, LOGOUT_TOKEN } = process.env;
const meta = await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json();
if (meta.backchannel_logout_supported !== true || meta.backchannel_logout_session_supported !== true) {
  throw new Error('discovery does not announce back-channel logout with sid');
}
const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
const { payload, protectedHeader } = await jwtVerify(LOGOUT_TOKEN, jwks, {
  issuer: ISSUER,
  audience: CLIENT_ID,
  typ: 'logout+jwt',
  maxTokenAge: '2 minutes',
  requiredClaims: ['iat', 'exp', 'jti', 'sub', 'sid', 'events'],
});
const event = payload.events['http://schemas.openid.net/event/backchannel-logout'];
if (typeof event !== 'object' || event === null || Array.isArray(event)) {
  throw new Error('the token declares no back-channel logout event');
}
if ('nonce' in payload) {
  throw new Error('a logout token must not carry a nonce');
}
console.log(JSON.stringify({
  sub: payload.sub,
  sid: payload.sid,
  alg: protectedHeader.alg,
  typ: protectedHeader.typ,
}));
