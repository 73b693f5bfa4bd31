// Debian's headless Chromium with a fresh profile, as every browser script starts it, and the
// environment reader the scripts share.
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
