// The dashboard's state, built from the gateway's WebSocket messages
// (docs/websocket-api.md). No DOM here: tests/e2e/model_test.mjs runs it in
// Node.

export const REGISTRATION = Object.freeze({
  REGISTERED: 'registered',
  REGISTERING: 'registering',
  LOGGED_OUT: 'logged-out',
  FAILED: 'failed',
});

const SIP_REASONS = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  486: 'Busy Here',
  487: 'Request Terminated',
  500: 'Server Internal Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  603: 'Decline',
};

// "180 Ringing" for a SIP status code ("599" for one without a phrase here).
export function sipStatusLabel(code) {
  const reason = SIP_REASONS[code];
  return reason ? `${code} ${reason}` : String(code);
}

// How an account_status value reads: {kind, label, code}.
export function registrationOf(code) {
  if (code === 200) return { kind: REGISTRATION.REGISTERED, label: 'Registered', code };
  if (code === 100) return { kind: REGISTRATION.REGISTERING, label: 'Registering…', code };
  if (code === 0 || code === undefined || code === null) {
    return { kind: REGISTRATION.LOGGED_OUT, label: 'Logged out', code: 0 };
  }
  const reason = SIP_REASONS[code];
  return {
    kind: REGISTRATION.FAILED,
    label: reason ? `Failed: ${code} ${reason}` : `Failed: ${code}`,
    code,
  };
}

// Call states as the model names them, and how the dashboard shows them.
export const CALL_STATE_LABELS = Object.freeze({
  dialing: 'Dialing',
  ringing: 'Ringing',
  incoming: 'Ringing (incoming)',
  active: 'Active',
  held: 'Held',
  'remote-held': 'Held by the far end',
});

// A call's DTMF keypad: 12 + 4 keys, row by row.
export const KEYPAD_ROWS = Object.freeze(['123A', '456B', '789C', '*0#D']);

// How many digits a call keeps of those sent and of those received.
export const DTMF_KEEP = 32;

const DTMF_METHOD_LABELS = { rfc4733: 'RFC 4733', info: 'SIP INFO' };

// "RFC 4733" / "SIP INFO" for an event's method.
export function dtmfMethodLabel(method) {
  return DTMF_METHOD_LABELS[method] || method || 'unknown method';
}

// The DTMF digit a key of the keyboard stands for (a-d as A-D), or null.
export function dtmfDigitOfKey(key) {
  if (typeof key !== 'string' || key.length !== 1) return null;
  const digit = key.toUpperCase();
  return /^[0-9*#A-D]$/.test(digit) ? digit : null;
}

// Established calls (they talk or are held) are the ones that take DTMF.
export function isEstablished(state) {
  return state === 'active' || state === 'held' || state === 'remote-held';
}

export function offersKeypad(call) {
  return isEstablished(call.state);
}

// Listen and Talk (call-audio.js) on the same calls.
export function offersAudio(call) {
  return isEstablished(call.state);
}

// An established call can be transferred, unless a transfer of it is under
// way (the gateway refuses a second one).
export function offersTransfer(call) {
  return isEstablished(call.state) && !transferUnderWay(call);
}

function transferUnderWay(call) {
  return call.transfer !== null && !call.transfer.failed;
}

// The account's other established calls: the targets of an attended
// transfer of `call` (its far end is connected to theirs).
export function transferTargets(account, call) {
  return [...account.calls.values()].filter((other) => other.id !== call.id && isEstablished(other.state));
}

// Whether a call still ringing gets the far end's audio (its newest
// provisional answer brought early media).
export function hasEarlyMedia(call) {
  const ringing = call.state === 'dialing' || call.state === 'ringing';
  return ringing && call.progress !== null && call.progress.earlyMedia;
}

export function createState() {
  return {
    instance: '', // the gateway process the state came from
    lastSeq: 0, // newest seq applied: the resume point
    accounts: new Map(), // name -> account, in the gateway's order
  };
}

function newAccount(name) {
  return {
    name,
    status: undefined, // account_status; undefined until known
    reason: '',
    user: '', // only when the gateway reports it, or from this page's login
    server: '',
    registrationExpires: null, // ms since the epoch while registered, if reported
    calls: new Map(), // call_id -> call
  };
}

// A Timestamp of the gateway (RFC 3339) as ms since the epoch; null when
// absent or unreadable.
function timeOf(text) {
  if (typeof text !== 'string' || text === '') return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

// The quality figures of a status call object or a call-quality event:
// null when the message has none (an older gateway).
function qualityOf(msg) {
  if (typeof msg.packets_received !== 'number') return null;
  return {
    packetsReceived: msg.packets_received,
    packetsLost: Number(msg.packets_lost) || 0,
    jitterMs: Number(msg.jitter_ms) || 0,
    rttMs: typeof msg.rtt_ms === 'number' ? msg.rtt_ms : null,
    mos: typeof msg.mos === 'number' ? msg.mos : null,
  };
}

function accountOf(state, name) {
  let account = state.accounts.get(name);
  if (!account) {
    account = newAccount(name);
    state.accounts.set(name, account);
  }
  return account;
}

function newDtmf() {
  return {
    sent: '', // the newest DTMF_KEEP digits dtmf-sent confirmed
    sending: new Map(), // token of this page's send-dtmf -> its digits, until answered
    received: [], // the newest DTMF_KEEP {digit, method, durationMs}
    receivedTotal: 0, // digits ever received: tells a new digit from a repeat
  };
}

function newCall(id, { direction, peer, peerName, state, since, transferredFrom = null }) {
  return {
    id,
    direction,
    peer,
    peerName,
    state,
    // When the call began and was answered, ms since the epoch: the
    // gateway's start_time and answer_time once a status reported them (so
    // a reload does not reset them), until then when this page saw it.
    since,
    activeSince: null,
    codec: '', // PCMU, PCMA; '' until the gateway reports it
    sipCallId: '',
    remoteUri: '',
    // The gateway's newest figures (status or call-quality): null, or
    // {packetsReceived, packetsLost, jitterMs, rttMs, mos} (rttMs and mos
    // null until known).
    quality: null,
    dtmf: newDtmf(),
    // Our transfer of the call: null, or {num, toCallId, toPeer (what this
    // page asked for: blind to num, or attended to call toCallId with
    // toPeer; '', null and '' when unknown), token (of this page's
    // transfer-call until it is refused or the session ends), code (the
    // newest transfer-progress, null before), failed ('' or why it failed)}.
    transfer: null,
    // The far end of call `transferredFrom` transferred us: this call is the
    // one the account started for it (call-started).
    transferredFrom,
    // The far end of this call transferred us: {callId, num} of the call the
    // account started for it.
    referredTo: null,
    // The newest call-progress of a call still ringing: {code, earlyMedia}.
    progress: null,
  };
}

// Calls of a `status` (or snapshot entry) replace the account's, keeping what
// the page already knew about calls that continue (when they became active,
// their digits).
function replaceCalls(account, calls, now) {
  const next = new Map();
  for (const info of calls || []) {
    const id = Number(info.call_id);
    const known = account.calls.get(id);
    const call = newCall(id, {
      direction: info.direction || (known && known.direction) || 'unknown',
      peer: info.peer || (known && known.peer) || '',
      peerName: info.peer_name || (known && known.peerName) || '',
      state: info.state || 'unknown',
      since: timeOf(info.start_time) ?? (known ? known.since : now),
    });
    if (known) {
      call.activeSince = known.activeSince;
      call.codec = known.codec;
      call.sipCallId = known.sipCallId;
      call.remoteUri = known.remoteUri;
      call.quality = known.quality;
      call.dtmf = known.dtmf;
      call.transfer = known.transfer;
      call.transferredFrom = known.transferredFrom;
      call.referredTo = known.referredTo;
      call.progress = known.progress;
    }
    const answered = timeOf(info.answer_time);
    if (answered !== null) call.activeSince = answered;
    if (call.activeSince === null && isEstablished(call.state)) call.activeSince = now;
    if (typeof info.codec === 'string' && info.codec) call.codec = info.codec;
    if (typeof info.sip_call_id === 'string' && info.sip_call_id) call.sipCallId = info.sip_call_id;
    if (typeof info.remote_uri === 'string' && info.remote_uri) call.remoteUri = info.remote_uri;
    call.quality = qualityOf(info) || call.quality;
    next.set(id, call);
  }
  account.calls = next;
}

function applyStatus(account, status, now) {
  account.status = status.account_status;
  if (typeof status.user === 'string' && status.user) account.user = status.user;
  if (typeof status.server === 'string' && status.server) account.server = status.server;
  account.registrationExpires = timeOf(status.registration_expires);
  replaceCalls(account, status.calls, now);
}

function setCallState(account, id, state, now) {
  const call = account.calls.get(id);
  if (!call) return false;
  call.state = state;
  if (call.activeSince === null && isEstablished(state)) call.activeSince = now;
  return true;
}

// Applies one message from the gateway. Returns what changed:
//   {all: true} after a snapshot, else {accounts: Set of account names},
//   plus {duplicate: true} for an event already applied (seq <= lastSeq).
// `dial` looks up what this page dialled for a call-return's token.
export function applyMessage(state, msg, { now = Date.now(), dial = () => undefined } = {}) {
  const changed = { all: false, accounts: new Set(), duplicate: false };
  const event = msg && msg.event;
  if (event === 'snapshot') {
    const previous = state.instance === msg.instance ? state.accounts : new Map();
    state.instance = msg.instance;
    state.accounts = new Map();
    for (const status of msg.accounts || []) {
      const account = newAccount(status.account);
      const known = previous.get(status.account);
      if (known) {
        account.user = known.user;
        account.server = known.server;
        account.calls = known.calls;
      }
      applyStatus(account, status, now);
      state.accounts.set(account.name, account);
    }
    state.lastSeq = Number(msg.seq) || 0;
    forgetRequests(state);
    changed.all = true;
    return changed;
  }
  if (event === 'resumed') {
    state.instance = msg.instance;
    for (const name of forgetRequests(state)) changed.accounts.add(name);
    return changed;
  }
  if (event === 'gap') return changed; // a snapshot follows

  const seq = Number(msg.seq) || 0;
  if (seq > 0) {
    if (seq <= state.lastSeq) {
      changed.duplicate = true;
      return changed;
    }
    state.lastSeq = seq;
  }
  if (event === 'fail' && msg.token !== undefined) {
    const name = endRequest(state, msg.token);
    if (name !== undefined) changed.accounts.add(name);
  }
  if (event === 'fail' && msg.account && failTransfer(state, msg.account, msg.error)) {
    changed.accounts.add(msg.account);
  }
  const name = msg.account;
  if (!name) return changed;
  const id = msg.call_id !== undefined ? Number(msg.call_id) : undefined;
  const touch = () => changed.accounts.add(name);
  switch (event) {
    case 'status':
      applyStatus(accountOf(state, name), msg, now);
      touch();
      break;
    case 'account-status': {
      const account = accountOf(state, name);
      account.status = msg.account_status;
      account.reason = msg.reason || '';
      touch();
      break;
    }
    case 'call-return': {
      const account = accountOf(state, name);
      if (!account.calls.has(id)) {
        const dialled = dial(msg.token) || {};
        account.calls.set(
          id,
          newCall(id, {
            direction: 'outgoing',
            peer: dialled.num || '',
            peerName: '',
            state: 'dialing',
            since: now,
          }),
        );
      }
      touch();
      break;
    }
    case 'call-incoming': {
      const account = accountOf(state, name);
      account.calls.set(
        id,
        newCall(id, {
          direction: 'incoming',
          peer: msg.caller || '',
          peerName: msg.caller_name || '',
          state: 'incoming',
          since: now,
        }),
      );
      touch();
      break;
    }
    case 'call-started': {
      // The far end of call transferred_from transferred us: the account
      // calls num by itself.
      const account = accountOf(state, name);
      const from = Number(msg.transferred_from);
      if (!account.calls.has(id)) {
        account.calls.set(
          id,
          newCall(id, {
            direction: 'outgoing',
            peer: msg.num || '',
            peerName: '',
            state: 'dialing',
            since: now,
            transferredFrom: from,
          }),
        );
      } else {
        account.calls.get(id).transferredFrom = from;
      }
      const referring = account.calls.get(from);
      if (referring) referring.referredTo = { callId: id, num: msg.num || '' };
      touch();
      break;
    }
    case 'call-ringing':
      if (setCallState(accountOf(state, name), id, 'ringing', now)) touch();
      break;
    case 'call-progress': {
      const call = accountOf(state, name).calls.get(id);
      if (!call) break;
      call.progress = { code: Number(msg.code) || 0, earlyMedia: msg.early_media === true };
      touch();
      break;
    }
    case 'transfer-progress': {
      const call = accountOf(state, name).calls.get(id);
      if (!call) break;
      // A transfer another client asked for shows too.
      if (call.transfer === null || call.transfer.failed) call.transfer = newTransfer({});
      call.transfer.code = Number(msg.code) || 0;
      touch();
      break;
    }
    case 'call-answered':
    case 'call-resumed':
      if (setCallState(accountOf(state, name), id, 'active', now)) touch();
      break;
    case 'call-held':
      if (setCallState(accountOf(state, name), id, 'held', now)) touch();
      break;
    case 'call-ended':
      if (accountOf(state, name).calls.delete(id)) touch();
      break;
    case 'dtmf': {
      const call = accountOf(state, name).calls.get(id);
      if (!call) break;
      const received = call.dtmf.received;
      received.push({
        digit: String(msg.digit || '?'),
        method: msg.method || '',
        durationMs: Number(msg.duration_ms) || 0,
      });
      if (received.length > DTMF_KEEP) received.splice(0, received.length - DTMF_KEEP);
      call.dtmf.receivedTotal += 1;
      touch();
      break;
    }
    case 'dtmf-sent': {
      const call = accountOf(state, name).calls.get(id);
      if (!call) break;
      call.dtmf.sending.delete(msg.token);
      call.dtmf.sent = (call.dtmf.sent + (msg.digits || '')).slice(-DTMF_KEEP);
      touch();
      break;
    }
    case 'call-quality': {
      const call = accountOf(state, name).calls.get(id);
      if (!call) break;
      if (msg.codec) call.codec = msg.codec;
      call.quality = qualityOf(msg) || call.quality;
      touch();
      break;
    }
    default:
      break; // fail and anything new: nothing (more) to keep
  }
  return changed;
}

function newTransfer({ num = '', toCallId = null, toPeer = '', token = undefined }) {
  return { num, toCallId, toPeer, token, code: null, failed: '' };
}

// A broadcast fail "Transfer of call N failed: <why>" marks that call's
// transfer failed (the call stays up). Whether it named a call of `name`.
function failTransfer(state, name, error) {
  const match = /^Transfer of call (\d+) failed: (.*)$/s.exec(error || '');
  if (!match) return false;
  const account = state.accounts.get(name);
  const call = account && account.calls.get(Number(match[1]));
  if (!call) return false;
  if (call.transfer === null) call.transfer = newTransfer({});
  call.transfer.token = undefined;
  call.transfer.failed = match[2] || 'failed';
  return true;
}

// This page sent transfer-call with `token` for a call, to `num` (blind) or
// to the far end of call `toCallId` (attended): the call shows the transfer
// from now on. False for a call the state does not know.
export function noteTransferRequest(state, accountName, callId, token, { num = '', toCallId = null }) {
  const account = state.accounts.get(accountName);
  const call = account && account.calls.get(Number(callId));
  if (!call) return false;
  const other = toCallId === null ? undefined : account.calls.get(Number(toCallId));
  call.transfer = newTransfer({
    num,
    toCallId: toCallId === null ? null : Number(toCallId),
    toPeer: other ? other.peer : '',
    token,
  });
  return true;
}

// How a call's transfer goes, in one line ('' when there is none):
// "Transfer to 3003: requested…", "Transfer to 3003: 180 Ringing",
// "Transfer to 3004 (call 5) failed: 486 Busy Here".
export function transferText(call) {
  const transfer = call.transfer;
  if (transfer === null) return '';
  let target = '';
  if (transfer.num) {
    target = ` to ${transfer.num}`;
  } else if (transfer.toCallId !== null) {
    target = transfer.toPeer
      ? ` to ${transfer.toPeer} (call ${transfer.toCallId})`
      : ` to call ${transfer.toCallId}`;
  }
  if (transfer.failed) return `Transfer${target} failed: ${transfer.failed}`;
  if (transfer.code === null) return `Transfer${target}: requested…`;
  return `Transfer${target}: ${sipStatusLabel(transfer.code)}`;
}

// 'progress', 'failed' or '' (no transfer): for the page's colours.
export function transferOutcome(call) {
  if (call.transfer === null) return '';
  return call.transfer.failed ? 'failed' : 'progress';
}

// This page sent send-dtmf `digits` with `token` on a call: they show as
// being sent until dtmf-sent or a fail with that token answers. False for a
// call the state does not know.
export function noteDtmfRequest(state, accountName, callId, token, digits) {
  const account = state.accounts.get(accountName);
  const call = account && account.calls.get(Number(callId));
  if (!call) return false;
  call.dtmf.sending.set(token, digits);
  return true;
}

// The digits of this page's send-dtmf requests on `call` not answered yet,
// oldest first.
export function dtmfSending(call) {
  return [...call.dtmf.sending.values()].join('');
}

// The gateway refused the request of `token` (fail): a send-dtmf's digits
// are no longer being sent, a transfer-call's transfer is no longer shown
// (the account shows the fail). The name of its account, or undefined when
// no call waits for it.
function endRequest(state, token) {
  for (const account of state.accounts.values()) {
    for (const call of account.calls.values()) {
      if (call.dtmf.sending.delete(token)) return account.name;
      if (call.transfer !== null && call.transfer.token === token) {
        call.transfer = null;
        return account.name;
      }
    }
  }
  return undefined;
}

// A new session never gets the replies meant for the one before it: the
// requests still waiting are forgotten (a transfer the gateway took stays:
// its progress and outcome are broadcasts, replayed on resume). The names of
// the accounts touched.
function forgetRequests(state) {
  const names = new Set();
  for (const account of state.accounts.values()) {
    for (const call of account.calls.values()) {
      if (call.transfer !== null) call.transfer.token = undefined;
      if (call.dtmf.sending.size === 0) continue;
      call.dtmf.sending.clear();
      names.add(account.name);
    }
  }
  return [...names];
}

// A call's received packets lost, in percent (0 before any packet).
export function lossPercent(quality) {
  const expected = quality.packetsReceived + quality.packetsLost;
  return expected > 0 ? (100 * quality.packetsLost) / expected : 0;
}

// "MOS 4.38 · loss 0.2 % · jitter 1.3 ms · RTT 12 ms" for a call's
// quality ('' when the gateway reported none); the parts not known yet are
// left out.
export function qualityText(call) {
  const q = call.quality;
  if (!q) return '';
  const parts = [];
  if (q.mos !== null) parts.push(`MOS ${q.mos.toFixed(2)}`);
  if (q.packetsReceived > 0 || q.packetsLost > 0) {
    parts.push(`loss ${lossPercent(q).toFixed(1)} %`);
    parts.push(`jitter ${q.jitterMs.toFixed(1)} ms`);
  } else {
    parts.push('no audio received yet');
  }
  if (q.rttMs !== null) parts.push(`RTT ${q.rttMs.toFixed(1)} ms`);
  return parts.join(' · ');
}

// 'good' (MOS 4.0 or more), 'fair' (3.6 or more), 'poor', or '' while the
// MOS is unknown: for the page's colours (docs/audio.md, "Call quality").
export function qualityLevel(call) {
  const mos = call.quality && call.quality.mos;
  if (mos === null || mos === undefined) return '';
  if (mos >= 4.0) return 'good';
  if (mos >= 3.6) return 'fair';
  return 'poor';
}

// What a message is, for the log's filters.
export function categoryOf(msg) {
  switch (msg.event) {
    case 'call-quality':
      return 'quality';
    case 'account-status':
      return 'registration';
    case 'fail':
      return 'error';
    case 'dtmf':
    case 'transfer-progress':
      return 'call';
    case 'status':
    case 'call-return':
      return 'reply';
    case 'snapshot':
    case 'resumed':
    case 'gap':
      return 'connection';
    default:
      return msg.event && msg.event.startsWith('call-') ? 'call' : 'reply';
  }
}

// One line of text for the log.
export function describe(msg) {
  const call = msg.call_id !== undefined ? ` call ${msg.call_id}` : '';
  switch (msg.event) {
    case 'snapshot':
      return `snapshot of ${(msg.accounts || []).length} accounts at seq ${msg.seq}`;
    case 'resumed':
      return `resumed after seq ${msg.after_seq}: ${msg.replayed} missed events replayed`;
    case 'gap':
      return `events after seq ${msg.after_seq} are lost (${msg.reason}); starting afresh`;
    case 'account-status': {
      const label = registrationOf(msg.account_status).label;
      // The reason only where it adds something ("Registered (OK)" does not).
      const reason = msg.reason || '';
      const redundant =
        !reason || reason === 'OK' || label.toLowerCase().includes(reason.toLowerCase());
      return redundant ? label : `${label} (${reason})`;
    }
    case 'status':
      return `${registrationOf(msg.account_status).label}, ${(msg.calls || []).length} calls`;
    case 'fail':
      return msg.error || 'failed';
    case 'call-incoming':
      return `incoming${call} from ${msg.caller}${msg.caller_name ? ` (${msg.caller_name})` : ''}`;
    case 'call-return':
      return `dialling${call}`;
    case 'call-ringing':
      return `ringing${call} (${msg.code})`;
    case 'call-answered':
      return `answered${call}`;
    case 'call-held':
      return `held${call}`;
    case 'call-resumed':
      return `resumed${call}`;
    case 'call-ended': {
      // "(487 Request Terminated)", "(Transferred)", "(Hung up)".
      const why = [msg.code ? String(msg.code) : '', msg.reason || ''].filter(Boolean).join(' ');
      return `ended${call}${why ? ` (${why})` : ''}`;
    }
    case 'call-started':
      return `calling ${msg.num || '?'} on${call}: transferred from call ${msg.transferred_from}`;
    case 'call-progress':
      return `progress${call}: ${sipStatusLabel(msg.code)}${msg.early_media ? ', early media' : ''}`;
    case 'transfer-progress':
      return `transfer of${call}: ${sipStatusLabel(msg.code)}`;
    case 'dtmf': {
      const duration = msg.duration_ms ? `, ${msg.duration_ms} ms` : '';
      return `DTMF ${msg.digit} received${call ? ` on${call}` : ''} (${dtmfMethodLabel(msg.method)}${duration})`;
    }
    case 'dtmf-sent':
      return `DTMF ${msg.digits} sent${call ? ` on${call}` : ''}`;
    case 'call-quality': {
      const text = qualityText({ quality: qualityOf(msg) });
      return `quality of${call}${msg.codec ? ` (${msg.codec})` : ''}${text ? `: ${text}` : ''}`;
    }
    default:
      return msg.event || 'message';
  }
}

// "m:ss" or "h:mm:ss".
export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}
