// The dashboard's page: renders the state (model.js) that the WebSocket
// (connection.js) keeps up to date, and sends the commands of its buttons and
// forms. docs/websocket-api.md describes the messages.
import { LISTEN, SPEAK } from './audio-socket.js';
import { CallAudio } from './call-audio.js';
import { CONNECTION, GatewayConnection } from './connection.js';
import {
  CALL_STATE_LABELS,
  DTMF_KEEP,
  KEYPAD_ROWS,
  applyMessage,
  categoryOf,
  createState,
  describe,
  dtmfDigitOfKey,
  dtmfMethodLabel,
  dtmfSending,
  formatDuration,
  hasEarlyMedia,
  isEstablished,
  noteDtmfRequest,
  noteTransferRequest,
  offersAudio,
  offersKeypad,
  offersTransfer,
  qualityLevel,
  qualityText,
  registrationOf,
  sipStatusLabel,
  transferOutcome,
  transferTargets,
  transferText,
} from './model.js';

const LOG_LIMIT = 500;
const PENDING_LIMIT = 200;

const state = createState();
const pending = new Map(); // token -> {account, cmd, num}
let nextToken = 1;
const cards = new Map(); // account name -> {root, elements...}
const log = []; // newest last
let nextLogId = 1;

const $ = (id) => document.getElementById(id);

// Listen and Talk on established calls (call-audio.js).
const phone = new CallAudio({ location, onChange: renderAudioOf });

// A token from the page's own URL (?token=) was turned into a cookie by the
// gateway; keep it out of the address bar, history and screenshots.
if (new URLSearchParams(location.search).has('token')) {
  history.replaceState(null, '', location.pathname + location.hash);
}

// ------------------------------------------------------------- commands

// Sends a command with a token of its own; the token, or false when not
// connected (then the account shows why, unless `quiet`).
function send(command, { account, num, quiet = false } = {}) {
  const token = `w${nextToken++}`;
  const ok = connection.send({ ...command, token });
  if (!ok) {
    if (account && !quiet) {
      showAccountError(account, 'Not connected to the gateway: try again in a moment.');
    }
    return false;
  }
  pending.set(token, { account, cmd: command.cmd, num, quiet });
  if (pending.size > PENDING_LIMIT) pending.delete(pending.keys().next().value);
  if (quiet) return token;
  const shown = { ...command };
  if ('pass' in shown) shown.pass = '••••';
  addLog({ category: 'sent', account, text: `→ ${command.cmd}`, raw: JSON.stringify(shown) });
  return token;
}

// One key of a call's keypad: the digit shows as being sent until dtmf-sent
// (or a fail) answers.
function sendDtmf(name, callId, digit) {
  clearAccountError(name);
  const command = { cmd: 'send-dtmf', account: name, call_id: callId, digits: digit };
  const token = send(command, { account: name });
  if (token && noteDtmfRequest(state, name, callId, token, digit)) renderAccount(name);
}

// Transfers a call: blind to `num`, or attended to the far end of the
// account's call `toCallId`. The call shows how it goes (transfer-progress)
// until it ends "Transferred" or the transfer fails.
function sendTransfer(name, callId, { num = '', toCallId = null }) {
  clearAccountError(name);
  const command = { cmd: 'transfer-call', account: name, call_id: callId };
  if (toCallId !== null) command.to_call_id = toCallId;
  else command.num = num;
  const token = send(command, { account: name });
  if (!token) return false;
  if (noteTransferRequest(state, name, callId, token, { num, toCallId })) renderAccount(name);
  return true;
}

// Asks for the accounts' status after call events (250 ms later, once for a
// burst) and every 3 s while calls are up: that also reports what has no
// event of its own, such as a call held by the far end (remote-held), which
// may concern another account than the event's.
let syncTimer = null;
function scheduleSync() {
  if (syncTimer !== null) return;
  syncTimer = setTimeout(() => {
    syncTimer = null;
    for (const name of state.accounts.keys()) {
      send({ cmd: 'get-status', account: name }, { account: name, quiet: true });
    }
  }, 250);
}

setInterval(() => {
  if (connection.state !== CONNECTION.OPEN) return;
  for (const account of state.accounts.values()) {
    if (account.calls.size > 0) {
      send({ cmd: 'get-status', account: account.name }, { account: account.name, quiet: true });
    }
  }
}, 3000);

// ------------------------------------------------------------- messages

function onMessage(msg, raw) {
  const token = msg.token;
  const request = token !== undefined ? pending.get(token) : undefined;
  const changed = applyMessage(state, msg, {
    dial: (t) => (t !== undefined ? pending.get(t) : undefined),
  });
  if (changed.duplicate) return;
  if (token !== undefined) pending.delete(token);

  if (msg.event === 'fail') {
    const account = (request && request.account) || msg.account;
    if (account && cards.has(account)) showAccountError(account, msg.error);
  } else if (request && request.account && msg.event !== 'status' && msg.event !== 'dtmf-sent') {
    // (Digits go out one request per key: the next one's dtmf-sent must not
    // hide the fail of the one before.)
    clearAccountError(request.account);
  }
  if (msg.event === 'account-status' && msg.account_status === 200) clearAccountError(msg.account);
  // A call's news, or a registration's (its expiry comes with the status).
  if (msg.event === 'account-status' || (msg.event && msg.event.startsWith('call-') && msg.event !== 'call-quality')) {
    scheduleSync();
  }

  if (changed.all) {
    renderAllAccounts();
  } else {
    for (const name of changed.accounts) renderAccount(name);
  }
  if (!(request && request.quiet)) {
    addLog({
      category: categoryOf(msg),
      account: msg.account,
      seq: msg.seq,
      text: describe(msg),
      raw,
    });
  }
}

// ------------------------------------------------------------- accounts

function renderAllAccounts() {
  const grid = $('accounts');
  for (const [name, card] of cards) {
    if (!state.accounts.has(name)) {
      for (const id of card.rows.keys()) phone.forgetCall(name, id);
      card.root.remove();
      cards.delete(name);
    }
  }
  for (const name of state.accounts.keys()) {
    const card = cardFor(name);
    grid.appendChild(card.root); // keeps the gateway's order
    renderAccount(name);
  }
  $('accounts-empty').hidden = state.accounts.size > 0;
  $('accounts-empty').textContent = 'The gateway has no accounts.';
  renderAccountFilter();
}

function cardFor(name) {
  let card = cards.get(name);
  if (card) return card;
  const root = $('account-template').content.firstElementChild.cloneNode(true);
  const id = `acct-${cards.size + 1}`;
  const q = (selector) => root.querySelector(selector);
  root.dataset.account = name;
  root.setAttribute('aria-labelledby', `${id}-name`);
  q('.account-name').id = `${id}-name`;
  q('.account-name').textContent = name;
  const label = (selector, input, text) => {
    q(selector).htmlFor = `${id}-${input}`;
    q(`.${input}`).id = `${id}-${input}`;
    if (text) q(selector).textContent = text;
  };
  label('.dial-label', 'dial-number', `Number to call from ${name}`);
  label('.login-user-label', 'login-user');
  label('.login-pass-label', 'login-pass');
  label('.login-server-label', 'login-server');
  q('.dial-button').setAttribute('aria-label', `Call from ${name}`);
  q('.calls-heading').id = `${id}-calls`;
  q('.calls').setAttribute('aria-labelledby', `${id}-calls`);

  q('.dial').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = q('.dial-number');
    const num = input.value.trim();
    if (!num) return;
    clearAccountError(name);
    if (send({ cmd: 'make-call', account: name, num }, { account: name, num })) input.value = '';
  });
  q('.login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const user = q('.login-user').value.trim();
    const server = q('.login-server').value.trim();
    const pass = q('.login-pass').value;
    clearAccountError(name);
    if (send({ cmd: 'login', account: name, user, pass, server }, { account: name })) {
      q('.login-pass').value = '';
      const account = state.accounts.get(name);
      if (account) {
        account.user = user;
        account.server = server;
        renderAccount(name);
      }
    }
  });
  q('.logout-button').addEventListener('click', () => {
    clearAccountError(name);
    send({ cmd: 'logout', account: name }, { account: name });
  });
  q('.calls').addEventListener('click', (event) => {
    const button = event.target.closest('button');
    const row = event.target.closest('.call');
    if (!button || !row) return;
    const callId = Number(row.dataset.callId);
    if (button.classList.contains('call-listen') || button.classList.contains('call-talk')) {
      phone.toggle(name, callId, button.classList.contains('call-listen') ? LISTEN : SPEAK);
      return;
    }
    if (button.dataset.digit) {
      sendDtmf(name, callId, button.dataset.digit);
      return;
    }
    if (button.classList.contains('call-transfer')) {
      if (button.getAttribute('aria-disabled') === 'true') return;
      setTransferFormOpen(row, row.querySelector('.transfer-form').hidden);
      return;
    }
    if (button.classList.contains('transfer-cancel')) {
      setTransferFormOpen(row, false);
      return;
    }
    if (button.dataset.toCallId) {
      if (sendTransfer(name, callId, { toCallId: Number(button.dataset.toCallId) })) {
        setTransferFormOpen(row, false);
      }
      return;
    }
    const cmd = button.classList.contains('call-answer')
      ? 'answer-call'
      : button.classList.contains('call-switch')
        ? 'switch-call'
        : button.classList.contains('call-hangup')
          ? 'hangup-call'
          : null;
    if (!cmd) return;
    clearAccountError(name);
    send({ cmd, account: name, call_id: callId }, { account: name });
  });
  // A call's transfer form: to a number (blind).
  q('.calls').addEventListener('submit', (event) => {
    const form = event.target.closest('.transfer-form');
    if (!form) return;
    event.preventDefault();
    const row = form.closest('.call');
    const input = form.querySelector('.transfer-number');
    const num = input.value.trim();
    if (!num) return;
    if (sendTransfer(name, Number(row.dataset.callId), { num })) {
      input.value = '';
      setTransferFormOpen(row, false);
    }
  });
  // The keypad is one stop for Tab: the arrows move between its keys, and
  // the digits typed while it has the focus are sent.
  q('.calls').addEventListener('keydown', (event) => {
    // Escape closes a transfer form.
    if (event.key === 'Escape' && event.target.closest('.transfer-form')) {
      event.preventDefault();
      setTransferFormOpen(event.target.closest('.call'), false);
      return;
    }
    const key = event.target.closest('.key');
    if (!key || event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = [...key.parentElement.children];
    const move = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -4, ArrowDown: 4 }[event.key];
    if (move !== undefined) {
      event.preventDefault();
      const next = keys[keys.indexOf(key) + move];
      if (next) next.focus();
      return;
    }
    const digit = dtmfDigitOfKey(event.key);
    if (!digit) return;
    event.preventDefault();
    if (event.repeat) return; // a key held down sends its digit once
    const pressed = keys.find((k) => k.dataset.digit === digit);
    pressed.focus();
    pressed.classList.add('pressed');
    setTimeout(() => pressed.classList.remove('pressed'), 150);
    sendDtmf(name, Number(key.closest('.call').dataset.callId), digit);
  });
  q('.calls').addEventListener('focusin', (event) => {
    const key = event.target.closest('.key');
    if (!key) return;
    for (const other of key.parentElement.children) other.tabIndex = other === key ? 0 : -1;
  });

  card = { root, q, id, rows: new Map() };
  cards.set(name, card);
  return card;
}

function renderAccount(name) {
  const account = state.accounts.get(name);
  if (!account) return;
  const card = cardFor(name);
  if (!card.root.isConnected) {
    $('accounts').appendChild(card.root);
    $('accounts-empty').hidden = true;
    renderAccountFilter();
  }
  const { q } = card;
  const registration = registrationOf(account.status);
  const badge = q('.reg');
  badge.dataset.reg = account.status === undefined ? 'unknown' : registration.kind;
  q('.reg-text').textContent =
    account.status === undefined ? 'Unknown' : registration.label;
  card.root.dataset.registration = badge.dataset.reg;
  setFact(q('.fact-user'), account.user);
  setFact(q('.fact-server'), account.server);
  setFact(q('.fact-reason'), sipStatusText(account));
  // When the registrar's binding runs out unless refreshed (the gateway
  // refreshes it at half its lifetime).
  const expires = q('.fact-expires');
  if (account.registrationExpires !== null) {
    const at = new Date(account.registrationExpires);
    setFact(expires, at.toLocaleTimeString([], { hour12: false }));
    expires.title = at.toISOString();
  } else {
    setFact(expires, account.status === 200 ? '' : '—');
    expires.classList.toggle('muted', true);
    expires.title = '';
  }
  // Prefill the login form with what the gateway reports, but never a field
  // someone is typing in (a status arriving meanwhile would prepend to it).
  const prefill = (field, value) => {
    if (!field.value && value && document.activeElement !== field) field.value = value;
  };
  prefill(q('.login-user'), account.user);
  prefill(q('.login-server'), account.server);
  q('.logout-button').disabled = account.status === 0;
  renderCalls(card, account);
}

function sipStatusText(account) {
  if (account.status === undefined) return '';
  if (account.status === 0) return 'none';
  return account.reason ? `${account.status} ${account.reason}` : String(account.status);
}

function setFact(element, value) {
  element.textContent = value || 'not reported';
  element.classList.toggle('muted', !value);
}

function renderCalls(card, account) {
  const list = card.q('.calls');
  for (const [id, row] of card.rows) {
    if (!account.calls.has(id)) {
      // Keep the keyboard where it was when the focused call goes away.
      if (row.contains(document.activeElement)) card.q('.dial-number').focus();
      row.remove();
      card.rows.delete(id);
      phone.forgetCall(account.name, id);
    }
  }
  let position = 0;
  for (const call of account.calls.values()) {
    let row = card.rows.get(call.id);
    if (!row) {
      row = newCallRow(card, call.id);
      card.rows.set(call.id, row);
    }
    // In call order; moved only when out of place (a move takes the focus
    // away from the key just pressed).
    const here = list.children[position++] || null;
    if (here !== row) list.insertBefore(row, here);
    row.dataset.state = call.state;
    const incoming = call.direction === 'incoming';
    row.querySelector('.call-direction').textContent = incoming ? '↙ from' : '↗ to';
    row.querySelector('.call-direction').title = incoming ? 'Incoming call' : 'Outgoing call';
    row.querySelector('.call-peer').textContent =
      call.peerName && call.peerName !== call.peer ? `${call.peerName} (${call.peer})` : call.peer || '?';
    row.querySelector('.call-peer').title = [call.remoteUri, call.sipCallId && `Call-ID ${call.sipCallId}`]
      .filter(Boolean)
      .join('\n');
    renderQuality(row, call);
    row.querySelector('.call-state').textContent = CALL_STATE_LABELS[call.state] || call.state;
    const answer = row.querySelector('.call-answer');
    answer.hidden = call.state !== 'incoming';
    // switch-call makes a call the active one and holds the account's other
    // established calls: offered where it changes something.
    const switchButton = row.querySelector('.call-switch');
    switchButton.hidden = !canSwitchTo(account, call);
    switchButton.textContent = 'Switch to';
    const dtmf = row.querySelector('.call-dtmf');
    dtmf.hidden = !offersKeypad(call);
    // One transfer at a time: while one is under way the button stays (and
    // keeps the focus of a keyboard user who just sent it) but does nothing.
    const transferButton = row.querySelector('.call-transfer');
    const transferable = offersTransfer(call);
    transferButton.hidden = !isEstablished(call.state);
    transferButton.setAttribute('aria-disabled', String(!transferable));
    transferButton.title = transferable || transferButton.hidden ? '' : 'A transfer of this call is under way';
    const form = row.querySelector('.transfer-form');
    if (!transferable) setTransferFormOpen(row, false);
    const audio = row.querySelector('.call-audio');
    audio.hidden = !offersAudio(call);
    // A keyboard user who just answered keeps the focus in the row.
    for (const element of [answer, switchButton, dtmf, transferButton, form, audio]) {
      if (element.hidden && element.contains(document.activeElement)) {
        row.querySelector('.call-hangup').focus();
      }
    }
    const peer = call.peer || 'call';
    answer.setAttribute('aria-label', `Answer call from ${peer}`);
    switchButton.setAttribute('aria-label', `${switchButton.textContent} call with ${peer}`);
    transferButton.setAttribute('aria-label', `Transfer call with ${peer}`);
    row.querySelector('.transfer-number-label').textContent = `Transfer call with ${peer} to number`;
    row.querySelector('.call-hangup').setAttribute('aria-label', `Hang up call with ${peer}`);
    row.querySelector('.keypad').setAttribute('aria-label', `Keypad: DTMF to ${peer}`);
    row.querySelector('.call-listen').setAttribute('aria-label', `Listen to call with ${peer}`);
    row.querySelector('.call-talk').setAttribute('aria-label', `Talk on call with ${peer}`);
    const level = (direction) => row.querySelector(`[data-direction="${direction}"] .audio-level`);
    level('listen').setAttribute('aria-label', `Level heard from ${peer}`);
    level('speak').setAttribute('aria-label', `Level of your microphone to ${peer}`);
    renderAudio(row, account.name, call.id);
    if (!dtmf.hidden) renderDtmf(row, call);
    if (!transferButton.hidden) renderTransferTargets(row, account, call);
    renderCallNotes(row, account, call);
    updateDuration(row, call);
  }
  card.q('.calls-empty').hidden = account.calls.size > 0;
}

function newCallRow(card, id) {
  const row = $('call-template').content.firstElementChild.cloneNode(true);
  row.dataset.callId = String(id);
  const prefix = `${card.id}-call-${id}`;
  const form = row.querySelector('.transfer-form');
  form.id = `${prefix}-transfer`;
  row.querySelector('.call-transfer').setAttribute('aria-controls', form.id);
  row.querySelector('.transfer-number-label').htmlFor = `${prefix}-transfer-number`;
  row.querySelector('.transfer-number').id = `${prefix}-transfer-number`;
  row.querySelector('.transfer-calls-label').id = `${prefix}-transfer-calls`;
  row.querySelector('.transfer-targets').setAttribute('aria-labelledby', `${prefix}-transfer-calls`);
  const keypad = row.querySelector('.keypad');
  for (const digit of KEYPAD_ROWS.join('')) {
    const key = document.createElement('button');
    key.type = 'button';
    key.className = /[A-D]/.test(digit) ? 'key letter' : 'key';
    key.dataset.digit = digit;
    key.textContent = digit;
    key.tabIndex = keypad.childElementCount === 0 ? 0 : -1;
    keypad.append(key);
  }
  return row;
}

// A call's Listen and Talk: each button pressed while its stream runs, the
// stream's state in words (written only when it changes: a screen reader
// announces each change once); the meters are drawn by drawLevels.
function renderAudio(row, name, callId) {
  for (const part of row.querySelectorAll('.audio-direction')) {
    const view = phone.view(name, callId, part.dataset.direction);
    part.querySelector('button').setAttribute('aria-pressed', String(Boolean(view && view.active)));
    part.dataset.state = view ? view.state : '';
    const status = part.querySelector('.audio-status');
    const text = view ? view.text : '';
    if (status.textContent !== text) status.textContent = text;
    if (!(view && view.active)) part.querySelector('.audio-level').value = 0;
  }
  scheduleLevels();
}

// call-audio.js says a stream of a call changed.
function renderAudioOf(name, callId) {
  const card = cards.get(name);
  const row = card && card.rows.get(Number(callId));
  if (row) renderAudio(row, name, Number(callId));
}

// The level meters of running streams, once per animation frame while any
// runs.
let levelsFrame = null;
function scheduleLevels() {
  if (levelsFrame === null && phone.anyActive()) levelsFrame = requestAnimationFrame(drawLevels);
}

function drawLevels() {
  levelsFrame = null;
  for (const [name, card] of cards) {
    for (const [id, row] of card.rows) {
      const running = row.querySelectorAll(
        '.audio-direction[data-state="started"], .audio-direction[data-state="connecting"]',
      );
      for (const part of running) {
        part.querySelector('.audio-level').value = phone.level(name, id, part.dataset.direction);
      }
    }
  }
  scheduleLevels();
}

// The digits sent (then those still being sent) and received on a call.
// Received digits are appended, never rewritten, so that a screen reader
// announces each new one once.
function renderDtmf(row, call) {
  const sending = dtmfSending(call);
  row.querySelector('.dtmf-sent-digits').textContent = call.dtmf.sent;
  row.querySelector('.dtmf-sending').textContent = sending;
  row.querySelector('.dtmf-sent').dataset.empty = call.dtmf.sent || sending ? 'no' : 'yes';

  const list = row.querySelector('.dtmf-received');
  const shown = Number(list.dataset.total || 0);
  const fresh = Math.min(call.dtmf.receivedTotal - shown, call.dtmf.received.length);
  if (fresh <= 0) return;
  for (const { digit, method, durationMs } of call.dtmf.received.slice(-fresh)) {
    const item = document.createElement('span');
    item.className = 'digit';
    item.dataset.method = method;
    item.textContent = digit;
    item.title = `${dtmfMethodLabel(method)}${durationMs ? `, ${durationMs} ms` : ''}`;
    list.append(item);
  }
  while (list.childElementCount > DTMF_KEEP) list.firstElementChild.remove();
  list.dataset.total = String(call.dtmf.receivedTotal);
  list.dataset.empty = 'no';
  const newest = call.dtmf.received.at(-1);
  // "RFC 4733" stays on one line.
  const method = dtmfMethodLabel(newest.method).replace(' ', '\u00a0');
  row.querySelector('.dtmf-method').textContent = `via ${method}`;
}

// Opens or closes a call's transfer form; opening puts the focus in its
// number field, closing a form that had it back on the Transfer button.
function setTransferFormOpen(row, open) {
  const form = row.querySelector('.transfer-form');
  const button = row.querySelector('.call-transfer');
  if (form.hidden === !open) return;
  const hadFocus = form.contains(document.activeElement);
  form.hidden = !open;
  button.setAttribute('aria-expanded', String(open));
  if (open) {
    row.querySelector('.transfer-number').focus();
  } else if (hadFocus && !button.hidden) {
    button.focus();
  }
}

// One button per other established call of the account (attended
// transfer); rebuilt only when those calls change, so the focus stays.
function renderTransferTargets(row, account, call) {
  const targets = transferTargets(account, call);
  const box = row.querySelector('.transfer-targets');
  const key = targets.map((t) => `${t.id}:${t.peer}`).join(',');
  if (box.dataset.key === key) return;
  const hadFocus = box.contains(document.activeElement);
  box.dataset.key = key;
  const peer = call.peer || 'call';
  box.replaceChildren(
    ...targets.map((target) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'secondary small transfer-to-call';
      button.dataset.toCallId = String(target.id);
      button.textContent = `To ${target.peer || '?'} (call ${target.id})`;
      button.setAttribute(
        'aria-label',
        `Transfer call with ${peer} to the call with ${target.peer || '?'} (call ${target.id})`,
      );
      return button;
    }),
  );
  row.querySelector('.transfer-calls').hidden = targets.length === 0;
  if (hadFocus) row.querySelector('.transfer-number').focus();
}

// What else a call's row says: where a call the far end transferred us
// came from, where we are being transferred, our transfer's progress and
// early media while it rings.
function renderCallNotes(row, account, call) {
  const from = row.querySelector('.call-transferred-from');
  from.hidden = call.transferredFrom === null;
  from.textContent = from.hidden ? '' : `transferred from call ${call.transferredFrom}`;
  const to = row.querySelector('.call-referred-to');
  const referred = call.referredTo && account.calls.get(call.referredTo.callId);
  to.hidden = !referred;
  to.textContent = referred
    ? `the far end transfers us to ${call.referredTo.num || '?'} (call ${call.referredTo.callId})`
    : '';
  const status = row.querySelector('.call-transfer-status');
  const text = transferText(call);
  // Written only when it changes: a screen reader announces each change once.
  if (status.textContent !== text) status.textContent = text;
  status.dataset.outcome = transferOutcome(call);
  const early = row.querySelector('.call-early-media');
  early.hidden = !hasEarlyMedia(call);
  early.title = early.hidden ? '' : `The far end's audio before the answer (${sipStatusLabel(call.progress.code)})`;
}

function canSwitchTo(account, call) {
  if (!isEstablished(call.state)) return false;
  if (call.state === 'held') return true;
  for (const other of account.calls.values()) {
    if (other.id !== call.id && isEstablished(other.state) && other.state !== 'held') {
      return true; // another call is not held: switching to this one holds it
    }
  }
  return false;
}

// The codec and quality line; written only when it changes.
function renderQuality(row, call) {
  const codec = row.querySelector('.call-codec');
  if (codec.textContent !== call.codec) codec.textContent = call.codec;
  const quality = row.querySelector('.call-quality');
  const text = qualityText(call);
  if (quality.textContent !== text) quality.textContent = text;
  quality.dataset.level = qualityLevel(call);
  quality.title = call.quality
    ? `${call.quality.packetsReceived} packets received, ${call.quality.packetsLost} lost (RTP/RTCP; MOS: E-model estimate)`
    : '';
}

function updateDuration(row, call) {
  const element = row.querySelector('.call-duration');
  const start = call.activeSince !== null ? call.activeSince : call.since;
  element.textContent = formatDuration(Date.now() - start);
  element.dataset.talking = call.activeSince !== null ? 'yes' : 'no';
}

setInterval(() => {
  for (const [name, card] of cards) {
    const account = state.accounts.get(name);
    if (!account) continue;
    for (const [id, row] of card.rows) {
      const call = account.calls.get(id);
      if (call) updateDuration(row, call);
    }
  }
}, 1000);

function showAccountError(name, text) {
  const card = cards.get(name);
  if (!card) return;
  card.q('.account-error').textContent = text;
  card.q('.account-error').hidden = false;
}

function clearAccountError(name) {
  const card = cards.get(name);
  if (!card) return;
  card.q('.account-error').textContent = '';
  card.q('.account-error').hidden = true;
}

// ------------------------------------------------------------- event log

function logFilter() {
  const form = $('log-filters');
  const kinds = new Set(
    [...form.querySelectorAll('input[name=kind]:checked')].map((input) => input.value),
  );
  return {
    kinds,
    account: $('log-account').value,
    search: $('log-search').value.trim().toLowerCase(),
  };
}

function matches(entry, filter) {
  if (!filter.kinds.has(entry.category)) return false;
  if (filter.account && entry.account !== filter.account) return false;
  if (filter.search) {
    const haystack = `${entry.text} ${entry.account || ''} ${entry.raw || ''}`.toLowerCase();
    if (!haystack.includes(filter.search)) return false;
  }
  return true;
}

function logItem(entry) {
  const item = document.createElement('li');
  item.className = 'log-entry';
  item.dataset.category = entry.category;
  const time = document.createElement('time');
  time.dateTime = entry.time.toISOString();
  time.textContent = entry.time.toLocaleTimeString([], { hour12: false });
  const seq = document.createElement('span');
  seq.className = 'log-seq';
  seq.textContent = entry.seq ? `#${entry.seq}` : '';
  const account = document.createElement('span');
  account.className = 'log-account';
  account.textContent = entry.account || '';
  const text = document.createElement('span');
  text.className = 'log-text';
  text.textContent = entry.text;
  item.append(time, seq, account, text);
  if (entry.raw) item.title = entry.raw;
  return item;
}

function addLog(fields) {
  const entry = { id: nextLogId++, time: new Date(), ...fields };
  log.push(entry);
  if (log.length > LOG_LIMIT) log.shift();
  const list = $('log');
  if (matches(entry, logFilter())) {
    list.prepend(logItem(entry));
    while (list.childElementCount > LOG_LIMIT) list.lastElementChild.remove();
  }
  renderLogCount();
}

function renderLog() {
  const filter = logFilter();
  const list = $('log');
  const items = [];
  for (let i = log.length - 1; i >= 0; i--) {
    if (matches(log[i], filter)) items.push(logItem(log[i]));
  }
  list.replaceChildren(...items);
  renderLogCount();
}

function renderLogCount() {
  $('log-count').textContent = `${$('log').childElementCount} of ${log.length} events shown`;
}

function renderAccountFilter() {
  const select = $('log-account');
  const current = select.value;
  const options = [new Option('All accounts', '')];
  for (const name of state.accounts.keys()) options.push(new Option(name, name));
  select.replaceChildren(...options);
  select.value = state.accounts.has(current) ? current : '';
}

$('log-filters').addEventListener('input', renderLog);
$('log-filters').addEventListener('submit', (event) => event.preventDefault());
$('log-clear').addEventListener('click', () => {
  log.length = 0;
  renderLog();
});

// ------------------------------------------------------------- connection

let countdown = null;
function onState(connectionState, detail) {
  const pill = $('connection');
  pill.dataset.state = connectionState;
  if (countdown !== null) clearInterval(countdown);
  countdown = null;
  const text = $('connection-text');
  const countdownText = $('connection-countdown');
  countdownText.textContent = '';
  switch (connectionState) {
    case CONNECTION.CONNECTING:
      text.textContent = detail.attempt > 0 ? 'Reconnecting…' : 'Connecting…';
      break;
    case CONNECTION.OPEN:
      text.textContent = 'Connected';
      addLog({
        category: 'connection',
        text: detail.resumed ? 'connected (resumed)' : 'connected',
      });
      break;
    case CONNECTION.WAITING:
    case CONNECTION.UNAUTHORIZED: {
      // The live region changes once per state; the seconds tick beside it
      // (hidden from screen readers, which would read every tick).
      text.textContent =
        connectionState === CONNECTION.UNAUTHORIZED
          ? 'Not authorized: open the dashboard as /?token=…'
          : 'Disconnected';
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000));
        countdownText.textContent = ` — retrying in ${seconds} s`;
      };
      tick();
      countdown = setInterval(tick, 1000);
      if (detail.wasOpen) {
        addLog({
          category: 'connection',
          text: `disconnected (${detail.code}${detail.reason ? ` ${detail.reason}` : ''})`,
        });
      }
      break;
    }
    default:
      text.textContent = 'Stopped';
  }
  const retry = $('connection-retry');
  if (retry) retry.hidden = !(connectionState === CONNECTION.WAITING || connectionState === CONNECTION.UNAUTHORIZED);
}

const connection = new GatewayConnection({
  location,
  resumePoint: () => ({ instance: state.instance, lastSeq: state.lastSeq }),
  onMessage,
  onState,
});

{
  // "Reconnect now" next to the connection state.
  const retry = document.createElement('button');
  retry.type = 'button';
  retry.id = 'connection-retry';
  retry.className = 'secondary small';
  retry.textContent = 'Reconnect now';
  retry.hidden = true;
  retry.addEventListener('click', () => connection.retryNow());
  $('connection').after(retry);
}

window.addEventListener('pagehide', () => {
  connection.stop();
  phone.stopAll();
});
window.addEventListener('pageshow', (event) => {
  if (event.persisted) connection.start(); // back from the back/forward cache
});
connection.start();

// For tests and curious users: the live state in the console.
window.telestra = { state, connection, audio: phone };
