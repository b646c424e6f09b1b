// Drives the gateway's dashboard in Debian's headless Chromium with
// playwright-core. Started by dashboard_e2e_test.cc (which runs Kamailio and
// the gateway); by hand:
//
//   node tests/e2e/dashboard.e2e.mjs --modules=DIR/node_modules \
//     --url=http://127.0.0.1:3552/ --scenario=registration --out=/tmp/shots \
//     --server=127.0.0.1:5060
//
// Scenarios: `registration` (both accounts registered; log out, log in by
// keyboard, a wrong password, resume after a disconnect, phone width),
// `calls` (dial, incoming, answer, DTMF from the keypad both ways, switch
// between two calls, hang up), `transfer` (three accounts: a failed
// blind transfer, a blind one, an attended one) and `audio` (Listen and
// Talk: Chromium's fake microphone plays a 700 Hz tone, generated here,
// into account-1's call; account-2 sends `audio = tone:440`, which the
// page's AnalyserNode finds, and records with `record = --record`, where
// the 700 Hz tone must be).
// Exit status: 0 passed, 1 failed, 77 skipped (calls not supported yet).
// Every step prints one line; screenshots go to --out.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
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
  // The gateway reports each account's user, server and registration's
  // expiry (before this page logged anything in).
  const card = account(page, 'account-1');
  await expectText(card.locator('.fact-user'), '3001', "account-1's user");
  await expectText(card.locator('.fact-server'), server, "account-1's server");
  await waitUntil(
    async () => /^\d\d:\d\d:\d\d$/.test(await card.locator('.fact-expires').textContent()),
    "account-1's registration expiry",
  );
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

// The page's WebSocket messages (of /ws; /ws/audio streams are not JSON),
// both ways, parsed.
function recordFrames(page) {
  const frames = { sent: [], received: [] };
  page.on('websocket', (socket) => {
    if (new URL(socket.url()).pathname !== '/ws') return;
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

  step("each call shows its codec, its quality and the far end's URI");
  for (const [name, id] of [['account-1', firstOut], ['account-2', firstIn]]) {
    const row = callRow(page, name, id);
    await expectText(row.locator('.call-codec'), 'PCMU', `codec of ${name}'s call`);
    let quality = '';
    await waitUntil(
      async () => /^MOS \d\.\d\d · loss \d+\.\d % · jitter \d+\.\d ms/.test(
        (quality = await row.locator('.call-quality').textContent()),
      ),
      () => `quality of ${name}'s call: "${quality}"`,
    );
    console.log(`  ${name} call ${id}: ${await row.locator('.call-codec').textContent()} ${quality}`);
  }
  const peerTitle = await callRow(page, 'account-1', firstOut).locator('.call-peer').getAttribute('title');
  if (!/^sip:3002@/.test(peerTitle) || !peerTitle.includes('\nCall-ID ')) {
    throw new Error(`the far end's URI and Call-ID: "${peerTitle}"`);
  }

  step("durations come from the gateway's answer time: a reload does not reset them");
  const seconds = (text) => text.split(':').reduce((total, part) => total * 60 + Number(part), 0);
  const durationOf = async () =>
    seconds(await callRow(page, 'account-1', firstOut).locator('.call-duration').textContent());
  await waitUntil(async () => (await durationOf()) >= 3, 'a duration of 3 s');
  // The new page numbers its tokens from w1 again: only its frames count.
  frames.sent.length = 0;
  frames.received.length = 0;
  await page.reload();
  await waitForConnected(page);
  await callRow(page, 'account-1', firstOut).waitFor({ timeout: TIMEOUT });
  const afterReload = await durationOf();
  if (afterReload < 3) throw new Error(`the duration restarted at ${afterReload} s after a reload`);
  await callRow(page, 'account-1', firstOut).locator('.keypad').waitFor({ state: 'visible' });

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

// ---------------------------------------------------------------- transfer

// Dials `number` from `from` (Skip when the gateway has no calls yet); the
// id of the new call.
async function dialNewCall(page, from, number) {
  const before = await callRows(page, from).evaluateAll((rows) => rows.map((r) => r.dataset.callId));
  await dial(page, from, number);
  const fresh = account(page, from).locator(
    before.length ? `li.call${before.map((id) => `:not([data-call-id="${id}"])`).join('')}` : 'li.call',
  );
  const notSupported = account(page, from).locator('.account-error', {
    hasText: 'Calls are not supported yet',
  });
  await Promise.race([
    fresh.waitFor({ timeout: TIMEOUT }),
    notSupported.waitFor({ timeout: TIMEOUT }).then(() => {
      throw new Skip('make-call: Calls are not supported yet');
    }),
  ]);
  return fresh.getAttribute('data-call-id');
}

// Answers the one incoming call of `name` (from `caller`); its id.
async function answerIncoming(page, name, caller) {
  const row = callRows(page, name).locator(':scope[data-state="incoming"]');
  await row.waitFor({ timeout: TIMEOUT });
  const peer = await row.locator('.call-peer').textContent();
  if (!peer.includes(caller)) throw new Error(`${name}: incoming call from "${peer}", not ${caller}`);
  const id = await row.getAttribute('data-call-id');
  await row.getByRole('button', { name: /^Answer/ }).click();
  await waitForCallState(page, name, id, 'active');
  return id;
}

// The ids of the calls an account's card shows.
async function callIds(page, name) {
  return callRows(page, name).evaluateAll((rows) => rows.map((r) => r.dataset.callId));
}

async function transfer(context) {
  const page = await context.newPage();
  const frames = recordFrames(page);
  step('load the dashboard');
  await page.goto(url);
  await waitForConnected(page);
  for (const name of ['account-1', 'account-2', 'account-3']) {
    await waitForRegistration(page, name, 'registered');
  }

  step('account-1 calls account-2');
  const a1 = await dialNewCall(page, 'account-1', '3002');
  const a2 = await answerIncoming(page, 'account-2', '3001');
  await waitForCallState(page, 'account-1', a1, 'active');

  step('the Transfer form: a number, no other call to transfer to');
  const row1 = callRow(page, 'account-1', a1);
  const toggle = row1.getByRole('button', { name: 'Transfer call with 3002' });
  if ((await toggle.getAttribute('aria-expanded')) !== 'false') throw new Error('transfer form open at first');
  await toggle.click();
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') throw new Error('aria-expanded not set');
  const number = row1.getByLabel('Transfer call with 3002 to number');
  await number.waitFor({ state: 'visible' });
  if (!(await number.evaluate((input) => input === document.activeElement))) {
    throw new Error('the number field does not have the focus when the form opens');
  }
  if (await row1.locator('.transfer-calls').isVisible()) throw new Error('attended choice without another call');
  // Escape closes it, the focus back on the toggle.
  await page.keyboard.press('Escape');
  await row1.locator('.transfer-form').waitFor({ state: 'hidden' });
  if (!(await toggle.evaluate((button) => button === document.activeElement))) {
    throw new Error('the focus is not back on Transfer after Escape');
  }

  step('a blind transfer to a number nobody registered fails; the call stays');
  await page.keyboard.press('Enter'); // opens the form again
  await number.fill('3007');
  await number.press('Enter');
  // Sent: the form closes, the focus back on Transfer (which does nothing
  // while the transfer is under way).
  await row1.locator('.transfer-form').waitFor({ state: 'hidden' });
  if (!(await toggle.evaluate((button) => button === document.activeElement))) {
    throw new Error('the focus is not on Transfer after sending it');
  }
  const failure = account(page, 'account-1').locator('.account-error', {
    hasText: new RegExp(`^Transfer of call ${a1} failed: (480|404) `),
  });
  await failure.waitFor({ timeout: TIMEOUT });
  await expectText(
    row1.locator('.call-transfer-status'),
    (await failure.textContent()).replace(`Transfer of call ${a1} failed`, 'Transfer to 3007 failed'),
    'the failed transfer on the call',
  );
  await assertLogHas(page, `Transfer of call ${a1} failed`);
  // The transferee tried: it started a call to 3007 for call a2, which failed.
  const started = frames.received.find((e) => e.event === 'call-started' && e.account === 'account-2');
  if (!started || started.num !== '3007' || started.transferred_from !== Number(a2)) {
    throw new Error(`call-started for 3007: ${JSON.stringify(started)}`);
  }
  const refer = frames.sent.find((c) => c.cmd === 'transfer-call');
  if (refer.account !== 'account-1' || refer.call_id !== Number(a1) || refer.num !== '3007' || 'to_call_id' in refer) {
    throw new Error(`transfer-call sent as ${JSON.stringify(refer)}`);
  }
  await waitForCalls(page, 'account-2', 1);
  await waitForCallState(page, 'account-1', a1, 'active');
  await waitForCallState(page, 'account-2', a2, 'active');
  await shot(page, '01-transfer-failed');

  step('a blind transfer to account-3: it rings there, the call shows the progress');
  await toggle.click();
  await number.fill('3003');
  await row1.getByRole('button', { name: 'Transfer', exact: true }).click();
  // account-2 (the transferee) calls 3003 by itself...
  const transferee = account(page, 'account-2').locator('li.call', { hasText: `transferred from call ${a2}` });
  await transferee.waitFor({ timeout: TIMEOUT });
  const a2to3 = await transferee.getAttribute('data-call-id');
  if ((await transferee.locator('.call-peer').textContent()) !== '3003') throw new Error('transferee calls the wrong number');
  await expectText(
    callRow(page, 'account-2', a2).locator('.call-referred-to'),
    `the far end transfers us to 3003 (call ${a2to3})`,
    'the transferred call on account-2',
  );
  // ... account-3 rings, and account-1's call says so.
  await callRows(page, 'account-3').locator(':scope[data-state="incoming"]').waitFor({ timeout: TIMEOUT });
  await expectText(row1.locator('.call-transfer-status'), 'Transfer to 3003: 180 Ringing', 'transfer progress');
  if ((await toggle.getAttribute('aria-disabled')) !== 'true') throw new Error('Transfer offered while one is under way');
  if (!(await account(page, 'account-1').locator('.account-error').isHidden())) {
    throw new Error('the earlier fail is still shown after a new transfer');
  }
  await shot(page, '02-transfer-ringing');

  step('account-3 answers: account-1\'s call ends Transferred, account-2 talks to account-3');
  const a3 = await answerIncoming(page, 'account-3', '3002');
  await waitForCallState(page, 'account-2', a2to3, 'active');
  await waitForCalls(page, 'account-1', 0);
  await assertLogHas(page, `ended call ${a1} (Transferred)`);
  await waitForCalls(page, 'account-2', 1);
  await waitForCalls(page, 'account-3', 1);
  const codes = frames.received
    .filter((e) => e.event === 'transfer-progress' && e.call_id === Number(a1))
    .map((e) => e.code);
  if (!codes.includes(180) || codes.at(-1) !== 200) throw new Error(`transfer-progress codes ${codes}`);
  const ended = frames.received.find((e) => e.event === 'call-ended' && e.call_id === Number(a1));
  if (ended.code !== 0 || ended.reason !== 'Transferred') throw new Error(`call-ended ${JSON.stringify(ended)}`);
  await shot(page, '03-transferred');

  step('account-2 calls account-1 too and transfers account-3 to it (attended)');
  const b2 = await dialNewCall(page, 'account-2', '3001');
  await answerIncoming(page, 'account-1', '3002');
  await waitForCallState(page, 'account-2', b2, 'active');
  const row2 = callRow(page, 'account-2', a2to3);
  await row2.getByRole('button', { name: 'Transfer call with 3003' }).click();
  const attended = row2.getByRole('button', {
    name: `Transfer call with 3003 to the call with 3001 (call ${b2})`,
  });
  await attended.waitFor({ state: 'visible' });
  if ((await row2.locator('.transfer-to-call').count()) !== 1) throw new Error('not one call to transfer to');
  await shot(page, '04-attended-form');
  await attended.click();
  const attendedCommand = frames.sent.filter((c) => c.cmd === 'transfer-call').at(-1);
  if (attendedCommand.to_call_id !== Number(b2) || 'num' in attendedCommand || attendedCommand.call_id !== Number(a2to3)) {
    throw new Error(`attended transfer-call sent as ${JSON.stringify(attendedCommand)}`);
  }
  // account-3 (the transferee) calls account-1, which answers.
  const c3 = account(page, 'account-3').locator('li.call', { hasText: `transferred from call ${a3}` });
  await c3.waitFor({ timeout: TIMEOUT });
  await expectText(
    row2.locator('.call-transfer-status'),
    `Transfer to 3001 (call ${b2}): 180 Ringing`,
    'attended transfer progress',
  );
  await shot(page, '05-attended-ringing');
  const c1 = await answerIncoming(page, 'account-1', '3003');

  step('both calls of account-2 end Transferred; account-3 talks to account-1');
  await waitForCalls(page, 'account-2', 0);
  for (const id of [a2to3, b2]) await assertLogHas(page, `ended call ${id} (Transferred)`);
  await waitForCalls(page, 'account-1', 1);
  await waitForCalls(page, 'account-3', 1);
  await waitForCallState(page, 'account-1', c1, 'active');
  const c3id = await c3.getAttribute('data-call-id');
  await waitForCallState(page, 'account-3', c3id, 'active');
  if ((await callIds(page, 'account-1')).join() !== c1 || (await callIds(page, 'account-3')).join() !== c3id) {
    throw new Error('other calls left over');
  }
  await shot(page, '06-attended-transferred');

  step('phone width with a transfer form open');
  await callRow(page, 'account-1', c1).getByRole('button', { name: /^Transfer call with/ }).click();
  await atPhoneWidth(page, '07-phone');
  await page.setViewportSize({ width: 1280, height: 900 });

  step('hang up');
  await callRow(page, 'account-1', c1).getByRole('button', { name: /^Hang up/ }).click();
  await waitForCalls(page, 'account-1', 0);
  await waitForCalls(page, 'account-3', 0);
}


// ------------------------------------------------------------------- audio

const MIC_HZ = 700; // the fake microphone's tone (generated below)
const FAR_HZ = 440; // account-2's `audio = tone:440`

// A mono 16-bit WAV of `seconds` of a `hz` tone at -10 dBFS: Chromium's fake
// microphone plays it in a loop.
function writeToneWav(path, hz, rate = 48000, seconds = 2) {
  const count = rate * seconds;
  const wav = Buffer.alloc(44 + count * 2);
  wav.write('RIFF', 0, 'ascii');
  wav.writeUInt32LE(36 + count * 2, 4);
  wav.write('WAVEfmt ', 8, 'ascii');
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(rate, 24);
  wav.writeUInt32LE(rate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write('data', 36, 'ascii');
  wav.writeUInt32LE(count * 2, 40);
  for (let i = 0; i < count; i++) {
    wav.writeInt16LE(Math.round(10362 * Math.sin((2 * Math.PI * hz * i) / rate)), 44 + i * 2);
  }
  writeFileSync(path, wav);
}

// The channels of a 16-bit PCM WAV file, as floats.
function readWav(path) {
  const wav = readFileSync(path);
  if (wav.toString('ascii', 0, 4) !== 'RIFF' || wav.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${path} is not a WAV file`);
  }
  let format = null;
  for (let offset = 12; offset + 8 <= wav.length;) {
    const id = wav.toString('ascii', offset, offset + 4);
    const size = wav.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = { channels: wav.readUInt16LE(body + 2), rate: wav.readUInt32LE(body + 4), bits: wav.readUInt16LE(body + 14) };
    } else if (id === 'data' && format) {
      if (format.bits !== 16) throw new Error(`${path}: ${format.bits}-bit samples`);
      const end = Math.min(wav.length, body + size);
      const frames = Math.floor((end - body) / (2 * format.channels));
      const channels = Array.from({ length: format.channels }, () => new Float64Array(frames));
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < format.channels; c++) {
          channels[c][i] = wav.readInt16LE(body + (i * format.channels + c) * 2) / 32768;
        }
      }
      return { rate: format.rate, channels };
    }
    offset = body + size + (size & 1);
  }
  throw new Error(`${path} has no audio`);
}

// The share (0..1) of the energy at `hz` (Goertzel) of the windows of
// 100 ms that hold sound (over -50 dBFS; the first, where it starts, left
// out), how many seconds those are and their RMS. Window by window, because
// the microphone's level changes (the browser's gain control and noise
// suppression work on it), and a Goertzel filter as long as the whole
// recording would count a tone whose level changes as partly something
// else.
function toneInWindows(samples, rate, hz) {
  const coeff = 2 * Math.cos((2 * Math.PI * hz) / rate);
  const size = rate / 10;
  let power = 0;
  let energy = 0;
  let windows = 0;
  let onset = true;
  for (let start = 0; start + size <= samples.length; start += size) {
    let s1 = 0;
    let s2 = 0;
    let e = 0;
    for (let i = start; i < start + size; i++) {
      const s0 = samples[i] + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
      e += samples[i] * samples[i];
    }
    if (Math.sqrt(e / size) < 0.003) continue;
    if (onset) {
      onset = false;
      continue;
    }
    power += (2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2)) / size;
    energy += e;
    windows += 1;
  }
  return {
    share: energy > 0 ? power / energy : 0,
    seconds: windows / 10,
    rms: windows ? Math.sqrt(energy / (windows * size)) : 0,
  };
}

// The /ws/audio streams the page opens: their URL, JSON events, binary
// frames counted each way, and whether they closed.
function recordAudioSockets(page) {
  const sockets = [];
  page.on('websocket', (socket) => {
    const url = new URL(socket.url());
    if (url.pathname !== '/ws/audio') return;
    const entry = {
      params: Object.fromEntries(url.searchParams),
      events: [],
      framesIn: [], // their sizes
      framesOut: 0,
      badFramesOut: 0, // not 640 bytes (20 ms at 16 kHz)
      closed: false,
    };
    sockets.push(entry);
    socket.on('framereceived', ({ payload }) => {
      if (typeof payload === 'string') entry.events.push(JSON.parse(payload));
      else entry.framesIn.push(payload.length);
    });
    socket.on('framesent', ({ payload }) => {
      if (typeof payload !== 'string') {
        entry.framesOut += 1;
        if (payload.length !== 640) entry.badFramesOut += 1;
      }
    });
    socket.on('close', () => {
      entry.closed = true;
    });
  });
  return sockets;
}

const audioPart = (row, direction) => row.locator(`.audio-direction[data-direction="${direction}"]`);

async function meterValue(row, direction) {
  return audioPart(row, direction).locator('meter').evaluate((meter) => meter.value);
}

// The strongest frequency the page's AnalyserNode sees in what a call's
// Listen plays, and how far (dB) it stands above the median bin.
async function heardPeak(page, name, callId) {
  return page.evaluate(
    ([n, id]) => {
      const analyser = window.telestra.audio.analyserOf(n, id);
      if (!analyser) return null;
      const bins = new Float32Array(analyser.frequencyBinCount);
      analyser.getFloatFrequencyData(bins);
      let peak = 1;
      for (let i = 1; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
      const sorted = [...bins].filter(Number.isFinite).sort((a, b) => a - b);
      const median = sorted.length ? sorted[sorted.length >> 1] : -Infinity;
      return {
        hz: (peak * analyser.context.sampleRate) / analyser.fftSize,
        binHz: analyser.context.sampleRate / analyser.fftSize,
        aboveMedianDb: bins[peak] - median,
      };
    },
    [name, Number(callId)],
  );
}

async function audio(context) {
  if (!args['fake-mic']) throw new Error('the audio scenario needs --fake-mic=WAV (written by this script)');
  const page = await context.newPage();
  const streams = recordAudioSockets(page);
  step('load the dashboard');
  await page.goto(url);
  await waitForConnected(page);
  for (const name of ['account-1', 'account-2']) await waitForRegistration(page, name, 'registered');
  if (!(await page.evaluate(() => window.isSecureContext))) throw new Error('the page is not a secure context');

  step('account-1 calls account-2: no Listen or Talk while it rings');
  const mine = await dialNewCall(page, 'account-1', '3002');
  const ringing = callRows(page, 'account-2').locator(':scope[data-state="incoming"]');
  await ringing.waitFor({ timeout: TIMEOUT });
  if (await ringing.locator('.call-audio').isVisible()) throw new Error('Listen and Talk on a ringing call');
  const far = await answerIncoming(page, 'account-2', '3001');
  await waitForCallState(page, 'account-1', mine, 'active');
  const row = callRow(page, 'account-1', mine);
  const talk = row.getByRole('button', { name: 'Talk on call with 3002' });
  const listen = row.getByRole('button', { name: 'Listen to call with 3002' });
  await talk.waitFor({ state: 'visible' });
  for (const button of [talk, listen]) {
    if ((await button.getAttribute('aria-pressed')) !== 'false') throw new Error('a stream pressed at first');
  }

  step('Talk: the fake microphone goes out as 640-byte frames; its meter moves');
  await talk.click();
  await audioPart(row, 'speak').locator(':scope[data-state="started"]').waitFor({ timeout: TIMEOUT });
  if ((await talk.getAttribute('aria-pressed')) !== 'true') throw new Error('Talk not shown pressed');
  await expectText(audioPart(row, 'speak').locator('.audio-status'), 'Talking: PCMU, 16 kHz', 'Talk status');
  let level = 0;
  await waitUntil(async () => (level = await meterValue(row, 'speak')) > 0.5, () => `microphone meter at ${level}`);
  const speak = streams.find((s) => s.params.direction === 'speak');
  if (!speak || speak.params.account !== 'account-1' || speak.params.call_id !== mine || speak.params.rate !== '16000') {
    throw new Error(`Talk opened ${JSON.stringify(speak && speak.params)}`);
  }
  const started = speak.events.find((e) => e.event === 'audio-started');
  if (!started || started.sample_rate !== 16000 || started.direction !== 'speak') {
    throw new Error(`Talk started with ${JSON.stringify(started)}`);
  }
  await waitUntil(() => speak.framesOut >= 100, () => `${speak.framesOut} frames sent`);
  if (speak.badFramesOut) throw new Error(`${speak.badFramesOut} frames sent were not 640 bytes`);

  step('Listen: the page plays account-2\'s 440 Hz; its meter and an AnalyserNode find it');
  await listen.click();
  await audioPart(row, 'listen').locator(':scope[data-state="started"]').waitFor({ timeout: TIMEOUT });
  await expectText(audioPart(row, 'listen').locator('.audio-status'), 'Listening: PCMU, 16 kHz', 'Listen status');
  await waitUntil(async () => (level = await meterValue(row, 'listen')) > 0.5, () => `Listen meter at ${level}`);
  let peak = null;
  await waitUntil(
    async () => {
      peak = await heardPeak(page, 'account-1', mine);
      return peak && Math.abs(peak.hz - FAR_HZ) <= 2 * peak.binHz && peak.aboveMedianDb > 30;
    },
    () => `the analyser's peak: ${JSON.stringify(peak)}, not ${FAR_HZ} Hz`,
  );
  console.log(`  heard ${peak.hz.toFixed(1)} Hz, ${peak.aboveMedianDb.toFixed(0)} dB above the median bin`);
  const heard = streams.find((s) => s.params.direction === 'listen');
  await waitUntil(() => heard.framesIn.length >= 50, () => `${heard.framesIn.length} frames heard`);
  if (heard.framesIn.some((bytes) => bytes !== 640)) throw new Error('a heard frame is not 640 bytes');
  const stats = await page.evaluate((id) => window.telestra.audio.stats('account-1', id, 'listen'), Number(mine));
  console.log(`  Listen: ${JSON.stringify(stats)}`);
  await shot(page, '01-listen-talk');

  step('phone width with Listen and Talk on');
  await atPhoneWidth(page, '02-phone');
  await page.setViewportSize({ width: 1280, height: 900 });

  step('Listen off and on again');
  await listen.click();
  await audioPart(row, 'listen').locator(':scope[data-state="stopped"]').waitFor({ timeout: TIMEOUT });
  await expectText(audioPart(row, 'listen').locator('.audio-status'), 'Listen stopped', 'Listen status');
  if ((await listen.getAttribute('aria-pressed')) !== 'false') throw new Error('Listen still pressed');
  if ((await meterValue(row, 'listen')) !== 0) throw new Error('the meter of a stopped Listen shows a level');
  await waitUntil(() => heard.closed, 'the Listen stream to close');
  await listen.click();
  await audioPart(row, 'listen').locator(':scope[data-state="started"]').waitFor({ timeout: TIMEOUT });
  if (streams.filter((s) => s.params.direction === 'listen').length !== 2) throw new Error('not a second Listen stream');

  const spoken = await page.evaluate((id) => window.telestra.audio.stats('account-1', id, 'speak'), Number(mine));
  console.log(`  Talk: ${JSON.stringify(spoken)}`);
  if (spoken.framesDropped > 0) throw new Error(`Talk dropped frames: ${JSON.stringify(spoken)}`);

  step('account-2 hangs up: the streams stop by themselves, the buttons go with the call');
  // The far end has heard the tone for a few seconds by now.
  await callRow(page, 'account-2', far).getByRole('button', { name: /^Hang up/ }).click();
  await waitForCalls(page, 'account-1', 0);
  await waitUntil(() => streams.every((s) => s.closed), () => `streams still open: ${JSON.stringify(streams.filter((s) => !s.closed).map((s) => s.params))}`);
  for (const stream of streams.filter((s) => s !== heard)) {
    const stopped = stream.events.find((e) => e.event === 'audio-stopped');
    if (!stopped) throw new Error(`no audio-stopped on ${JSON.stringify(stream.params)}: ${JSON.stringify(stream.events)}`);
  }
  if (await page.evaluate(() => window.telestra.audio.anyActive())) throw new Error('a stream still runs');

  if (!args.record) {
    console.log('  (no --record: the far end\'s recording is not checked)');
    return;
  }
  step(`account-2's recording holds the microphone's ${MIC_HZ} Hz (left channel: received)`);
  const path = join(args.record, `${far}-account-2.wav`);
  let found = null;
  try {
    await waitUntil(
      () => {
        if (!existsSync(path)) return false;
        const wav = readWav(path);
        found = toneInWindows(wav.channels[0], wav.rate, MIC_HZ);
        return found.share > 0.9 && found.seconds >= 2;
      },
      () => `${path} (of ${readdirSync(args.record).join(', ')}): ${JSON.stringify(found)}`,
    );
  } finally {
    if (existsSync(path)) copyFileSync(path, join(out, `${scenario}-recording.wav`));
  }
  console.log(
    `  recording: ${found.seconds} s of sound, ${MIC_HZ} Hz share ${found.share.toFixed(3)}, RMS ${found.rms.toFixed(3)}`,
  );
}

// -------------------------------------------------------------------- main

const scenarios = { registration, calls, transfer, audio };
if (!scenarios[scenario]) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'telestra-chromium-'));
// --fake-mic=PATH: Chromium's microphone plays a tone written to PATH
// (granted without asking).
const media = [];
if (args['fake-mic']) {
  writeToneWav(args['fake-mic'], MIC_HZ);
  media.push(
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${args['fake-mic']}`,
  );
}
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
      ...media,
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
