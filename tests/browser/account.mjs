// The applications a user allowed, on the account page in Debian's headless Chromium: sign in
// at a relying party and allow it on the consent page, then on /account see the application
// and this browser's session, dismiss the "Withdraw" confirmation (nothing changes), accept it
// (the application is gone).
// Inputs (environment): BASE_URL (http://localhost:PORT), AUTHORIZE_URL, CALLBACK_PREFIX,
// CLIENT_ID, LOGIN_EMAIL, LOGIN_PASSWORD, SCREENSHOT_DIR. Progress goes to stderr; stdout gets
// one JSON line: {"callback", "listed", "listedAfterDismiss", "listedAfterWithdraw",
// "noneYet", "thisBrowser", "dialogs", "pageErrors", "cspViolations"}.
import { join } from 'node:path';
import { env, openBrowser } from './harness.mjs';

const step = (what) => console.error(`[account.mjs] ${new Date().toISOString()} ${what}`);

const base = env('BASE_URL');
const shots = env('SCREENSHOT_DIR');
const clientId = env('CLIENT_ID');

const {
  context, page, pageErrors, cspViolations, reachRelyingParty, openLoginPage,
  signInWithPassword,
} = await openBrowser({
  prefix: env('CALLBACK_PREFIX'),
  email: env('LOGIN_EMAIL'),
  password: env('LOGIN_PASSWORD'),
  authenticator: {
    protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
    isUserVerified: true, automaticPresenceSimulation: true,
  },
});
const dialogs = [];
try {
  step('1. sign in at the relying party and allow it');
  await openLoginPage(env('AUTHORIZE_URL'));
  await signInWithPassword();
  await page.waitForURL((url) => url.pathname === '/consent');
  let callback;
  const reached = reachRelyingParty().then((u) => { callback = u; });
  await page.getByRole('button', { name: 'Allow' }).click();
  await reached;

  step('2. /account lists the application and this browser');
  await page.goto(`${base}/account`);
  await page.getByRole('heading', { name: 'Applications you allowed' }).waitFor();
  const app = page.locator(`ul.consents li[data-client="${clientId}"]`);
  const listed = await app.count();
  const thisBrowser = await page.locator('ul.sessions li', { hasText: '(this browser)' }).count();
  await page.screenshot({ path: join(shots, 'account-applications.png'), fullPage: true });

  step('3. "Withdraw", then cancel the confirmation: nothing changes');
  page.once('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await app.getByRole('button', { name: 'Withdraw' }).click();
  await page.waitForTimeout(300);
  const listedAfterDismiss = await app.count();

  step('4. "Withdraw" and confirm: the application is gone');
  page.once('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  const reloaded = page.waitForEvent('load');
  await app.getByRole('button', { name: 'Withdraw' }).click();
  await reloaded;
  await page.getByRole('heading', { name: 'Applications you allowed' }).waitFor();
  const listedAfterWithdraw = await page.locator(`ul.consents li[data-client="${clientId}"]`).count();
  const noneYet = await page.locator('section[aria-labelledby="apps-h"] p.muted', { hasText: 'None yet.' }).count();

  console.log(JSON.stringify({
    callback, listed, listedAfterDismiss, listedAfterWithdraw, noneYet, thisBrowser, dialogs,
    pageErrors, cspViolations,
  }));
} catch (e) {
  await page.screenshot({ path: join(shots, 'account-failure.png'), fullPage: true })
    .catch(() => {});
  throw e;
} finally {
  await context.close();
}
