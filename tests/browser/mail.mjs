// Forgotten password and a changed address, in Debian's headless Chromium, with the mail read
// from a real SMTP server's Maildir: "Forgot your password?" on the sign-in page, the mailed
// link, a new password, then a sign-in with the new password that still asks for the
// authenticator app; then, on /account, an address change that happens only once the link
// sent to the new address and the one sent to the old address are both followed.
// Inputs (environment): BASE_URL (http://localhost:PORT), AUTHORIZE_URL (asks for mfa),
// CALLBACK_PREFIX, LOGIN_EMAIL, NEW_PASSWORD, NEW_EMAIL, TOTP_KEY, MAILDIR, SCREENSHOT_DIR.
// Progress goes to stderr; stdout gets one JSON line: {"callback", "resetDone",
// "halfWay", "changed", "accountEmail", "accountState", "pageErrors", "cspViolations"}.
import { join } from 'node:path';
import { env, openBrowser } from './harness.mjs';
import { linkIn, waitForMail } from './maildir.mjs';
import { totp } from './totp.mjs';

const step = (what) => console.error(`[mail.mjs] ${new Date().toISOString()} ${what}`);

const base = env('BASE_URL');
const shots = env('SCREENSHOT_DIR');
const maildir = env('MAILDIR');
const email = env('LOGIN_EMAIL');
const newPassword = env('NEW_PASSWORD');
const newEmail = env('NEW_EMAIL');
// Links name the issuer (127.0.0.1); the browser stays on localhost (WebAuthn's RP id).
const local = (link) => link.replace(/^http:\/\/127\.0\.0\.1:/, 'http://localhost:');

const {
  context, page, pageErrors, cspViolations, reachRelyingParty, openLoginPage,
} = await openBrowser({
  prefix: env('CALLBACK_PREFIX'),
  email,
  password: newPassword,
  authenticator: {
    protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
    isUserVerified: true, automaticPresenceSimulation: true,
  },
});
try {
  step('1. the sign-in page: "Forgot your password?"');
  await openLoginPage(env('AUTHORIZE_URL'));
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.waitForURL((u) => u.pathname === '/password/forgot');
  await page.getByLabel('Email').fill(email);
  await page.screenshot({ path: join(shots, 'forgot-password.png'), fullPage: true });
  await page.getByRole('button', { name: 'Send the link' }).click();
  await page.locator('#forgot-sent').waitFor();

  step('2. the mailed link: choose a new password');
  const reset = linkIn(await waitForMail(maildir, email, 'Reset your password'), 'http');
  await page.goto(local(reset));
  await page.getByLabel('New password', { exact: true }).fill(newPassword);
  await page.getByLabel('New password again').fill(newPassword);
  await page.screenshot({ path: join(shots, 'reset-password.png'), fullPage: true });
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await page.getByRole('heading', { name: 'Your password is changed' }).waitFor();
  const resetDone = true;

  step('3. sign in with the new password: the authenticator app is still asked for');
  await openLoginPage(env('AUTHORIZE_URL'));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(newPassword);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/login/verify');
  await page.getByLabel('6-digit code').fill(totp(env('TOTP_KEY')));
  const reached = reachRelyingParty();
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  const callback = await reached;

  step('4. /account: ask to change the address');
  await page.goto(`${base}/account`);
  await page.getByRole('heading', { name: 'E-mail address' }).waitFor();
  await page.locator('#email-change summary').click();
  await page.getByLabel('New address').fill(newEmail);
  await page.locator('#email-password').fill(newPassword);
  await page.screenshot({ path: join(shots, 'account-email.png'), fullPage: true });
  await page.getByRole('button', { name: 'Send the confirmation links' }).click();
  await page.locator('#account-done', { hasText: 'the address changes once both are opened' }).waitFor();

  step('5. the new address confirms: half-way');
  const toNew = linkIn(await waitForMail(maildir, newEmail, 'Confirm your new e-mail address'), 'http');
  await page.goto(local(toNew));
  await page.screenshot({ path: join(shots, 'confirm-email.png'), fullPage: true });
  await page.getByRole('button', { name: 'Confirm the new address' }).click();
  await page.getByRole('heading', { name: 'Half-way there' }).waitFor();
  const halfWay = true;

  step('6. the old address agrees: changed');
  const toOld = linkIn(
    await waitForMail(maildir, email, 'Confirm the change of your e-mail address'), 'http');
  await page.goto(local(toOld));
  await page.getByRole('button', { name: 'Agree to the change' }).click();
  await page.getByRole('heading', { name: 'Address changed' }).waitFor();
  const changed = true;

  step('7. /account shows the new, confirmed address');
  await page.goto(`${base}/account`);
  const accountEmail = (await page.locator('#email-address').textContent()).trim();
  const accountState = (await page.locator('#email-state').textContent()).trim();

  console.log(JSON.stringify({
    callback, resetDone, halfWay, changed, accountEmail, accountState, pageErrors, cspViolations,
  }));
} catch (e) {
  await page.screenshot({ path: join(shots, 'mail-failure.png'), fullPage: true })
    .catch(() => {});
  throw e;
} finally {
  await context.close();
}
