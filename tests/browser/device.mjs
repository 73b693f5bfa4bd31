// A device (RFC 8628) using panva's openid-client (npm) as its OAuth library: it asks for a
// user code and polls the token endpoint, while its user types the code at Latchkey's /device
// page in headless Chromium, signs in with a password and confirms the device.
// Inputs (environment): ISSUER, CLIENT_ID (a public client with the device grant),
// LOGIN_EMAIL, LOGIN_PASSWORD. Prints one JSON line: {"deviceEndpoint", "userCode", "shown",
// "done", "claims", "refreshToken"}.
import * as oidc from 'openid-client';
import { env, launch } from './chromium.mjs';

// The test server speaks plain HTTP on loopback; a device cannot keep a secret: `none`.
const config = await oidc.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), undefined,
  oidc.None(), { execute: [oidc.allowInsecureRequests] });
const metadata = config.serverMetadata();

const response = await oidc.initiateDeviceAuthorization(config, {
  scope: 'openid email offline_access',
});
// The device polls from now on, at the interval Latchkey asked for.
const polling = oidc.pollDeviceAuthorizationGrant(config, response);

const context = await launch();
let shown;
let done;
try {
  const page = await context.newPage();
  // The user types the code as read off the device's display, in lower case.
  await page.goto(response.verification_uri);
  await page.getByLabel('Code').fill(response.user_code.toLowerCase());
  await page.getByRole('button', { name: 'Continue', exact: true }).click();
  await page.getByLabel('Email').fill(env('LOGIN_EMAIL'));
  await page.getByLabel('Password').fill(env('LOGIN_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/consent');
  shown = await page.locator('#device-code').textContent();
  await page.getByRole('button', { name: 'Allow', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/device/done');
  done = await page.locator('h1').textContent();
} finally {
  await context.close();
}

const tokens = await polling;
console.log(JSON.stringify({
  deviceEndpoint: metadata.device_authorization_endpoint,
  userCode: response.user_code,
  shown,
  done,
  claims: tokens.claims(),
  refreshToken: typeof tokens.refresh_token === 'string',
}));
