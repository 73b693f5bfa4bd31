// Drives Latchkey's account and sign-in pages in Debian's headless Chromium with playwright-core:
// enrols an authenticator app (TOTP computed here from the key shown on the page) and a passkey
// (held by a DevTools virtual authenticator), then, each time after signing out (clearing
// cookies), signs in with the passkey alone (button, then autofill), steps a password sign-in
// up to `phr` with the passkey, and steps another up to `mfa` with a TOTP code.
// Inputs (environment): BASE_URL (http://localhost:PORT), AUTHORIZE_URL_PLAIN,
// AUTHORIZE_URL_PHR, AUTHORIZE_URL_MFA, CALLBACK_PREFIX, LOGIN_EMAIL, LOGIN_PASSWORD,
// SCREENSHOT_DIR. Progress goes to stderr; stdout gets one JSON line with what the pages
// showed and the callbacks: {"accountAcr", ..., "passkeyCallback", "autofillCallback",
// "phrCallback", "mfaCallback"}.
import { join } from 'node:path';
import { env, openBrowser } from './harness.mjs';
import { totp, totpAfter, totpStep } from './totp.mjs';

const step = (what) => console.error(`[mfa.mjs] ${new Date().toISOString()} ${what}`);

const base = env('BASE_URL');
const prefix = env('CALLBACK_PREFIX');
const shots = env('SCREENSHOT_DIR');
const email = env('LOGIN_EMAIL');
const password = env('LOGIN_PASSWORD');

// A platform authenticator with user verification that answers without a prompt.
const {
  context, page, cdp, authenticatorId, pageErrors, cspViolations, autofill,
  reachRelyingParty, openLoginPage, ceremony, signInWithPassword,
} = await openBrowser({
  prefix, email, password,
  authenticator: {
    protocol: 'ctap2',
    transport: 'internal',
    hasResidentKey: true,
    hasUserVerification: true,
    isUserVerified: true,
    automaticPresenceSimulation: true,
  },
});
try {
  // 1. The account page sends an unsigned browser to sign in, then back.
  step('1. /account, sign in with the password');
  await openLoginPage(`${base}/account`);
  await signInWithPassword();
  await page.waitForURL((url) => url.pathname === '/account');
  await page.getByRole('heading', { name: 'Sign-in and security' }).waitFor();
  const accountAcr = (await page.locator('#session-acr').textContent()).trim();
  await page.screenshot({ path: join(shots, 'account-page.png'), fullPage: true });

  // 2. Authenticator app: read the key off the page, answer with the current code.
  step('2. set up the authenticator app');
  await page.locator('#setup-totp').click();
  await page.getByRole('heading', { name: 'Set up an authenticator app' }).waitFor();
  const qrShown = await page.locator('img.qr').evaluate((img) =>
    img.complete && img.naturalWidth > 0 && img.src.startsWith('data:image/'));
  const key = (await page.locator('#totp-key').textContent()).trim();
  await page.getByLabel('6-digit code').fill(totp(key));
  // Read after the code: a step boundary crossed in between makes this the later step.
  const enrolStep = totpStep();
  await page.screenshot({ path: join(shots, 'totp-setup.png'), fullPage: true });
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.waitForURL((url) => url.pathname === '/account');
  await page.getByRole('heading', { name: 'Sign-in and security' }).waitFor();
  const totpOn = await page.getByText(/On since/).isVisible();
  const acrAfterTotp = (await page.locator('#session-acr').textContent()).trim();

  // 3. A passkey named "Laptop", created by the virtual authenticator; the page reloads.
  step('3. register the passkey "Laptop"');
  await page.getByLabel('Name for a new passkey').fill('Laptop');
  const reloaded = page.waitForEvent('load');
  await ceremony(() => page.locator('#add-passkey').click(), () => reloaded);
  await page.locator('ul.credentials li strong', { hasText: 'Laptop' }).waitFor();
  const passkeyNames = (await page.locator('ul.credentials li strong').allTextContents())
    .map((s) => s.trim());
  const acrAfterPasskey = (await page.locator('#session-acr').textContent()).trim();
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  const residentCredentials = credentials.filter((c) => c.isResidentCredential).length;
  await page.screenshot({ path: join(shots, 'account-with-passkey.png'), fullPage: true });

  // 4. Signed out: the passkey alone signs in with the button...
  step('4. sign in with the passkey alone');
  await context.clearCookies();
  const autofillAvailable = await openLoginPage(env('AUTHORIZE_URL_PLAIN'));
  let passkeyCallback;
  await ceremony(() => page.getByRole('button', { name: 'Sign in with a passkey' }).click(),
    async () => { passkeyCallback = await reachRelyingParty(); });

  // ... and, signed out again, picked from the autofill without a click.
  let autofillCallback = null;
  if (autofillAvailable) {
    step('4b. sign in with the passkey from the autofill');
    await context.clearCookies();
    autofill.allowed = true;
    // Only until the response: the autofill may sign in before the page's load event.
    await page.goto(env('AUTHORIZE_URL_PLAIN'), { waitUntil: 'commit' });
    autofillCallback = await reachRelyingParty();
    autofill.allowed = false;
  }

  // 5. Signed out again: a password sign-in for a client asking for `phr` must step up.
  step('5. password, then the passkey for acr_values=phr');
  await context.clearCookies();
  await openLoginPage(env('AUTHORIZE_URL_PHR'));
  await signInWithPassword();
  await page.waitForURL((url) => url.pathname === '/login/verify');
  await page.getByRole('heading', { name: "Confirm it's you" }).waitFor();
  const phrTotpOffered = await page.getByLabel('6-digit code').count();
  await page.screenshot({ path: join(shots, 'step-up.png'), fullPage: true });
  let phrCallback;
  await ceremony(() => page.getByRole('button', { name: 'Use passkey' }).click(),
    async () => { phrCallback = await reachRelyingParty(); });

  // 6. Signed out again: `mfa` is met with the password and a code from the app. Enrolment
  // used its 30-second step's code, and future codes are refused: the next step's code.
  step('6. password, then a TOTP code for acr_values=mfa');
  await context.clearCookies();
  await openLoginPage(env('AUTHORIZE_URL_MFA'));
  await signInWithPassword();
  await page.waitForURL((url) => url.pathname === '/login/verify');
  await page.getByLabel('6-digit code').fill(await totpAfter(key, enrolStep));
  await page.screenshot({ path: join(shots, 'step-up-totp.png'), fullPage: true });
  await page.getByRole('button', { name: 'Verify' }).click();
  const mfaCallback = await reachRelyingParty();

  // 7. Another member, of a lab whose policy requires two factors with a grace period, has
  // none yet: the sign-in leads to enrolment, and "Not now" continues while the grace lasts.
  step('7. enrolment page for a member without a second factor, then "Not now"');
  await context.clearCookies();
  await openLoginPage(env('AUTHORIZE_URL_ENROL'));
  await page.getByLabel('Email').fill(env('ENROL_EMAIL'));
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((url) => url.pathname === '/login/enrol');
  await page.getByRole('heading', { name: 'Set up two-step verification' }).waitFor();
  await page.screenshot({ path: join(shots, 'enrol.png'), fullPage: true });
  await page.getByRole('button', { name: 'Not now' }).click();
  const enrolCallback = await reachRelyingParty();

  console.log(JSON.stringify({
    accountAcr, acrAfterTotp, acrAfterPasskey, qrShown, totpOn, passkeyNames,
    residentCredentials, autofillAvailable, phrTotpOffered, pageErrors, cspViolations,
    passkeyCallback, autofillCallback, phrCallback, mfaCallback, enrolCallback,
  }));
} catch (e) {
  // Where it stopped, for the failure report.
  await page.screenshot({ path: join(shots, 'mfa-failure.png'), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await context.close();
}
