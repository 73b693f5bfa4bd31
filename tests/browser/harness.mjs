// What the WebAuthn browser scripts (mfa.mjs, securitykey.mjs) share: Debian's headless Chromium
// with a fresh profile, a DevTools virtual authenticator, Content-Security-Policy violations
// reported (and failing a wait at once), the relying party's callback caught as the browser
// requests it, passkey autofill held back unless asked for, and the steps of a WebAuthn
// ceremony and a password sign-in.
import { launch } from './chromium.mjs';

export { env } from './chromium.mjs';

export const WAIT = 20_000;

// Starts Chromium with one page and a virtual authenticator made with `authenticator` (the
// options of WebAuthn.addVirtualAuthenticator). `prefix` starts the relying party's callback
// URL; `email` and `password` are what signInWithPassword types.
export async function openBrowser({ prefix, email, password, authenticator }) {
  const context = await launch();
  try {
    return await prepare(context, { prefix, email, password, authenticator });
  } catch (e) {
    await context.close();
    throw e;
  }
}

async function prepare(context, { prefix, email, password, authenticator }) {
  context.setDefaultTimeout(WAIT);
  context.setDefaultNavigationTimeout(WAIT);
  const page = await context.newPage();
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

  // The authenticator belongs to this page, so the same page is used throughout (clearing
  // cookies keeps it).
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: authenticator,
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
  // being tested (autofill.allowed = true), hold it back: answer its challenge request with an
  // error, which the page ignores, so that the button or the password form decides how the
  // user signs in.
  const autofill = { allowed: false };
  const isConditionalBegin = (request) =>
    request.method() === 'POST' && new URL(request.url()).pathname === '/webauthn/login/begin' &&
    new URLSearchParams(request.postData() || '').get('mode') === 'conditional';
  await page.route((url) => url.pathname === '/webauthn/login/begin', async (route) => {
    if (autofill.allowed || !isConditionalBegin(route.request())) return route.continue();
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

  return {
    context, page, cdp, authenticatorId, pageErrors, cspViolations, autofill,
    reachRelyingParty, openLoginPage, ceremony, signInWithPassword,
  };
}
