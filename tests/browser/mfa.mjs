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
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { totp, totpAfter, totpStep } from './totp.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const WAIT = 20_000;
const step = (what) => console.error(`[mfa.mjs] ${new Date().toISOString()} ${what}`);

const base = env('BASE_URL');
const prefix = env('CALLBACK_PREFIX');
const shots = env('SCREENSHOT_DIR');
const email = env('LOGIN_EMAIL');
const password = env('LOGIN_PASSWORD');

const userDataDir = mkdtempSync(join(tmpdir(), 'latchkey-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
context.setDefaultTimeout(WAIT);
context.setDefaultNavigationTimeout(WAIT);
const page = await context.newPage();
try {
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  // The pages' Content-Security-Policy must allow what webauthn.js does (its fetch calls):
  // report violations, and fail a wait at once when one happens instead of timing out.
  const cspViolations = [];
  const violationWaiters = new Set();
  await page.exposeFunction('latchkeyTestCspViolation', (text) => {
    cspViolations.push(text);
    for (const fail of violationWaiters) fail();
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.latchkeyTestCspViolation(
      `${e.effectiveDirective} blocked ${e.blockedURI} (from ${e.sourceFile}:${e.lineNumber})`));
  });
  const failOnViolation = (promise) => new Promise((resolve, reject) => {
    const fail = () => reject(new Error(
      `the Content-Security-Policy of ${page.url()} blocked: ${cspViolations.join('; ')}`));
    if (cspViolations.length) return fail();
    violationWaiters.add(fail);
    promise.then(resolve, reject).finally(() => violationWaiters.delete(fail));
  });

  // A platform authenticator with user verification that answers without a prompt. It belongs
  // to this page, so the same page is used throughout (clearing cookies keeps it).
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  // The relying party's callback is not served here. Unlike in login.mjs, page.route (and
  // context.route) never see it: the redirect to it is cross-site (localhost -> 127.0.0.1), and
  // Chromium then refuses its port (9, discard) as unsafe. The browser's request for it is what
  // counts: it carries the code, and the browser never connects anywhere with it. A callback
  // counts once the page has moved on (to Chromium's error page), so that the next navigation
  // does not collide with the failing one.
  const callbacks = [];
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations += 1; });
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.url().startsWith(prefix)) {
      callbacks.push({ url: r.url(), navigationsBefore: navigations });
    }
  });
  let callbacksSeen = 0;
  const reachRelyingParty = () => failOnViolation((async () => {
    const deadline = Date.now() + WAIT;
    const done = () => callbacks.length > callbacksSeen &&
      navigations > callbacks.at(-1).navigationsBefore;
    while (!done()) {
      if (Date.now() > deadline) {
        const alerts = await page.getByRole('alert').allTextContents().catch(() => []);
        throw new Error(`the relying party callback was never requested (at ${page.url()}; ` +
          `the page says: ${JSON.stringify(alerts.map((a) => a.trim()).filter(Boolean))})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await page.waitForLoadState('load');
    callbacksSeen = callbacks.length;
    return callbacks.at(-1).url;
  })());

  // The sign-in page starts passkey autofill (conditional mediation) in the background, and
  // the virtual authenticator answers a conditional request at once, as if the user had
  // picked the passkey from the email field's suggestions. Except where autofill is what is
  // being tested, hold it back: answer its challenge request with an error, which the page
  // ignores, so that the button or the password form decides how the user signs in.
  let allowAutofill = false;
  const isConditionalBegin = (request) =>
    request.method() === 'POST' && new URL(request.url()).pathname === '/webauthn/login/begin' &&
    new URLSearchParams(request.postData() || '').get('mode') === 'conditional';
  await page.route((url) => url.pathname === '/webauthn/login/begin', async (route) => {
    if (allowAutofill || !isConditionalBegin(route.request())) return route.continue();
    return route.fulfill({
      status: 503, contentType: 'application/json', body: '{"error":"held back by the test"}',
    });
  });
  // Opens a sign-in page and, when the browser offers autofill, waits until the page's
  // autofill request has been answered, so that a click or a submit does not race it.
  const openLoginPage = async (url) => {
    const autofillAnswered = page.waitForResponse((r) => isConditionalBegin(r.request()))
      .then(() => true);
    autofillAnswered.catch(() => {});
    await page.goto(url);
    await page.waitForURL((u) => u.pathname === '/login');
    await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
    const available = await page.evaluate(async () =>
      typeof PublicKeyCredential === 'function' &&
      !!PublicKeyCredential.isConditionalMediationAvailable &&
      PublicKeyCredential.isConditionalMediationAvailable());
    if (available) await failOnViolation(autofillAnswered);
    return available;
  };
  // Runs a WebAuthn ceremony started by `click` and waits for the page it leads to (`arrived`);
  // fails early with the message the page shows if the ceremony fails.
  const ceremony = async (click, arrived) => {
    const shown = page.locator('[data-webauthn-error]:visible').first();
    const failed = shown.waitFor({ timeout: WAIT + 5_000 }).then(async () => {
      throw new Error(`WebAuthn failed on ${page.url()}: ${await shown.textContent()}\n` +
        consoleLines.join('\n'));
    }, () => new Promise(() => {}));
    await click();
    await failOnViolation(Promise.race([arrived(), failed]));
  };
  const signInWithPassword = async () => {
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  };

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
    allowAutofill = true;
    // Only until the response: the autofill may sign in before the page's load event.
    await page.goto(env('AUTHORIZE_URL_PLAIN'), { waitUntil: 'commit' });
    autofillCallback = await reachRelyingParty();
    allowAutofill = false;
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
