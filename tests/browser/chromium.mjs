// Debian's headless Chromium with a fresh profile, as every browser script starts it, the
// environment reader the scripts share, and the password sign-in of the relying-party scripts.
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

// A persistent context in a new user-data directory (`CHROMIUM` overrides the executable);
// `options`: more of playwright's launch options (a viewport).
export function launch(options = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'latchkey-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    ...options,
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

// Signs `LOGIN_EMAIL` in with `LOGIN_PASSWORD` on Latchkey's hosted login page at `url` in a
// fresh Chromium, and returns the URL of the relying party's callback (`REDIRECT_URI`, which
// the browser never really loads).
export async function signInAt(url) {
  const context = await launch();
  let callback = null;
  try {
    const page = await context.newPage();
    const prefix = env('REDIRECT_URI');
    await page.route((u) => u.href.startsWith(prefix), async (route) => {
      callback = route.request().url();
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'relying party reached' });
    });
    await page.goto(url);
    await page.getByLabel('Email').fill(env('LOGIN_EMAIL'));
    await page.getByLabel('Password').fill(env('LOGIN_PASSWORD'));
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((u) => u.href.startsWith(prefix));
    if (!callback) throw new Error('the relying party callback was never requested');
  } finally {
    await context.close();
  }
  return callback;
}
