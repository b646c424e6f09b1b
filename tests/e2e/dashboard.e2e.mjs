// Drives the gateway's dashboard in Debian's headless Chromium with
// playwright-core. Started by dashboard_e2e_test.cc (which runs Kamailio and
// the gateway); by hand:
//
//   node tests/e2e/dashboard.e2e.mjs --modules=DIR/node_modules \
//     --url=http://127.0.0.1:3552/ --scenario=registration --out=/tmp/shots \
//     --server=127.0.0.1:5060
//
// Scenarios: `registration` (both accounts registered; log out, log in by
// keyboard, a wrong password, resume after a disconnect, phone width) and
// `calls` (dial, incoming, answer, DTMF from the keypad both ways, switch
// between two calls, hang up).
// Exit status: 0 passed, 1 failed, 77 skipped (calls not supported yet).
// Every step prints one line; screenshots go to --out.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, ...rest] = arg.replace(/^--/, '').split('=');
    return [key, rest.join('=')];
  }),
);
const { url, scenario = 'registration', out = tmpdir(), server = '127.0.0.1:5060' } = args;
if (!url || !args.modules) {
  console.error('usage: dashboard.e2e.mjs --modules=NODE_MODULES --url=URL [--scenario=] [--out=]');
  process.exit(2);
}
const { chromium } = createRequire(join(args.modules, 'noop.js'))('playwright-core');

const TIMEOUT = 20000; // per wait: generous for a loaded 2-core machine
const SKIP = 77;
class Skip extends Error {}

function step(name) {
  console.log(`STEP ${scenario}: ${name}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(out, `${scenario}-${name}.png`), fullPage: true });
}

const account = (page, name) => page.locator(`article.account[data-account="${name}"]`);

async function waitForRegistration(page, name, kind) {
  await page
    .locator(`article.account[data-account="${name}"][data-registration="${kind}"]`)
    .waitFor({ timeout: TIMEOUT });
}

async function waitForConnected(page) {
  await page.locator('#connection[data-state="open"]').waitFor({ timeout: TIMEOUT });
}

async function openLogin(page, name) {
  const details = account(page, name).locator('details.login');
  if (!(await details.evaluate((d) => d.open))) {
    await details.locator('summary').click();
  }
}

// Logs in through the form, by keyboard only.
async function loginByKeyboard(page, name, user, pass) {
  await openLogin(page, name);
  const card = account(page, name);
  await card.getByLabel('User', { exact: true }).fill('');
  await card.getByLabel('User', { exact: true }).focus();
  await page.keyboard.type(user);
  await page.keyboard.press('Tab');
  await page.keyboard.type(pass);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Control+A');
  await page.keyboard.type(server);
  await page.keyboard.press('Enter');
}

// At 390 px the page must not scroll sideways; a screenshot of it.
async function atPhoneWidth(page, name) {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(100); // one layout pass
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  if (overflow > 0) throw new Error(`the page scrolls sideways by ${overflow}px at 390px`);
  await shot(page, name);
}

async function assertLogHas(page, text) {
  await page
    .locator('#log .log-entry', { hasText: text })
    .first()
    .waitFor({ timeout: TIMEOUT });
}

// ------------------------------------------------------------ registration

async function registration(context) {
  const page = await context.newPage();
  step('load the dashboard');
  await page.goto(url);
  await waitForConnected(page);
  for (const name of ['account-1', 'account-2']) await waitForRegistration(page, name, 'registered');
  const label = await account(page, 'account-1').locator('.reg-text').textContent();
  if (label !== 'Registered') throw new Error(`registration label is "${label}"`);
  // Every input has a label (keyboard and screen reader users).
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select')]
      .filter((input) => input.labels === null || input.labels.length === 0)
      .map((input) => input.outerHTML),
  );
  if (unlabelled.length) throw new Error(`inputs without a label: ${unlabelled.join(', ')}`);
  await shot(page, '01-registered');

  step('log account-2 out');
  await openLogin(page, 'account-2');
  await account(page, 'account-2').getByRole('button', { name: 'Log out' }).click();
  await waitForRegistration(page, 'account-2', 'logged-out');
  await assertLogHas(page, 'Logged out');

  step('log account-2 in with the keyboard');
  await loginByKeyboard(page, 'account-2', '3002', 'sip3002');
  await waitForRegistration(page, 'account-2', 'registered');
  const facts = await account(page, 'account-2').locator('.fact-user').textContent();
  if (facts !== '3002') throw new Error(`user shown as "${facts}"`);

  step('a wrong password shows the failure');
  await loginByKeyboard(page, 'account-2', '3002', 'wrong-password');
  await waitForRegistration(page, 'account-2', 'failed');
  await account(page, 'account-2')
    .locator('.account-error', { hasText: 'Failed to log in to account: account-2' })
    .waitFor({ timeout: TIMEOUT });
  const failed = await account(page, 'account-2').locator('.reg-text').textContent();
  if (!/^Failed: 40[13]/.test(failed)) throw new Error(`failure shown as "${failed}"`);
  await shot(page, '02-login-failed');

  step('the log filters to errors');
  for (const kind of ['registration', 'call', 'reply', 'connection']) {
    await page.locator(`#log-filters input[value="${kind}"]`).uncheck();
  }
  const categories = await page.locator('#log .log-entry').evaluateAll((items) =>
    items.map((item) => item.dataset.category),
  );
  if (!categories.length || categories.some((c) => c !== 'error')) {
    throw new Error(`error filter shows ${JSON.stringify(categories)}`);
  }
  for (const kind of ['registration', 'call', 'reply', 'connection']) {
    await page.locator(`#log-filters input[value="${kind}"]`).check();
  }

  step('log account-2 in again');
  await loginByKeyboard(page, 'account-2', '3002', 'sip3002');
  await waitForRegistration(page, 'account-2', 'registered');

  step('events missed while disconnected are replayed on reconnect');
  await page.evaluate(() => window.telestra.connection.stop());
  await page.locator('#connection[data-state="stopped"]').waitFor({ timeout: TIMEOUT });
  const other = await context.newPage();
  await other.goto(url);
  await waitForConnected(other);
  await openLogin(other, 'account-1');
  await account(other, 'account-1').getByRole('button', { name: 'Log out' }).click();
  await waitForRegistration(other, 'account-1', 'logged-out');
  await other.close();
  // The first page still shows the old state until it reconnects.
  await waitForRegistration(page, 'account-1', 'registered');
  await page.evaluate(() => window.telestra.connection.start());
  await waitForConnected(page);
  await waitForRegistration(page, 'account-1', 'logged-out');
  await assertLogHas(page, 'missed events replayed');
  await loginByKeyboard(page, 'account-1', '3001', 'sip3001');
  await waitForRegistration(page, 'account-1', 'registered');

  step('the connection drops and comes back by itself');
  await page.evaluate(() => window.telestra.connection.socket.close());
  await page.locator('#connection:not([data-state="open"])').waitFor({ timeout: TIMEOUT });
  await waitForConnected(page);
  await assertLogHas(page, 'connected (resumed)');

  step('phone width');
  await atPhoneWidth(page, '03-phone');
}

// ------------------------------------------------------------------- calls

async function dial(page, from, number) {
  const card = account(page, from);
  await card.getByLabel(`Number to call from ${from}`).fill(number);
  await card.getByLabel(`Number to call from ${from}`).press('Enter');
}

const callRows = (page, name) => account(page, name).locator('li.call');

async function waitForCalls(page, name, count) {
  await page.waitForFunction(
    ([n, c]) =>
      document.querySelectorAll(`article.account[data-account="${n}"] li.call`).length === c,
    [name, count],
    { timeout: TIMEOUT },
  );
}

async function waitForCallState(page, name, callId, state) {
  await account(page, name)
    .locator(`li.call[data-call-id="${callId}"][data-state="${state}"]`)
    .waitFor({ timeout: TIMEOUT });
}

const callRow = (page, name, callId) => account(page, name).locator(`li.call[data-call-id="${callId}"]`);
const key = (row, digit) => row.locator(`.keypad .key[data-digit="${digit}"]`);

// The page's WebSocket messages, both ways, parsed.
function recordFrames(page) {
  const frames = { sent: [], received: [] };
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => frames.sent.push(JSON.parse(payload)));
    socket.on('framereceived', ({ payload }) => frames.received.push(JSON.parse(payload)));
  });
  return frames;
}

// Polls `condition` (which may be async) until it holds; `what` (a string,
// or a function that describes the last state seen) names it in the error.
async function waitUntil(condition, what) {
  const deadline = Date.now() + TIMEOUT;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(typeof what === 'function' ? what() : `timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function expectText(locator, text, what) {
  let shown;
  await waitUntil(
    async () => (shown = await locator.textContent()) === text,
    () => `${what}: "${shown}", not "${text}"`,
  );
}

// The send-dtmf commands the page sent for `digits` on a call, one per
// digit, each answered by dtmf-sent.
async function expectDtmfSent(frames, name, callId, digits) {
  const commands = () =>
    frames.sent.filter((c) => c.cmd === 'send-dtmf' && c.account === name && c.call_id === Number(callId));
  await waitUntil(() => commands().length >= digits.length, `${digits.length} send-dtmf`);
  const sent = commands().slice(-digits.length);
  const asked = sent.map((c) => c.digits).join('');
  if (asked !== digits) throw new Error(`send-dtmf asked for "${asked}", not "${digits}"`);
  for (const command of sent) {
    await waitUntil(
      () => frames.received.some((e) => e.event === 'dtmf-sent' && e.token === command.token),
      `dtmf-sent for ${JSON.stringify(command)}`,
    );
    const reply = frames.received.find((e) => e.token === command.token);
    if (reply.event !== 'dtmf-sent' || reply.digits !== command.digits || reply.call_id !== Number(callId)) {
      throw new Error(`send-dtmf ${JSON.stringify(command)} answered ${JSON.stringify(reply)}`);
    }
  }
}

// The digits a call's row shows as received, and the method of each.
async function receivedDigits(row) {
  return row.locator('.dtmf-received .digit').evaluateAll((items) =>
    items.map((item) => ({ digit: item.textContent, method: item.dataset.method, title: item.title })),
  );
}

async function calls(context) {
  const page = await context.newPage();
  const frames = recordFrames(page);
  step('load the dashboard');
  await page.goto(url);
  await waitForConnected(page);
  for (const name of ['account-1', 'account-2']) await waitForRegistration(page, name, 'registered');

  step('account-1 dials 3002');
  await dial(page, 'account-1', '3002');
  const notSupported = account(page, 'account-1').locator('.account-error', {
    hasText: 'Calls are not supported yet',
  });
  const outgoing = callRows(page, 'account-1').first();
  await Promise.race([
    outgoing.waitFor({ timeout: TIMEOUT }),
    notSupported.waitFor({ timeout: TIMEOUT }).then(() => {
      throw new Skip('make-call: Calls are not supported yet');
    }),
  ]);

  step('account-2 sees the incoming call and answers it');
  const incoming = callRows(page, 'account-2').first();
  await incoming.waitFor({ timeout: TIMEOUT });
  await account(page, 'account-2').locator('li.call[data-state="incoming"]').waitFor();
  const caller = await incoming.locator('.call-peer').textContent();
  if (!caller.includes('3001')) throw new Error(`incoming call from "${caller}"`);
  await shot(page, '01-incoming');
  await incoming.getByRole('button', { name: /^Answer/ }).click();
  const firstOut = await outgoing.getAttribute('data-call-id');
  const firstIn = await incoming.getAttribute('data-call-id');
  await waitForCallState(page, 'account-1', firstOut, 'active');
  await waitForCallState(page, 'account-2', firstIn, 'active');
  for (const [name, id] of [['account-1', firstOut], ['account-2', firstIn]]) {
    await callRow(page, name, id).locator('.keypad').waitFor({ state: 'visible' });
  }
  // The duration runs.
  await page.waitForFunction(
    (id) => {
      const row = document.querySelector(`article.account[data-account="account-1"] li.call[data-call-id="${id}"]`);
      return row && row.querySelector('.call-duration').textContent !== '0:00';
    },
    firstOut,
    { timeout: TIMEOUT },
  );

  step('keypad keys clicked and typed send DTMF; the far end shows the digits');
  const out = callRow(page, 'account-1', firstOut);
  for (const digit of ['1', '2', '#']) await key(out, digit).click();
  await page.keyboard.type('4*d'); // the keypad has the focus; d is D
  await expectText(out.locator('.dtmf-sent-digits'), '12#4*D', 'digits sent shown');
  await expectText(out.locator('.dtmf-sending'), '', 'digits still being sent');
  await expectDtmfSent(frames, 'account-1', firstOut, '12#4*D');
  const far = callRow(page, 'account-2', firstIn);
  await expectText(far.locator('.dtmf-received'), '12#4*D', 'digits received by account-2');
  const received = await receivedDigits(far);
  if (received.some((d) => d.method !== 'rfc4733' || !d.title.startsWith('RFC 4733'))) {
    throw new Error(`digits received ${JSON.stringify(received)}: not all by RFC 4733`);
  }
  await expectText(far.locator('.dtmf-method'), 'via RFC\u00a04733', 'method of the newest digit');
  await expectText(out.locator('.dtmf-received'), '', 'digits received by account-1');
  await assertLogHas(page, `DTMF D received on call ${firstIn}`);
  await shot(page, '02-dtmf');

  step('a second call: no keypad while it rings; DTMF to it fails');
  await dial(page, 'account-1', '3002');
  await waitForCalls(page, 'account-1', 2);
  await waitForCalls(page, 'account-2', 2);
  const secondIn = await callRows(page, 'account-2')
    .locator(':scope[data-state="incoming"]')
    .getAttribute('data-call-id');
  const ringing = callRow(page, 'account-2', secondIn);
  if (await ringing.locator('.call-dtmf').isVisible()) throw new Error('a keypad on a ringing call');
  // A key that is not offered, pressed anyway: the gateway's fail is shown.
  await key(ringing, '5').evaluate((button) => button.click());
  await account(page, 'account-2')
    .locator('.account-error', { hasText: `Call ${secondIn} is not established` })
    .waitFor({ timeout: TIMEOUT });
  await assertLogHas(page, `Call ${secondIn} is not established`);
  await expectText(ringing.locator('.dtmf-sending'), '', 'a refused digit still being sent');

  step('the second call answered');
  await account(page, 'account-2')
    .locator(`li.call[data-call-id="${secondIn}"]`)
    .getByRole('button', { name: /^Answer/ })
    .click();
  const secondOut = await callRows(page, 'account-1')
    .locator(`:scope:not([data-call-id="${firstOut}"])`)
    .getAttribute('data-call-id');
  await waitForCallState(page, 'account-1', secondOut, 'active');

  step('switch to the second call: the first is held');
  await account(page, 'account-1')
    .locator(`li.call[data-call-id="${secondOut}"]`)
    .getByRole('button', { name: /^Switch to/ })
    .click();
  await waitForCallState(page, 'account-1', firstOut, 'held');
  await waitForCallState(page, 'account-1', secondOut, 'active');
  await waitForCallState(page, 'account-2', firstIn, 'remote-held');
  if (!(await account(page, 'account-2').locator('.account-error').isHidden())) {
    throw new Error('the fail of the refused digit is still shown after the answer');
  }

  step('DTMF on held calls: the held far end sends by SIP INFO');
  for (const [name, id] of [['account-1', firstOut], ['account-2', firstIn]]) {
    await callRow(page, name, id).locator('.keypad').waitFor({ state: 'visible' });
  }
  await key(far, '9').click();
  await expectDtmfSent(frames, 'account-2', firstIn, '9');
  await expectText(far.locator('.dtmf-sent-digits'), '9', 'digits sent by account-2');
  await expectText(out.locator('.dtmf-received'), '9', 'digits received by account-1');
  const [byInfo] = await receivedDigits(out);
  if (byInfo.method !== 'info' || !byInfo.title.startsWith('SIP INFO')) {
    throw new Error(`digit received on the held call ${JSON.stringify(byInfo)}: not by SIP INFO`);
  }
  await shot(page, '03-switched');

  step('phone width with calls and keypads');
  await atPhoneWidth(page, '04-phone');
  await page.setViewportSize({ width: 1280, height: 900 });

  step('switch back');
  await account(page, 'account-1')
    .locator(`li.call[data-call-id="${firstOut}"]`)
    .getByRole('button', { name: /^Switch to/ })
    .click();
  await waitForCallState(page, 'account-1', firstOut, 'active');
  await waitForCallState(page, 'account-1', secondOut, 'held');

  step('hang up both');
  for (const id of [firstOut, secondOut]) {
    await account(page, 'account-1')
      .locator(`li.call[data-call-id="${id}"]`)
      .getByRole('button', { name: /^Hang up/ })
      .click();
  }
  await waitForCalls(page, 'account-1', 0);
  await waitForCalls(page, 'account-2', 0);
  await assertLogHas(page, 'ended');
  await shot(page, '05-ended');
}

// -------------------------------------------------------------------- main

const scenarios = { registration, calls };
if (!scenarios[scenario]) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'telestra-chromium-'));
let context;
let status = 0;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60000,
  });
  context.setDefaultTimeout(TIMEOUT);
  const problems = [];
  context.on('weberror', (error) => problems.push(`page error: ${error.error().message}`));
  context.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  await scenarios[scenario](context);
  if (problems.length) throw new Error(problems.join('\n'));
  console.log(`RESULT ${scenario}: passed`);
} catch (error) {
  if (error instanceof Skip) {
    console.log(`RESULT ${scenario}: skipped (${error.message})`);
    status = SKIP;
  } else {
    console.error(`RESULT ${scenario}: FAILED\n${error.stack || error}`);
    status = 1;
    if (context) {
      for (const page of context.pages()) {
        await page.screenshot({ path: join(out, `${scenario}-failure.png`), fullPage: true }).catch(() => {});
      }
    }
  }
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
