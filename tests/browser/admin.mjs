// Drives the admin console in Debian's headless Chromium with playwright-core, as a lab
// administrator would: signs in to /admin through the hosted login (a password alone is not
// enough: the console's enrolment page leads to setting up an authenticator app, whose code is
// computed here, then the console opens), creates a role carrying a
// feature and gives it to a member, grants that member a second feature directly, walks a
// destructive action to its confirmation page and cancels it, requires `mfa` with a grace
// period and reads the adoption chart before and after, filters the lab's audit log. Then it
// signs out of the console (and of Latchkey at /logout), and the member signs in through a
// relying party: the enrolment page appears and "Not now" returns the code.
// Along the way it checks keyboard and screen-reader basics on every console page: each form
// control has an accessible name (Chromium's accessibility tree), and Tab reaches the main
// buttons. Any Content-Security-Policy violation or page error fails the run.
// Inputs (environment): BASE_URL (http://localhost:PORT), LAB_ID, MEMBER_ID, ADMIN_EMAIL,
// MEMBER_EMAIL, INVITE_EMAIL, INVITE_LINK, LOGIN_PASSWORD (both people's), AUTHORIZE_URL, CALLBACK_PREFIX, ROLE, FEATURE,
// DIRECT_FEATURE, SCREENSHOT_DIR. Progress goes to stderr; stdout gets one JSON line.
import { join } from 'node:path';
import { env, launch } from './chromium.mjs';
import { totp } from './totp.mjs';

const WAIT = 20_000;
const step = (what) => console.error(`[admin.mjs] ${new Date().toISOString()} ${what}`);

const base = env('BASE_URL');
const lab = env('LAB_ID');
const memberId = env('MEMBER_ID');
const prefix = env('CALLBACK_PREFIX');
const shots = env('SCREENSHOT_DIR');
const password = env('LOGIN_PASSWORD');
const role = env('ROLE');
const feature = env('FEATURE');
const directFeature = env('DIRECT_FEATURE');

const context = await launch({ viewport: { width: 1100, height: 900 } });
context.setDefaultTimeout(WAIT);
context.setDefaultNavigationTimeout(WAIT);
const page = await context.newPage();
// The relying party's callback is not served: as in mfa.mjs, the browser's request for it
// (cross-site, to a port Chromium refuses) is what counts.
const callbacks = [];
page.on('request', (r) => {
  if (r.isNavigationRequest() && r.url().startsWith(prefix)) callbacks.push(r.url());
});
try {
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const cspViolations = [];
  await page.exposeFunction('latchkeyTestCspViolation', (text) => cspViolations.push(text));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.latchkeyTestCspViolation(
      `${e.effectiveDirective} blocked ${e.blockedURI} (from ${e.sourceFile}:${e.lineNumber})`));
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Accessibility.enable');


  // Keyboard and screen-reader basics of the page shown now. Every focusable control of
  // Chromium's accessibility tree must have a name; Tab from the top must reach each of
  // `mustReach` (element ids, or button texts).
  const unnamed = [];
  const unreached = [];
  let controlsChecked = 0;
  let tabStops = 0;
  const checkAccessibility = async (what, mustReach) => {
    const { nodes } = await cdp.send('Accessibility.getFullAXTree');
    const controls = ['textbox', 'searchbox', 'combobox', 'checkbox', 'radio', 'button',
      'link', 'spinbutton', 'listbox'];
    for (const n of nodes) {
      if (n.ignored || !controls.includes(n.role?.value)) continue;
      controlsChecked += 1;
      const name = (n.name?.value ?? '').trim();
      if (!name) unnamed.push(`${what}: a ${n.role.value} without a name`);
    }
    await page.evaluate(() => {
      document.activeElement?.blur();
      window.scrollTo(0, 0);
    });
    const reached = new Set();
    for (let i = 0; i < 120; i += 1) {
      await page.keyboard.press('Tab');
      const el = await page.evaluate(() => {
        const a = document.activeElement;
        return a && a !== document.body ? (a.id || a.textContent.trim()) : null;
      });
      if (el === null && i > 0) break;
      if (el) reached.add(el);
      if (el) tabStops += 1;
    }
    for (const m of mustReach) if (!reached.has(m)) unreached.push(`${what}: ${m}`);
  };
  const notice = async () => (await page.locator('#notice').textContent()).trim();
  const adoptionSummary = async () =>
    (await page.locator('#adoption-summary').textContent()).trim();
  const adoptionTable = async () => Object.fromEntries(await page.locator('#adoption tbody tr')
    .evaluateAll((rows) => rows.map((r) => [r.querySelector('th').textContent.trim(),
      Number(r.querySelector('td').textContent.trim())])));

  // 1. The console sends an unsigned browser through Latchkey's own sign-in; a lab
  // administrator of one lab lands on that lab.
  step('1. /admin, sign in as the lab administrator');
  await page.goto(`${base}/admin`);
  await page.waitForURL((u) => u.pathname === '/login');
  const loginHeading = (await page.getByRole('heading').first().textContent()).trim();
  await page.getByLabel('Email').fill(env('ADMIN_EMAIL'));
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  // Administration needs a second factor, which this administrator has not set up yet.
  await page.waitForURL((u) => u.pathname === '/admin/callback');
  const adminEnrolHeading = (await page.getByRole('heading', { level: 1 }).textContent()).trim();
  await page.screenshot({ path: join(shots, 'admin-enrol.png'), fullPage: true });
  await page.locator('#setup-totp').click();
  await page.getByRole('heading', { name: 'Set up an authenticator app' }).waitFor();
  const key = (await page.locator('#totp-key').textContent()).trim();
  await page.getByLabel('6-digit code').fill(totp(key));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  await page.goto(`${base}/admin`);
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}`);
  const adminLevel = (await page.locator('#admin-level').textContent()).trim();
  const labHeading = (await page.getByRole('heading', { level: 1 }).textContent()).trim();
  const signedInAs = (await page.locator('nav.console strong').textContent()).trim();
  const adoptionBefore = await adoptionSummary();
  await checkAccessibility('lab page',
    ['audit-link', 'invite', 'save-role', 'save-policy', 'Sign out']);
  await page.screenshot({ path: join(shots, 'admin-lab.png'), fullPage: true });

  // 2. A role carrying the feature.
  step(`2. create the role ${role} with ${feature}`);
  await page.getByLabel('Role name').fill(role);
  await page.getByLabel('Features, separated by spaces or commas').fill(feature);
  await page.getByRole('button', { name: 'Save role' }).click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}`);
  const roleNotice = await notice();
  const roleRow = (await page.locator('#roles tbody tr', { hasText: role }).textContent())
    .replace(/\s+/g, ' ').trim();

  // 2b. An invitation: recorded without a link (a lab administrator must not hold it); the
  // person opens the link a system administrator sent them (INVITE_LINK, issued by the test).
  step('2b. invite someone with the role');
  await page.getByLabel('Invite by email').fill(env('INVITE_EMAIL'));
  await page.locator('fieldset', { hasText: 'Roles for the invited person' })
    .getByRole('checkbox', { name: role }).check();
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  await page.getByRole('heading', { name: `Invitation for ${env('INVITE_EMAIL')}` }).waitFor();
  const inviteLinksShown = await page.getByLabel('Invitation link').count();
  const inviteNote = (await page.locator('#invitation-recorded').textContent())
    .replace(/\s+/g, ' ').trim();
  await checkAccessibility('invitation page', []);
  await page.screenshot({ path: join(shots, 'admin-invitation.png'), fullPage: true });
  await page.goto(env('INVITE_LINK'));
  const invitePageHeading = (await page.getByRole('heading', { level: 1 }).textContent()).trim();
  await page.screenshot({ path: join(shots, 'invite-page.png'), fullPage: true });
  await page.goto(`${base}/admin/labs/${lab}`);
  const openInvitations = (await page.locator('section[aria-labelledby="invitations-h"] li')
    .allTextContents()).map((s) => s.replace(/\s+/g, ' ').trim());

  // 3. The member: the role, and a feature granted to them alone.
  step('3. the member page: give the role, grant a feature directly');
  await page.locator(`#members a[href$="/members/${memberId}"]`).click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}/members/${memberId}`);
  await checkAccessibility('member page',
    ['save-roles', 'save-grant', 'end-sessions', 'reset-attempts', 'reset-factors', 'disable',
      'remove-member']);
  await page.getByRole('checkbox', { name: role }).check();
  await page.getByRole('button', { name: 'Save roles' }).click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}/members/${memberId}`);
  const rolesNotice = await notice();
  await page.getByLabel('Feature', { exact: true }).fill(directFeature);
  await page.getByRole('radio', { name: /^Allow/ }).check();
  await page.getByRole('button', { name: 'Save grant' }).click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}/members/${memberId}`);
  const grantNotice = await notice();
  const memberFeatures = (await page.locator('#member-features').textContent()).trim()
    .split(/\s+/);
  const overrides = (await page.locator('#overrides li').allTextContents())
    .map((s) => s.replace(/\s+/g, ' ').trim());
  await page.screenshot({ path: join(shots, 'admin-member.png'), fullPage: true });

  // 4. A destructive action asks first; cancelling changes nothing.
  step('4. reset factors: the confirmation page, then cancel');
  await page.locator('#reset-factors').click();
  await page.locator('#confirm').waitFor();
  const confirmPath = new URL(page.url()).pathname;
  const confirmQuestion = (await page.getByRole('heading', { level: 1 }).textContent()).trim();
  const confirmButton = (await page.locator('#confirm').textContent()).trim();
  await checkAccessibility('confirmation page', ['confirm', 'cancel']);
  await page.screenshot({ path: join(shots, 'admin-confirm.png'), fullPage: true });
  await page.locator('#cancel').click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}/members/${memberId}`);
  const noticeAfterCancel = await page.locator('#notice').count();
  // Resetting sign-in attempts only gives back: it runs at once.
  await page.locator('#reset-attempts').click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}/members/${memberId}`);
  const attemptsNotice = await notice();

  // 5. The lab's policy: mfa with a grace period; the adoption chart follows.
  step('5. require mfa with 7 days of grace');
  await page.getByRole('link', { name: /^← / }).click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}`);
  await page.getByLabel('Minimum level', { exact: true }).selectOption('mfa');
  await page.getByLabel('Days members may still enrol (optional)').fill('7');
  await page.getByRole('button', { name: 'Save policy' }).click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}`);
  const policyNotice = await notice();
  const policyText = (await page.locator('section[aria-labelledby="policy-h"] > p').first()
    .textContent()).replace(/\s+/g, ' ').trim();
  const adoptionAfter = await adoptionSummary();
  const adoptionRows = await adoptionTable();
  const chartBars = await page.locator('figure.chart svg rect').count();
  const memberRow = (await page.locator('#members tbody tr', { hasText: env('MEMBER_EMAIL') })
    .textContent()).replace(/\s+/g, ' ').trim();
  await page.locator('section[aria-labelledby="policy-h"]')
    .screenshot({ path: join(shots, 'admin-policy-adoption.png') });

  // 6. The audit log, filtered by action.
  step('6. the audit log, filtered by member. then role.');
  await page.locator('#audit-link').click();
  await page.waitForURL((u) => u.pathname === `/admin/labs/${lab}/audit`);
  const auditAll = await page.locator('#audit tbody tr').count();
  await checkAccessibility('audit page', ['f-action', 'f-actor', 'f-since', 'f-until', 'filter']);
  const auditActions = async (prefixText) => {
    await page.getByLabel('Action starts with').fill(prefixText);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL((u) => u.searchParams.get('action') === prefixText);
    return page.locator('#audit tbody tr td:nth-child(3)').allTextContents();
  };
  const auditRole = await auditActions('role.');
  const auditMember = await auditActions('member.');
  await page.screenshot({ path: join(shots, 'admin-audit.png'), fullPage: true });
  // A date filter that is not a date is refused on a page, not with an error.
  await page.getByLabel('From (YYYY-MM-DD)').fill('yesterday');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL((u) => u.searchParams.get('since') === 'yesterday');
  const badDate = (await page.getByRole('heading', { level: 1 }).textContent()).trim();

  // 7. Out of the console, then out of Latchkey.
  step('7. sign out of the console and of Latchkey');
  await page.goto(`${base}/admin/labs/${lab}`);
  await page.locator('nav.console').getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL((u) => u.pathname === '/logout');
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForLoadState('load');
  await page.goto(`${base}/admin`);
  await page.waitForURL((u) => u.pathname === '/login');
  const consoleAfterSignOut = new URL(page.url()).pathname;

  // 8. The member signs in to a relying party: the lab now asks for a second factor.
  step('8. the member signs in: enrolment, then "Not now"');
  await page.goto(env('AUTHORIZE_URL'));
  await page.waitForURL((u) => u.pathname === '/login');
  await page.getByLabel('Email').fill(env('MEMBER_EMAIL'));
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/login/enrol');
  const enrolHeading = (await page.getByRole('heading', { level: 1 }).textContent()).trim();
  const enrolText = (await page.locator('main').textContent()).replace(/\s+/g, ' ').trim();
  await page.screenshot({ path: join(shots, 'member-enrol.png'), fullPage: true });
  await page.getByRole('button', { name: 'Not now' }).click();
  const deadline = Date.now() + WAIT;
  while (!callbacks.length) {
    if (Date.now() > deadline) throw new Error(`no callback (at ${page.url()})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.waitForLoadState('load').catch(() => {});

  console.log(JSON.stringify({
    loginHeading, adminEnrolHeading, adminLevel, labHeading, signedInAs, adoptionBefore, roleNotice, roleRow, rolesNotice,
    grantNotice, memberFeatures, overrides, confirmPath, confirmQuestion, confirmButton,
    noticeAfterCancel, attemptsNotice, policyNotice, policyText, adoptionAfter, adoptionRows, chartBars,
    memberRow, auditAll, auditRole, auditMember, badDate, consoleAfterSignOut, enrolHeading,
    enrolText, callback: callbacks[0], unnamed, unreached, controlsChecked, tabStops,
    inviteLinksShown, inviteNote, invitePageHeading, openInvitations, pageErrors, cspViolations,
  }));
} catch (e) {
  console.error(`[admin.mjs] failed at ${page.url()} (relying-party callbacks: ${callbacks.join(" ") || "none"})`);
  await page.screenshot({ path: join(shots, 'admin-failure.png'), fullPage: true })
    .catch(() => {});
  throw e;
} finally {
  await context.close();
}
