// A person who is not a member of any lab a client serves signs in at that client in Debian's
// headless Chromium: Latchkey shows its refusal page and the relying party is never reached.
// Inputs (environment): AUTHORIZE_URL, CALLBACK_PREFIX, LOGIN_EMAIL, LOGIN_PASSWORD,
// SCREENSHOT_DIR. Prints one JSON line: {"heading", "message", "status", "callback"}.
import { env, launch } from './chromium.mjs';
import { join } from 'node:path';

const context = await launch();
try {
  const page = await context.newPage();
  const prefix = env('CALLBACK_PREFIX');
  let callback = null;
  await page.route((url) => url.href.startsWith(prefix), async (route) => {
    callback = route.request().url();
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'relying party reached' });
  });
  let status = null;
  page.on('response', (r) => { if (r.request().isNavigationRequest()) status = r.status(); });

  await page.goto(env('AUTHORIZE_URL'));
  await page.getByRole('heading', { name: /Sign in/ }).waitFor();
  await page.getByLabel('Email').fill(env('LOGIN_EMAIL'));
  await page.getByLabel('Password').fill(env('LOGIN_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const heading = page.getByRole('heading', { level: 1 });
  await page.waitForLoadState('load');
  await heading.filter({ hasNotText: /Sign in/ }).waitFor();
  await page.screenshot({ path: join(env('SCREENSHOT_DIR'), 'not-a-member.png'), fullPage: true });
  const message = (await page.locator('main').textContent()).replace(/\s+/g, ' ').trim();
  console.log(JSON.stringify({ heading: (await heading.textContent()).trim(), message, status, callback }));
} finally {
  await context.close();
}
