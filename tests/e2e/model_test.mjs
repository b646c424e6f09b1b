// web/model.js and web/connection.js under Node's test runner: the state the
// dashboard builds from the gateway's messages, and the reconnect logic.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import test from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Under Bazel the dashboard is in the runfiles; by hand, beside this folder.
const web = process.env.TEST_SRCDIR
  ? join(process.env.TEST_SRCDIR, 'telestra', 'web')
  : join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
const model = await import(pathToFileURL(join(web, 'model.js')));
const connection = await import(pathToFileURL(join(web, 'connection.js')));
const { applyMessage, createState, registrationOf, describe, categoryOf, formatDuration } = model;

const snapshot = {
  event: 'snapshot',
  instance: 'abc',
  seq: 10,
  accounts: [
    { event: 'status', account: 'account-1', account_status: 200, calls: [], seq: 10 },
    {
      event: 'status',
      account: 'account-2',
      account_status: 0,
      calls: [{ call_id: 4, state: 'active', direction: 'incoming', peer: '3001', peer_name: 'A' }],
      seq: 10,
    },
  ],
};

test('a snapshot replaces the state and sets the resume point', () => {
  const state = createState();
  const changed = applyMessage(state, snapshot, { now: 1000 });
  assert.equal(changed.all, true);
  assert.equal(state.instance, 'abc');
  assert.equal(state.lastSeq, 10);
  assert.deepEqual([...state.accounts.keys()], ['account-1', 'account-2']);
  const call = state.accounts.get('account-2').calls.get(4);
  assert.equal(call.state, 'active');
  assert.equal(call.peer, '3001');
  assert.equal(call.activeSince, 1000);
});

test('events at or below lastSeq are duplicates and change nothing', () => {
  const state = createState();
  applyMessage(state, snapshot);
  const changed = applyMessage(state, {
    event: 'account-status', account: 'account-1', account_status: 0, reason: 'x', seq: 10,
  });
  assert.equal(changed.duplicate, true);
  assert.equal(state.accounts.get('account-1').status, 200);
});

test('registration events update the account', () => {
  const state = createState();
  applyMessage(state, snapshot);
  const changed = applyMessage(state, {
    event: 'account-status', account: 'account-1', account_status: 401, reason: 'Unauthorized', seq: 11,
  });
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(state.accounts.get('account-1').status, 401);
  assert.equal(state.lastSeq, 11);
  assert.deepEqual(registrationOf(401), { kind: 'failed', label: 'Failed: 401 Unauthorized', code: 401 });
  assert.equal(registrationOf(200).kind, 'registered');
  assert.equal(registrationOf(100).kind, 'registering');
  assert.equal(registrationOf(0).kind, 'logged-out');
  assert.equal(registrationOf(599).label, 'Failed: 599');
});

test('a call goes from call-return through answer, hold, resume to its end', () => {
  const state = createState();
  applyMessage(state, snapshot);
  const dialled = { w1: { num: '3002' } };
  applyMessage(state, { event: 'call-return', account: 'account-1', call_id: 7, token: 'w1', seq: 11 },
    { now: 5, dial: (t) => dialled[t] });
  let call = state.accounts.get('account-1').calls.get(7);
  assert.deepEqual([call.direction, call.peer, call.state], ['outgoing', '3002', 'dialing']);
  applyMessage(state, { event: 'call-ringing', account: 'account-1', call_id: 7, code: 180, seq: 12 });
  assert.equal(call.state, 'ringing');
  applyMessage(state, { event: 'call-answered', account: 'account-1', call_id: 7, seq: 13 }, { now: 50 });
  assert.equal(call.state, 'active');
  assert.equal(call.activeSince, 50);
  applyMessage(state, { event: 'call-held', account: 'account-1', call_id: 7, seq: 14 });
  assert.equal(call.state, 'held');
  applyMessage(state, { event: 'call-resumed', account: 'account-1', call_id: 7, seq: 15 });
  assert.equal(call.state, 'active');
  // A status keeps what the page knew (when it became active).
  applyMessage(state, {
    event: 'status', account: 'account-1', account_status: 200, seq: 16,
    calls: [{ call_id: 7, state: 'remote-held', direction: 'outgoing', peer: '3002', peer_name: '' }],
  }, { now: 99 });
  call = state.accounts.get('account-1').calls.get(7);
  assert.equal(call.state, 'remote-held');
  assert.equal(call.activeSince, 50);
  applyMessage(state, { event: 'call-ended', account: 'account-1', call_id: 7, code: 200, reason: 'BYE', seq: 17 });
  assert.equal(state.accounts.get('account-1').calls.size, 0);
});

test('an incoming call shows the caller', () => {
  const state = createState();
  applyMessage(state, snapshot);
  applyMessage(state, {
    event: 'call-incoming', account: 'account-1', call_id: 9, caller: '3005', caller_name: 'Eve', seq: 11,
  });
  const call = state.accounts.get('account-1').calls.get(9);
  assert.deepEqual([call.direction, call.peer, call.peerName, call.state], ['incoming', '3005', 'Eve', 'incoming']);
  assert.equal(describe({ event: 'call-incoming', call_id: 9, caller: '3005', caller_name: 'Eve' }),
    'incoming call 9 from 3005 (Eve)');
});

test('a snapshot of the same gateway keeps what the page knew; another gateway starts afresh', () => {
  const state = createState();
  applyMessage(state, snapshot, { now: 1 });
  state.accounts.get('account-1').user = '3001';
  applyMessage(state, { ...snapshot, seq: 20 }, { now: 2 });
  assert.equal(state.accounts.get('account-1').user, '3001');
  assert.equal(state.accounts.get('account-2').calls.get(4).activeSince, 1);
  applyMessage(state, { ...snapshot, instance: 'restarted', seq: 3 }, { now: 3 });
  assert.equal(state.accounts.get('account-1').user, '');
  assert.equal(state.accounts.get('account-2').calls.get(4).activeSince, 3);
  assert.equal(state.lastSeq, 3);
});

test('status reports user and server once the gateway sends them', () => {
  const state = createState();
  applyMessage(state, {
    event: 'status', account: 'a', account_status: 200, calls: [], user: '3001', server: 'pbx', seq: 1,
  });
  assert.equal(state.accounts.get('a').user, '3001');
  assert.equal(state.accounts.get('a').server, 'pbx');
});

test('log categories and texts', () => {
  assert.equal(categoryOf({ event: 'account-status' }), 'registration');
  assert.equal(categoryOf({ event: 'fail' }), 'error');
  assert.equal(categoryOf({ event: 'call-held' }), 'call');
  assert.equal(categoryOf({ event: 'status' }), 'reply');
  assert.equal(categoryOf({ event: 'gap' }), 'connection');
  assert.match(describe({ event: 'gap', after_seq: 3, reason: 'gone' }), /after seq 3 are lost/);
  assert.equal(describe({ event: 'call-ended', call_id: 2, code: 487, reason: 'Request Terminated' }),
    'ended call 2 (487 Request Terminated)');
  assert.equal(describe({ event: 'account-status', account_status: 200, reason: 'OK' }), 'Registered');
  assert.equal(describe({ event: 'account-status', account_status: 0, reason: 'Logged out' }), 'Logged out');
  assert.equal(describe({ event: 'account-status', account_status: 503, reason: 'No route' }),
    'Failed: 503 Service Unavailable (No route)');
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(61500), '1:01');
  assert.equal(formatDuration(3723000), '1:02:03');
});

// account-1 with an outgoing call 7 in `callState`.
function stateWithCall(callState) {
  const state = createState();
  applyMessage(state, snapshot, { now: 1 });
  applyMessage(state, {
    event: 'status', account: 'account-1', account_status: 200, seq: 11,
    calls: [{ call_id: 7, state: callState, direction: 'outgoing', peer: '3002', peer_name: '' }],
  });
  return state;
}

test('the keypad is offered for established calls only', () => {
  for (const callState of ['active', 'held', 'remote-held']) {
    const call = stateWithCall(callState).accounts.get('account-1').calls.get(7);
    assert.equal(model.offersKeypad(call), true, callState);
  }
  for (const callState of ['dialing', 'ringing', 'incoming', 'unknown']) {
    const call = stateWithCall(callState).accounts.get('account-1').calls.get(7);
    assert.equal(model.offersKeypad(call), false, callState);
  }
  // An incoming call gets it once answered.
  const state = createState();
  applyMessage(state, snapshot);
  applyMessage(state, { event: 'call-incoming', account: 'account-1', call_id: 9, caller: '3002', seq: 11 });
  const call = state.accounts.get('account-1').calls.get(9);
  assert.equal(model.offersKeypad(call), false);
  applyMessage(state, { event: 'call-answered', account: 'account-1', call_id: 9, seq: 12 });
  assert.equal(model.offersKeypad(call), true);
});

test('Listen and Talk are offered on established calls only', () => {
  for (const callState of ['active', 'held', 'remote-held']) {
    const call = stateWithCall(callState).accounts.get('account-1').calls.get(7);
    assert.equal(model.offersAudio(call), true, callState);
  }
  for (const callState of ['dialing', 'ringing', 'incoming', 'unknown']) {
    const call = stateWithCall(callState).accounts.get('account-1').calls.get(7);
    assert.equal(model.offersAudio(call), false, callState);
  }
});

test('the keypad has the 16 DTMF digits, and keys of the keyboard map onto them', () => {
  assert.deepEqual(model.KEYPAD_ROWS, ['123A', '456B', '789C', '*0#D']);
  assert.equal(new Set(model.KEYPAD_ROWS.join('')).size, 16);
  for (const digit of model.KEYPAD_ROWS.join('')) assert.equal(model.dtmfDigitOfKey(digit), digit);
  assert.equal(model.dtmfDigitOfKey('b'), 'B');
  for (const key of ['e', 'E', '+', ' ', 'Enter', 'ArrowUp', '', undefined]) {
    assert.equal(model.dtmfDigitOfKey(key), null, String(key));
  }
});

test('digits received are kept per call with their method, the newest 32', () => {
  const state = stateWithCall('active');
  const call = state.accounts.get('account-1').calls.get(7);
  let seq = 12;
  const changed = applyMessage(state, {
    event: 'dtmf', account: 'account-1', call_id: 7, digit: '5', duration_ms: 160, method: 'rfc4733', seq: seq++,
  });
  assert.deepEqual([...changed.accounts], ['account-1']);
  applyMessage(state, {
    event: 'dtmf', account: 'account-1', call_id: 7, digit: '#', duration_ms: 0, method: 'info', seq: seq++,
  });
  assert.deepEqual(call.dtmf.received, [
    { digit: '5', method: 'rfc4733', durationMs: 160 },
    { digit: '#', method: 'info', durationMs: 0 },
  ]);
  assert.equal(call.dtmf.receivedTotal, 2);
  // A duplicate (seq already applied) and a digit for an unknown call change nothing.
  applyMessage(state, { event: 'dtmf', account: 'account-1', call_id: 7, digit: '1', method: 'info', seq: 13 });
  const unknown = applyMessage(state, {
    event: 'dtmf', account: 'account-1', call_id: 8, digit: '1', method: 'info', seq: seq++,
  });
  assert.equal(unknown.accounts.size, 0);
  assert.equal(call.dtmf.receivedTotal, 2);
  // A status (the 3 s sync) keeps them.
  applyMessage(state, {
    event: 'status', account: 'account-1', account_status: 200, seq: seq++,
    calls: [{ call_id: 7, state: 'held', direction: 'outgoing', peer: '3002', peer_name: '' }],
  });
  const same = state.accounts.get('account-1').calls.get(7);
  assert.equal(same.dtmf.received.map((d) => d.digit).join(''), '5#');
  for (let i = 0; i < 40; i++) {
    applyMessage(state, {
      event: 'dtmf', account: 'account-1', call_id: 7, digit: String(i % 10), method: 'rfc4733', seq: seq++,
    });
  }
  assert.equal(same.dtmf.received.length, model.DTMF_KEEP);
  assert.equal(same.dtmf.receivedTotal, 42);
  assert.equal(same.dtmf.received.at(-1).digit, '9');
  assert.equal(same.dtmf.received[0].digit, '8'); // digit 8 of the 40
});

test('digits sent show as being sent until dtmf-sent confirms them', () => {
  const state = stateWithCall('active');
  const call = state.accounts.get('account-1').calls.get(7);
  assert.equal(model.noteDtmfRequest(state, 'account-1', 7, 'w1', '1'), true);
  assert.equal(model.noteDtmfRequest(state, 'account-1', 7, 'w2', '2'), true);
  assert.equal(model.noteDtmfRequest(state, 'account-1', 8, 'w3', '3'), false); // no such call
  assert.equal(model.noteDtmfRequest(state, 'nobody', 7, 'w4', '4'), false);
  assert.equal(model.dtmfSending(call), '12');
  assert.equal(call.dtmf.sent, '');
  const changed = applyMessage(state, {
    event: 'dtmf-sent', account: 'account-1', call_id: 7, digits: '1', token: 'w1', seq: 12,
  });
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(call.dtmf.sent, '1');
  assert.equal(model.dtmfSending(call), '2');
  applyMessage(state, { event: 'dtmf-sent', account: 'account-1', call_id: 7, digits: '2', token: 'w2', seq: 13 });
  assert.equal(call.dtmf.sent, '12');
  assert.equal(model.dtmfSending(call), '');
  // Digits confirmed without a request noted (the call was not known yet) count too.
  applyMessage(state, { event: 'dtmf-sent', account: 'account-1', call_id: 7, digits: '*#', seq: 14 });
  assert.equal(call.dtmf.sent, '12*#');
  // The newest 32 are kept.
  applyMessage(state, {
    event: 'dtmf-sent', account: 'account-1', call_id: 7, digits: '0123456789'.repeat(4), seq: 15,
  });
  assert.equal(call.dtmf.sent, '0123456789'.repeat(4).slice(-32));
});

test('a refused send-dtmf is no longer shown as being sent', () => {
  const state = stateWithCall('active');
  const call = state.accounts.get('account-1').calls.get(7);
  model.noteDtmfRequest(state, 'account-1', 7, 'w1', '1');
  model.noteDtmfRequest(state, 'account-1', 7, 'w2', '2');
  const changed = applyMessage(state, {
    event: 'fail', account: 'account-1', error: 'DTMF to call 7 failed: 415 Unsupported Media Type',
    kind: 'unavailable', token: 'w1', seq: 12,
  });
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(model.dtmfSending(call), '2');
  assert.equal(call.dtmf.sent, '');
  // A fail of another request leaves it alone.
  applyMessage(state, { event: 'fail', account: 'account-1', error: 'x', token: 'w9', seq: 13 });
  assert.equal(model.dtmfSending(call), '2');
});

test('a new session forgets the send-dtmf requests of the one before', () => {
  const state = stateWithCall('active');
  const call = state.accounts.get('account-1').calls.get(7);
  model.noteDtmfRequest(state, 'account-1', 7, 'w1', '1');
  const changed = applyMessage(state, { event: 'resumed', instance: 'abc', after_seq: 11, replayed: 0 });
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(model.dtmfSending(call), '');
  model.noteDtmfRequest(state, 'account-1', 7, 'w2', '2');
  applyMessage(state, {
    ...snapshot,
    seq: 20,
    accounts: [{
      event: 'status', account: 'account-1', account_status: 200, seq: 20,
      calls: [{ call_id: 7, state: 'active', direction: 'outgoing', peer: '3002', peer_name: '' }],
    }],
  });
  assert.equal(model.dtmfSending(state.accounts.get('account-1').calls.get(7)), '');
});

test('DTMF in the log', () => {
  const received = { event: 'dtmf', call_id: 7, digit: '5', duration_ms: 160, method: 'rfc4733' };
  assert.equal(categoryOf(received), 'call');
  assert.equal(describe(received), 'DTMF 5 received on call 7 (RFC 4733, 160 ms)');
  assert.equal(describe({ event: 'dtmf', call_id: 7, digit: '#', duration_ms: 0, method: 'info' }),
    'DTMF # received on call 7 (SIP INFO)');
  const sent = { event: 'dtmf-sent', call_id: 7, digits: '12*#' };
  assert.equal(categoryOf(sent), 'reply');
  assert.equal(describe(sent), 'DTMF 12*# sent on call 7');
});

// ------------------------------------------------------------- transfer

test('an established call offers a transfer; not while one is under way', () => {
  for (const callState of ['active', 'held', 'remote-held']) {
    const call = stateWithCall(callState).accounts.get('account-1').calls.get(7);
    assert.equal(model.offersTransfer(call), true, callState);
  }
  for (const callState of ['dialing', 'ringing', 'incoming']) {
    const call = stateWithCall(callState).accounts.get('account-1').calls.get(7);
    assert.equal(model.offersTransfer(call), false, callState);
  }
  const state = stateWithCall('active');
  const call = state.accounts.get('account-1').calls.get(7);
  assert.equal(model.transferText(call), '');
  assert.equal(model.noteTransferRequest(state, 'account-1', 7, 'w1', { num: '3003' }), true);
  assert.equal(model.noteTransferRequest(state, 'account-1', 8, 'w2', { num: '3003' }), false);
  assert.equal(model.offersTransfer(call), false);
});

test('a blind transfer shows its progress until the call ends Transferred', () => {
  const state = stateWithCall('active');
  const call = state.accounts.get('account-1').calls.get(7);
  model.noteTransferRequest(state, 'account-1', 7, 'w1', { num: '3003' });
  assert.equal(model.transferText(call), 'Transfer to 3003: requested…');
  assert.equal(model.transferOutcome(call), 'progress');
  let changed = applyMessage(state, {
    event: 'transfer-progress', account: 'account-1', call_id: 7, code: 100, seq: 12,
  });
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(model.transferText(call), 'Transfer to 3003: 100 Trying');
  applyMessage(state, { event: 'transfer-progress', account: 'account-1', call_id: 7, code: 180, seq: 13 });
  assert.equal(model.transferText(call), 'Transfer to 3003: 180 Ringing');
  // The 3 s status keeps it.
  applyMessage(state, {
    event: 'status', account: 'account-1', account_status: 200, seq: 14,
    calls: [{ call_id: 7, state: 'active', direction: 'outgoing', peer: '3002', peer_name: '' }],
  });
  const same = state.accounts.get('account-1').calls.get(7);
  assert.equal(model.transferText(same), 'Transfer to 3003: 180 Ringing');
  applyMessage(state, { event: 'transfer-progress', account: 'account-1', call_id: 7, code: 200, seq: 15 });
  assert.equal(model.transferText(same), 'Transfer to 3003: 200 OK');
  const ended = { event: 'call-ended', account: 'account-1', call_id: 7, code: 0, reason: 'Transferred', seq: 16 };
  changed = applyMessage(state, ended);
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(state.accounts.get('account-1').calls.size, 0);
  assert.equal(describe(ended), 'ended call 7 (Transferred)');
  assert.equal(categoryOf(ended), 'call');
});

test('a failed transfer shows on the call, which stays and can be transferred again', () => {
  const state = stateWithCall('active');
  const call = state.accounts.get('account-1').calls.get(7);
  model.noteTransferRequest(state, 'account-1', 7, 'w1', { num: '3007' });
  applyMessage(state, { event: 'transfer-progress', account: 'account-1', call_id: 7, code: 100, seq: 12 });
  applyMessage(state, { event: 'transfer-progress', account: 'account-1', call_id: 7, code: 404, seq: 13 });
  const changed = applyMessage(state, {
    event: 'fail', account: 'account-1', error: 'Transfer of call 7 failed: 404 Not Found', seq: 14,
  });
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(call.state, 'active');
  assert.equal(model.transferText(call), 'Transfer to 3007 failed: 404 Not Found');
  assert.equal(model.transferOutcome(call), 'failed');
  assert.equal(model.offersTransfer(call), true);
  // Another attempt replaces the failed one.
  model.noteTransferRequest(state, 'account-1', 7, 'w2', { toCallId: 9 });
  assert.equal(model.transferText(call), 'Transfer to call 9: requested…');
  // A failed transfer of a call the page does not know, or another account's, changes nothing.
  for (const msg of [
    { event: 'fail', account: 'account-1', error: 'Transfer of call 8 failed: 486 Busy Here', seq: 15 },
    { event: 'fail', account: 'account-2', error: 'Transfer of call 7 failed: 486 Busy Here', seq: 16 },
    { event: 'fail', account: 'account-1', error: 'Call 7 is not established', seq: 17 },
  ]) {
    assert.equal(applyMessage(state, msg).accounts.size, 0, msg.error);
  }
  assert.equal(model.transferText(call), 'Transfer to call 9: requested…');
});

test('a transfer-call the gateway refuses at once is no longer shown (the account shows the fail)', () => {
  const state = stateWithCall('active');
  const call = state.accounts.get('account-1').calls.get(7);
  model.noteTransferRequest(state, 'account-1', 7, 'w1', { num: 'bad number' });
  const changed = applyMessage(state, {
    event: 'fail', account: 'account-1', error: 'Invalid number: bad number', token: 'w1', seq: 12,
  });
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(call.transfer, null);
  assert.equal(model.offersTransfer(call), true);
});

test('a transfer another client asked for shows its progress too', () => {
  const state = stateWithCall('held');
  const call = state.accounts.get('account-1').calls.get(7);
  applyMessage(state, { event: 'transfer-progress', account: 'account-1', call_id: 7, code: 180, seq: 12 });
  assert.equal(model.transferText(call), 'Transfer: 180 Ringing');
  assert.equal(model.offersTransfer(call), false);
  // A code without a phrase here.
  applyMessage(state, { event: 'transfer-progress', account: 'account-1', call_id: 7, code: 199, seq: 13 });
  assert.equal(model.transferText(call), 'Transfer: 199');
  // For a call the page does not know: nothing.
  assert.equal(applyMessage(state, {
    event: 'transfer-progress', account: 'account-1', call_id: 8, code: 180, seq: 14,
  }).accounts.size, 0);
});

test('a new session keeps the transfer the gateway took, but not the token of its request', () => {
  const state = stateWithCall('active');
  model.noteTransferRequest(state, 'account-1', 7, 'w1', { num: '3003' });
  applyMessage(state, { event: 'resumed', instance: 'abc', after_seq: 11, replayed: 0 });
  const call = state.accounts.get('account-1').calls.get(7);
  assert.equal(model.transferText(call), 'Transfer to 3003: requested…');
  // A fail with the old token (another session's) does not end it.
  applyMessage(state, { event: 'fail', account: 'account-1', error: 'x', token: 'w1', seq: 12 });
  assert.equal(model.transferText(call), 'Transfer to 3003: requested…');
});

test('the targets of an attended transfer are the account\'s other established calls', () => {
  const state = createState();
  applyMessage(state, snapshot);
  applyMessage(state, {
    event: 'status', account: 'account-1', account_status: 200, seq: 11,
    calls: [
      { call_id: 1, state: 'active', direction: 'outgoing', peer: '3002', peer_name: '' },
      { call_id: 2, state: 'held', direction: 'outgoing', peer: '3003', peer_name: '' },
      { call_id: 3, state: 'ringing', direction: 'outgoing', peer: '3004', peer_name: '' },
      { call_id: 4, state: 'remote-held', direction: 'incoming', peer: '3005', peer_name: '' },
    ],
  });
  const account = state.accounts.get('account-1');
  const ids = (call) => model.transferTargets(account, call).map((c) => c.id);
  assert.deepEqual(ids(account.calls.get(1)), [2, 4]);
  assert.deepEqual(ids(account.calls.get(2)), [1, 4]);
  // Attended: the call shows the far end it goes to.
  model.noteTransferRequest(state, 'account-1', 1, 'w1', { toCallId: 2 });
  assert.equal(model.transferText(account.calls.get(1)), 'Transfer to 3003 (call 2): requested…');
  applyMessage(state, { event: 'transfer-progress', account: 'account-1', call_id: 1, code: 180, seq: 12 });
  assert.equal(model.transferText(account.calls.get(1)), 'Transfer to 3003 (call 2): 180 Ringing');
  applyMessage(state, { event: 'call-ended', account: 'account-1', call_id: 2, code: 0, reason: 'Hung up', seq: 13 });
  assert.deepEqual(ids(account.calls.get(1)), [4]);
});

test('call-started: the far end transferred us and the account calls by itself', () => {
  const state = stateWithCall('active'); // account-1's call 7 with 3002
  const started = {
    event: 'call-started', account: 'account-1', call_id: 12, num: '3003', transferred_from: 7, seq: 12,
  };
  const changed = applyMessage(state, started, { now: 40 });
  assert.deepEqual([...changed.accounts], ['account-1']);
  const account = state.accounts.get('account-1');
  const call = account.calls.get(12);
  assert.deepEqual(
    [call.direction, call.peer, call.state, call.transferredFrom, call.since],
    ['outgoing', '3003', 'dialing', 7, 40],
  );
  assert.deepEqual(account.calls.get(7).referredTo, { callId: 12, num: '3003' });
  // Then the events of an outgoing call; a status keeps where it came from.
  applyMessage(state, { event: 'call-ringing', account: 'account-1', call_id: 12, code: 180, seq: 13 });
  assert.equal(call.state, 'ringing');
  applyMessage(state, {
    event: 'status', account: 'account-1', account_status: 200, seq: 14,
    calls: [
      { call_id: 7, state: 'active', direction: 'outgoing', peer: '3002', peer_name: '' },
      { call_id: 12, state: 'ringing', direction: 'outgoing', peer: '3003', peer_name: '' },
    ],
  });
  assert.equal(account.calls.get(12).transferredFrom, 7);
  assert.deepEqual(account.calls.get(7).referredTo, { callId: 12, num: '3003' });
  applyMessage(state, { event: 'call-answered', account: 'account-1', call_id: 12, seq: 15 });
  assert.equal(account.calls.get(12).state, 'active');
  assert.equal(categoryOf(started), 'call');
  assert.equal(describe(started), 'calling 3003 on call 12: transferred from call 7');
});

test('call-progress: early media while the call rings', () => {
  const state = stateWithCall('dialing');
  const call = state.accounts.get('account-1').calls.get(7);
  assert.equal(model.hasEarlyMedia(call), false);
  applyMessage(state, { event: 'call-ringing', account: 'account-1', call_id: 7, code: 180, seq: 12 });
  const ringing = { event: 'call-progress', account: 'account-1', call_id: 7, code: 180, early_media: false, seq: 13 };
  applyMessage(state, ringing);
  assert.deepEqual(call.progress, { code: 180, earlyMedia: false });
  assert.equal(model.hasEarlyMedia(call), false);
  const early = { event: 'call-progress', account: 'account-1', call_id: 7, code: 183, early_media: true, seq: 14 };
  const changed = applyMessage(state, early);
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(model.hasEarlyMedia(call), true);
  // The 3 s status keeps it.
  applyMessage(state, {
    event: 'status', account: 'account-1', account_status: 200, seq: 15,
    calls: [{ call_id: 7, state: 'ringing', direction: 'outgoing', peer: '3002', peer_name: '' }],
  });
  const same = state.accounts.get('account-1').calls.get(7);
  assert.equal(model.hasEarlyMedia(same), true);
  // Answered: a call that talks has no early media.
  applyMessage(state, { event: 'call-answered', account: 'account-1', call_id: 7, seq: 16 });
  assert.equal(model.hasEarlyMedia(same), false);
  assert.equal(describe(early), 'progress call 7: 183 Session Progress, early media');
  assert.equal(describe(ringing), 'progress call 7: 180 Ringing');
  assert.equal(categoryOf(early), 'call');
  // Early media that stops.
  const other = stateWithCall('ringing');
  const again = other.accounts.get('account-1').calls.get(7);
  applyMessage(other, { ...early, seq: 12 });
  applyMessage(other, { ...ringing, seq: 13 });
  assert.equal(model.hasEarlyMedia(again), false);
});

test('transfer progress and call ends in the log', () => {
  const progress = { event: 'transfer-progress', account: 'account-1', call_id: 7, code: 180 };
  assert.equal(categoryOf(progress), 'call');
  assert.equal(describe(progress), 'transfer of call 7: 180 Ringing');
  assert.equal(describe({ event: 'call-ended', call_id: 3, code: 0, reason: 'Hung up' }), 'ended call 3 (Hung up)');
  assert.equal(describe({ event: 'call-ended', call_id: 3 }), 'ended call 3');
  assert.equal(model.sipStatusLabel(486), '486 Busy Here');
});

test('the socket URL resumes only with an instance and a seq', () => {
  const http = { protocol: 'http:', host: '127.0.0.1:3552' };
  assert.equal(connection.socketUrl(http, null), 'ws://127.0.0.1:3552/ws');
  assert.equal(connection.socketUrl(http, { instance: '', lastSeq: 5 }), 'ws://127.0.0.1:3552/ws');
  assert.equal(connection.socketUrl({ protocol: 'https:', host: 'gw' }, { instance: 'ab', lastSeq: 5 }),
    'wss://gw/ws?after_seq=5&instance=ab');
});

test('backoff doubles up to the ceiling, with jitter in its upper half', () => {
  const low = () => 0;
  const high = () => 1;
  assert.equal(connection.backoffDelay(0, { random: low }), 250);
  assert.equal(connection.backoffDelay(0, { random: high }), 500);
  assert.equal(connection.backoffDelay(3, { random: high }), 4000);
  assert.equal(connection.backoffDelay(30, { random: high }), 15000);
  assert.equal(connection.backoffDelay(30, { random: low }), 7500);
});

// A stand-in WebSocket the test drives by hand.
class FakeSocket {
  static last = null;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.last = this;
  }
  open() { this.readyState = 1; }
  receive(msg) { this.onmessage({ data: JSON.stringify(msg) }); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose({ code, reason });
  }
}

test('the connection reconnects with backoff and resumes from the last seq', async () => {
  const timers = [];
  const states = [];
  const resume = { instance: '', lastSeq: 0 };
  const conn = new connection.GatewayConnection({
    location: { protocol: 'http:', host: 'gw' },
    resumePoint: () => resume,
    onMessage: (msg) => {
      if (msg.event === 'snapshot') Object.assign(resume, { instance: msg.instance, lastSeq: msg.seq });
    },
    onState: (state, detail) => states.push([state, detail]),
    WebSocket: FakeSocket,
    fetch: async () => ({ status: 426 }),
    setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimeout: () => {},
    backoff: { minMs: 100, maxMs: 1000, random: () => 1 },
  });
  conn.start();
  assert.equal(FakeSocket.last.url, 'ws://gw/ws');
  assert.equal(conn.send({ cmd: 'get-status' }), false); // not open yet
  FakeSocket.last.open();
  FakeSocket.last.receive({ event: 'snapshot', instance: 'i1', seq: 42, accounts: [] });
  assert.equal(conn.state, 'open');
  assert.equal(conn.send({ cmd: 'get-status', account: 'a' }), true);
  assert.deepEqual(FakeSocket.last.sent, [{ cmd: 'get-status', account: 'a' }]);

  FakeSocket.last.close(1006);
  assert.equal(conn.state, 'waiting');
  assert.equal(timers.at(-1).ms, 100);
  timers.at(-1).fn();
  assert.equal(FakeSocket.last.url, 'ws://gw/ws?after_seq=42&instance=i1');
  // Fails again before opening: the delay doubles, the token is checked.
  FakeSocket.last.close(1006);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(conn.state, 'waiting');
  assert.equal(timers.at(-1).ms, 200);
  timers.at(-1).fn();
  FakeSocket.last.open();
  FakeSocket.last.receive({ event: 'resumed', instance: 'i1', after_seq: 42, replayed: 0 });
  assert.equal(conn.state, 'open');
  // A success resets the backoff.
  FakeSocket.last.close(1001);
  assert.equal(timers.at(-1).ms, 100);
  conn.stop();
  assert.equal(conn.state, 'stopped');
});

test('a refused token is reported as unauthorized', async () => {
  const conn = new connection.GatewayConnection({
    location: { protocol: 'http:', host: 'gw' },
    onMessage: () => {},
    WebSocket: FakeSocket,
    fetch: async () => ({ status: 401 }),
    setTimeout: () => 1,
    clearTimeout: () => {},
  });
  conn.start();
  FakeSocket.last.close(1006);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(conn.state, 'unauthorized');
  conn.stop();
});

// ------------------------------------------------ call details and quality

const detailedStatus = (seq) => ({
  event: 'status', account: 'account-1', account_status: 200, user: '3001', server: 'pbx:5060',
  registration_expires: '2027-01-01T12:05:00.000Z', seq,
  calls: [{
    call_id: 3, state: 'active', direction: 'outgoing', peer: '3002', peer_name: '',
    start_time: '2027-01-01T12:00:00.000Z', answer_time: '2027-01-01T12:00:02.500Z',
    codec: 'PCMA', sip_call_id: 'c1@pc', remote_uri: 'sip:3002@pbx:5060',
    packets_received: 990, packets_lost: 10, jitter_ms: 1.25, rtt_ms: 12.5, mos: 4.12,
  }],
});

test('a call takes its start and answer times from the gateway, so a reload keeps them', () => {
  const state = createState();
  applyMessage(state, detailedStatus(1), { now: Date.parse('2027-01-01T12:10:00Z') });
  const account = state.accounts.get('account-1');
  assert.equal(account.user, '3001');
  assert.equal(account.server, 'pbx:5060');
  assert.equal(account.registrationExpires, Date.parse('2027-01-01T12:05:00Z'));
  let call = account.calls.get(3);
  assert.equal(call.since, Date.parse('2027-01-01T12:00:00Z'));
  assert.equal(call.activeSince, Date.parse('2027-01-01T12:00:02.500Z'));
  assert.deepEqual([call.codec, call.sipCallId, call.remoteUri], ['PCMA', 'c1@pc', 'sip:3002@pbx:5060']);
  // A page loaded later (a new state from the snapshot) shows the same times.
  const reloaded = createState();
  applyMessage(reloaded, { event: 'snapshot', instance: 'x', seq: 5, accounts: [detailedStatus(5)] },
    { now: Date.parse('2027-01-01T13:00:00Z') });
  call = reloaded.accounts.get('account-1').calls.get(3);
  assert.equal(call.activeSince, Date.parse('2027-01-01T12:00:02.500Z'));
  // Not registered: no expiry.
  applyMessage(state, { event: 'status', account: 'account-1', account_status: 0, calls: [], seq: 2 });
  assert.equal(state.accounts.get('account-1').registrationExpires, null);
});

test('a call shows its quality from status and call-quality events', () => {
  const state = createState();
  applyMessage(state, detailedStatus(1));
  const call = state.accounts.get('account-1').calls.get(3);
  assert.deepEqual(call.quality, { packetsReceived: 990, packetsLost: 10, jitterMs: 1.25, rttMs: 12.5, mos: 4.12 });
  assert.equal(model.qualityText(call), 'MOS 4.12 · loss 1.0 % · jitter 1.3 ms · RTT 12.5 ms');
  assert.equal(model.qualityLevel(call), 'good');
  const changed = applyMessage(state, {
    event: 'call-quality', account: 'account-1', call_id: 3, codec: 'PCMA',
    packets_received: 1900, packets_lost: 100, jitter_ms: 30, mos: 2.51, seq: 2,
  });
  assert.deepEqual([...changed.accounts], ['account-1']);
  assert.equal(model.qualityText(call), 'MOS 2.51 · loss 5.0 % · jitter 30.0 ms');
  assert.equal(model.qualityLevel(call), 'poor');
  // A status without figures (an older gateway) keeps what was known.
  applyMessage(state, {
    event: 'status', account: 'account-1', account_status: 200, seq: 3,
    calls: [{ call_id: 3, state: 'active', direction: 'outgoing', peer: '3002', peer_name: '' }],
  });
  assert.equal(state.accounts.get('account-1').calls.get(3).quality.mos, 2.51);
  assert.equal(state.accounts.get('account-1').calls.get(3).codec, 'PCMA');
});

test('a call without audio yet, or without a MOS, says so', () => {
  const call = { quality: { packetsReceived: 0, packetsLost: 0, jitterMs: 0, rttMs: null, mos: null } };
  assert.equal(model.qualityText(call), 'no audio received yet');
  assert.equal(model.qualityLevel(call), '');
  assert.equal(model.qualityText({ quality: null }), '');
  assert.equal(model.qualityLevel({ quality: { ...call.quality, mos: 3.7 } }), 'fair');
});

test('call-quality events have their own log category and line', () => {
  const msg = {
    event: 'call-quality', account: 'a', call_id: 3, codec: 'PCMU',
    packets_received: 250, packets_lost: 0, jitter_ms: 0.5, rtt_ms: 1, mos: 4.38,
  };
  assert.equal(categoryOf(msg), 'quality');
  assert.equal(describe(msg), 'quality of call 3 (PCMU): MOS 4.38 · loss 0.0 % · jitter 0.5 ms · RTT 1.0 ms');
});
