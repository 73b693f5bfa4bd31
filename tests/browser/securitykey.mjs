// A security key in Debian's headless Chromium: a DevTools virtual authenticator on USB without
// user verification (no PIN, no biometric) and without resident keys, as most keys are used.
// The account page registers it ("Add a security key"); then, signed out, a password sign-in
// for a client asking for `mfa` steps up with it on the verify page.
// Inputs (environment): BASE_URL (http://localhost:PORT), AUTHORIZE_URL_MFA, CALLBACK_PREFIX,
// LOGIN_EMAIL, LOGIN_PASSWORD, SCREENSHOT_DIR. Progress goes to stderr; stdout gets one JSON
// line: {"credentialNames", "residentCredentials", "mfaCallback", "pageErrors",
// "cspViolations"}.
import { join } from 'node:path';
import { env, openBrowser } from './harness.mjs';

const step = (what) => console.error(`[securitykey.mjs] ${new Date().toISOString()} ${what}`);

const base = env('BASE_URL');
const shots = env('SCREENSHOT_DIR');

const {
  context, page, cdp, authenticatorId, pageErrors, cspViolations,
  reachRelyingParty, openLoginPage, ceremony, signInWithPassword,
} = await openBrowser({
  prefix: env('CALLBACK_PREFIX'),
  email: env('LOGIN_EMAIL'),
  password: env('LOGIN_PASSWORD'),
  authenticator: {
    protocol: 'ctap2',
    transport: 'usb',
    hasResidentKey: false,
    hasUserVerification: false,
    automaticPresenceSimulation: true,
  },
});
try {
  step('1. /account, sign in with the password');
  await openLoginPage(`${base}/account`);
  await signInWithPassword();
  await page.waitForURL((url) => url.pathname === '/account');
  await page.getByRole('heading', { name: 'Sign-in and security' }).waitFor();

  step('2. add a security key');
  const reloaded = page.waitForEvent('load');
  await ceremony(() => page.locator('#add-security-key').click(), () => reloaded);
  await page.locator('ul.credentials li strong', { hasText: 'Security key' }).waitFor();
  const credentialNames = (await page.locator('ul.credentials li strong').allTextContents())
    .map((s) => s.trim());
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  const residentCredentials = credentials.filter((c) => c.isResidentCredential).length;
  await page.screenshot({ path: join(shots, 'account-with-security-key.png'), fullPage: true });

  step('3. signed out: password, then the security key for acr_values=mfa');
  await context.clearCookies();
  await openLoginPage(env('AUTHORIZE_URL_MFA'));
  await signInWithPassword();
  await page.waitForURL((url) => url.pathname === '/login/verify');
  await page.getByRole('heading', { name: "Confirm it's you" }).waitFor();
  await page.screenshot({ path: join(shots, 'step-up-security-key.png'), fullPage: true });
  let mfaCallback;
  await ceremony(() => page.getByRole('button', { name: 'Use passkey or security key' }).click(),
    async () => { mfaCallback = await reachRelyingParty(); });

  console.log(JSON.stringify({
    credentialNames, residentCredentials, mfaCallback, pageErrors, cspViolations,
  }));
} catch (e) {
  await page.screenshot({ path: join(shots, 'securitykey-failure.png'), fullPage: true })
    .catch(() => {});
  throw e;
} finally {
  await context.close();
}
