// Drives Latchkey's hosted login in Debian's headless Chromium with playwright-core.
// Inputs (environment): AUTHORIZE_URL, CALLBACK_PREFIX, LOGIN_EMAIL, LOGIN_PASSWORD,
// SCREENSHOT_DIR. Prints one JSON line: {"callback": "<redirect with code>", ...}.
import { env, launch } from './chromium.mjs';
import { join } from 'node:path';

const context = await launch();
try {
  const page = await context.newPage();
  const prefix = env('CALLBACK_PREFIX');
  let callback = null;
  // The relying party's callback is not served here: catch the browser's request to it.
  await page.route((url) => url.href.startsWith(prefix), async (route) => {
    callback = route.request().url();
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'relying party reached' });
  });

  await page.goto(env('AUTHORIZE_URL'));
  await page.getByRole('heading', { name: /Sign in/ }).waitFor();
  await page.screenshot({ path: join(env('SCREENSHOT_DIR'), 'login-page.png'), fullPage: true });

  // A wrong password first: the form comes back with the message next to the field.
  await page.getByLabel('Email').fill(env('LOGIN_EMAIL'));
  await page.getByLabel('Password').fill('definitely not the password');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  const wrongPasswordMessage = (await alert.textContent()).trim();
  await page.screenshot({ path: join(env('SCREENSHOT_DIR'), 'login-wrong-password.png'), fullPage: true });

  await page.getByLabel('Password').fill(env('LOGIN_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  await page.screenshot({ path: join(env('SCREENSHOT_DIR'), 'consent-page.png'), fullPage: true });
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((url) => url.href.startsWith(prefix));
  if (!callback) throw new Error('the relying party callback was never requested');
  console.log(JSON.stringify({ callback, wrongPasswordMessage }));
} finally {
  await context.close();
}
