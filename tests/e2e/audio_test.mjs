// The dashboard's call audio under Node's test runner: web/audio-dsp.js (PCM,
// levels, resampler, framing, jitter buffer), web/audio-socket.js (the
// /ws/audio protocol, with a stand-in WebSocket) and the processors of
// web/audio-worklet.js (with stand-ins for the AudioWorklet globals).
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import test from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

// Under Bazel the dashboard is in the runfiles; by hand, beside this folder.
const web = process.env.TEST_SRCDIR
  ? join(process.env.TEST_SRCDIR, 'telestra', 'web')
  : join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
const dsp = await import(pathToFileURL(join(web, 'audio-dsp.js')));
const audioSocket = await import(pathToFileURL(join(web, 'audio-socket.js')));
const { AUDIO_STATE, AudioSocket } = audioSocket;

// ------------------------------------------------------------- helpers

function sine(hz, rate, seconds, amplitude = 0.5) {
  const samples = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < samples.length; i++) samples[i] = amplitude * Math.sin((2 * Math.PI * hz * i) / rate);
  return samples;
}

// The share (0..1) of the signal's energy at `hz` (Goertzel, over a whole
// number of periods or near enough).
function toneShare(samples, rate, hz) {
  const w = (2 * Math.PI * hz) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (const x of samples) {
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += x * x;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return energy > 0 ? (2 * power) / (samples.length * energy) : 0;
}

function concat(chunks) {
  const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

// Feeds `input` to a resampler in blocks of `block` samples.
function resampleInBlocks(resampler, input, block) {
  const chunks = [];
  for (let i = 0; i < input.length; i += block) chunks.push(resampler.process(input.subarray(i, i + block)));
  return concat(chunks);
}

// ----------------------------------------------------------------- PCM

test('frames are 20 ms: 160 samples (320 bytes) at 8 kHz, 320 (640) at 16 kHz', () => {
  assert.equal(dsp.frameSamples(8000), 160);
  assert.equal(dsp.frameBytes(8000), 320);
  assert.equal(dsp.frameSamples(16000), 320);
  assert.equal(dsp.frameBytes(16000), 640);
});

test('PCM is signed 16-bit little-endian, clamped; decoding gives the samples back', () => {
  const pcm = dsp.encodePcm16(Float32Array.of(0, 1, -1, 0.5, -0.5, 3, -3, NaN));
  assert.deepEqual(
    [...new Uint8Array(pcm)],
    [0x00, 0x00, 0xff, 0x7f, 0x00, 0x80, 0x00, 0x40, 0x00, 0xc0, 0xff, 0x7f, 0x00, 0x80, 0x00, 0x00],
  );
  const back = dsp.decodePcm16(pcm);
  assert.deepEqual([...back.subarray(0, 3)], [0, 1, -1]);
  assert.ok(Math.abs(back[3] - 0.5) < 1 / 32767);
  assert.ok(Math.abs(back[4] + 0.5) < 1 / 32767);
  // A view into a larger buffer, and an odd last byte.
  const bytes = new Uint8Array([9, 0xff, 0x7f, 0x00, 0x80, 7]);
  assert.deepEqual([...dsp.decodePcm16(bytes.subarray(1))], [1, -1]);
});

test('levels: RMS of floats and of PCM, and the meter in dB from -60 to 0 dBFS', () => {
  const tone = sine(1000, 8000, 0.02, 1);
  assert.ok(Math.abs(dsp.rms(tone) - Math.SQRT1_2) < 1e-3);
  assert.ok(Math.abs(dsp.rmsOfPcm16(dsp.encodePcm16(tone)) - Math.SQRT1_2) < 1e-3);
  assert.equal(dsp.rms(new Float32Array(0)), 0);
  assert.equal(dsp.rmsOfPcm16(new ArrayBuffer(0)), 0);
  assert.equal(dsp.meterLevel(0), 0);
  assert.equal(dsp.meterLevel(1), 1);
  assert.equal(dsp.meterLevel(0.0001), 0);
  assert.ok(Math.abs(dsp.meterLevel(10 ** (-30 / 20)) - 0.5) < 1e-9);
});

test('a level meter is the RMS of the newest frames', () => {
  const meter = new dsp.LevelMeter(2);
  assert.equal(meter.rms(), 0);
  meter.add(0.5);
  assert.equal(meter.rms(), 0.5);
  meter.add(0);
  assert.ok(Math.abs(meter.rms() - Math.sqrt(0.125)) < 1e-12);
  meter.add(0); // the 0.5 rolls out
  assert.equal(meter.rms(), 0);
  meter.add(1);
  assert.ok(meter.level() > 0.9);
  meter.reset();
  assert.equal(meter.level(), 0);
});

// ----------------------------------------------------------- resampler

test('the resampler keeps a tone and its level, 44.1 kHz down to 16 kHz', () => {
  const resampler = new dsp.Resampler(44100, 16000);
  const out = resampleInBlocks(resampler, sine(700, 44100, 1), 128);
  // One second in, one second out, but for the filter's delay.
  assert.ok(Math.abs(out.length - 16000) <= resampler.halfWidth, `${out.length} samples`);
  const steady = out.subarray(200, 15800);
  assert.ok(toneShare(steady, 16000, 700) > 0.99, `share ${toneShare(steady, 16000, 700)}`);
  const gainDb = 20 * Math.log10(dsp.rms(steady) / (0.5 * Math.SQRT1_2));
  assert.ok(Math.abs(gainDb) < 0.2, `gain ${gainDb} dB`);
});

test('the resampler stops what the lower rate cannot carry (no aliases)', () => {
  // 12 kHz fits 44.1 kHz but not 16 kHz (it would fold to 4 kHz).
  const out = new dsp.Resampler(44100, 16000).process(sine(12000, 44100, 0.5));
  const leakDb = 20 * Math.log10(dsp.rms(out.subarray(200)) / (0.5 * Math.SQRT1_2));
  assert.ok(leakDb < -50, `12 kHz leaks at ${leakDb} dB`);
});

test('the resampler keeps a tone up from 16 kHz to 48 kHz with no image', () => {
  const out = new dsp.Resampler(16000, 48000).process(sine(440, 16000, 1));
  assert.ok(Math.abs(out.length - 48000) <= 30, `${out.length} samples`);
  const steady = out.subarray(600, 47400);
  assert.ok(toneShare(steady, 48000, 440) > 0.99);
  // The image of 440 Hz around the old rate, 16000 - 440 Hz.
  assert.ok(toneShare(steady, 48000, 15560) < 1e-5, `image share ${toneShare(steady, 48000, 15560)}`);
  const gainDb = 20 * Math.log10(dsp.rms(steady) / (0.5 * Math.SQRT1_2));
  assert.ok(Math.abs(gainDb) < 0.2, `gain ${gainDb} dB`);
});

test('the resampler passes a constant level at unity gain', () => {
  for (const [from, to] of [[48000, 16000], [44100, 8000], [8000, 44100], [16000, 16000]]) {
    const out = new dsp.Resampler(from, to).process(new Float32Array(from / 10).fill(0.5));
    const settled = out.subarray(100);
    for (const x of settled) assert.ok(Math.abs(x - 0.5) < 2e-3, `${from} -> ${to}: ${x}`);
  }
});

test('the resampler gives the same output in blocks of any size as at once', () => {
  const input = sine(1234, 44100, 0.3);
  const whole = new dsp.Resampler(44100, 16000).process(input);
  for (const block of [1, 128, 441, 5000]) {
    const blocks = resampleInBlocks(new dsp.Resampler(44100, 16000), input, block);
    assert.equal(blocks.length, whole.length, `blocks of ${block}`);
    for (let i = 0; i < whole.length; i++) assert.ok(Math.abs(blocks[i] - whole[i]) < 1e-6);
  }
  assert.throws(() => new dsp.Resampler(0, 8000), RangeError);
});

// -------------------------------------------------------- frames, playout

test('the chunker cuts blocks into whole frames and keeps the rest for the next', () => {
  const chunker = new dsp.FrameChunker(320);
  const ramp = Float32Array.from({ length: 1000 }, (_, i) => i / 1000);
  const frames = [];
  for (let i = 0; i < ramp.length; i += 128) frames.push(...chunker.push(ramp.subarray(i, i + 128)));
  assert.equal(frames.length, 3); // 960 of 1000 samples
  assert.deepEqual([...frames[2]], [...ramp.subarray(640, 960)]);
  assert.equal(chunker.filled, 40);
});

test('playout waits for its target, plays in order, and plays silence on an underrun', () => {
  const buffer = new dsp.PlayoutBuffer(1000, { targetMs: 10, maxMs: 50 }); // 10 samples
  const out = new Float32Array(4);
  buffer.push(Float32Array.of(1, 2, 3, 4, 5, 6));
  buffer.pull(out);
  assert.deepEqual([...out], [0, 0, 0, 0]); // 6 < 10: still filling
  buffer.push(Float32Array.of(7, 8, 9, 10));
  buffer.pull(out);
  assert.deepEqual([...out], [1, 2, 3, 4]);
  buffer.pull(out);
  buffer.pull(out);
  assert.deepEqual([...out], [9, 10, 0, 0]);
  assert.equal(buffer.underruns, 1);
  buffer.push(Float32Array.of(11, 12));
  buffer.pull(out);
  assert.deepEqual([...out], [0, 0, 0, 0]); // filling again
  assert.equal(buffer.underruns, 1);
});

test('playout past its maximum drops the oldest audio down to the target', () => {
  const buffer = new dsp.PlayoutBuffer(1000, { targetMs: 10, maxMs: 50 });
  buffer.push(Float32Array.from({ length: 45 }, (_, i) => i));
  buffer.push(Float32Array.from({ length: 10 }, (_, i) => 100 + i));
  assert.equal(buffer.queued, 10);
  assert.equal(buffer.droppedSamples, 45);
  const out = new Float32Array(10);
  buffer.pull(out);
  assert.deepEqual([...out], [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
  // More than fits at once: only the newest maxMs are kept.
  buffer.push(new Float32Array(70));
  assert.equal(buffer.queued, 50);
  assert.equal(buffer.droppedSamples, 65);
});

// ------------------------------------------------------------- worklet

test('the worklet: a tone captured at 44.1 kHz goes out as 16 kHz frames and plays back', async () => {
  const processors = {};
  globalThis.sampleRate = 44100;
  globalThis.AudioWorkletProcessor = class {
    constructor() {
      this.port = { onmessage: null, sent: [], postMessage: (data) => this.port.sent.push(data) };
    }
  };
  globalThis.registerProcessor = (name, processor) => {
    processors[name] = processor;
  };
  await import(pathToFileURL(join(web, 'audio-worklet.js')));
  assert.deepEqual(Object.keys(processors).sort(), ['telestra-capture', 'telestra-playout']);
  const options = { processorOptions: { streamRate: 16000 } };
  const capture = new processors['telestra-capture'](options);
  const playout = new processors['telestra-playout'](options);

  // One second of microphone in render quanta of 128 samples.
  const tone = sine(700, 44100, 1);
  for (let i = 0; i + 128 <= tone.length; i += 128) {
    assert.equal(capture.process([[tone.subarray(i, i + 128)]], [[new Float32Array(128)]]), true);
  }
  const frames = capture.port.sent;
  assert.ok(frames.length >= 48 && frames.length <= 50, `${frames.length} frames`);
  for (const frame of frames) {
    assert.equal(frame.pcm.byteLength, 640);
    assert.ok(frame.rms > 0.3 || frame === frames[0], `rms ${frame.rms}`);
  }
  const sent = concat(frames.map((frame) => dsp.decodePcm16(frame.pcm)));
  assert.ok(toneShare(sent.subarray(320), 16000, 700) > 0.99);

  // The frames played back as they come, one per 20 ms: silence while the
  // buffer fills to 60 ms, then the tone, then silence when they stop.
  const played = [];
  let next = 0;
  for (let i = 0; i < 400; i++) {
    while (next < frames.length && next * 0.02 <= (i * 128) / 44100) {
      playout.port.onmessage({ data: { pcm: frames[next++].pcm } });
    }
    const block = new Float32Array(128);
    assert.equal(playout.process([], [[block]]), true);
    played.push(block);
  }
  const audio = concat(played);
  assert.ok(audio.subarray(0, 2000).every((x) => x === 0), 'silence while filling');
  assert.ok(toneShare(audio.subarray(4000, 40000), 44100, 700) > 0.99);
  assert.ok(audio.subarray(48000).every((x) => x === 0), 'silence after the last frame');
  // It reports its counters about 4 times a second; it ran dry once, after the last frame.
  assert.ok(playout.port.sent.length >= 3);
  assert.deepEqual(Object.keys(playout.port.sent[0]).sort(), ['droppedMs', 'queuedMs', 'underruns']);
  assert.equal(playout.buffer.underruns, 1);
  assert.equal(playout.buffer.droppedSamples, 0);
  playout.port.onmessage({ data: { stop: true } });
  assert.equal(playout.process([], [[new Float32Array(128)]]), false);
});

// ------------------------------------------------------------- /ws/audio

test('the stream URL names account, call, rate and direction (wss: on https)', () => {
  assert.equal(
    audioSocket.audioSocketUrl({ protocol: 'http:', host: '127.0.0.1:3552' }, {
      account: 'account 1&2', callId: 7, rate: 16000, direction: 'listen',
    }),
    'ws://127.0.0.1:3552/ws/audio?account=account+1%262&call_id=7&rate=16000&direction=listen',
  );
  assert.equal(
    audioSocket.audioSocketUrl({ protocol: 'https:', host: 'gw' }, { account: 'a', callId: 1, direction: 'speak' }),
    'wss://gw/ws/audio?account=a&call_id=1&rate=16000&direction=speak',
  );
});

test('status lines and refusals in words', () => {
  const { audioStatusText: text, refusalText } = audioSocket;
  assert.equal(text('listen', 'connecting'), 'Listen: connecting…');
  assert.equal(text('speak', 'connecting', { text: 'Talk: asking for the microphone…' }), 'Talk: asking for the microphone…');
  assert.equal(text('listen', 'started', { codec: 'PCMU', sampleRate: 16000 }), 'Listening: PCMU, 16 kHz');
  assert.equal(text('speak', 'started', {}), 'Talking');
  assert.equal(text('speak', 'stopped', { reason: 'Call ended' }), 'Talk stopped: Call ended');
  assert.equal(text('listen', 'stopped', {}), 'Listen stopped');
  assert.equal(text('listen', 'failed', { error: 'no microphone found' }), 'Listen failed: no microphone found');
  assert.equal(refusalText(0), 'the gateway cannot be reached');
  assert.equal(refusalText(401, 'x'), 'not authorized: open the dashboard as /?token=…');
  assert.equal(refusalText(404, 'call 9 of account-1 does not exist\n'), 'call 9 of account-1 does not exist');
  assert.equal(refusalText(404, ''), 'the gateway does not know this call');
  assert.equal(refusalText(429, 'whatever'), 'too many audio streams on this call');
  assert.equal(refusalText(400, 'rate must be 8000 or 16000'), 'rate must be 8000 or 16000 (HTTP 400)');
  assert.match(refusalText(426, '/ws/audio is a WebSocket endpoint'), /^the gateway refused the stream/);
  assert.equal(refusalText(503), 'refused (HTTP 503)');
});

// A stand-in WebSocket the test drives by hand.
class FakeAudioSocket {
  static last = null;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.bufferedAmount = 0;
    this.sent = [];
    this.closed = null;
    FakeAudioSocket.last = this;
  }
  open() {
    this.readyState = 1;
    this.onopen();
  }
  receive(data) {
    this.onmessage({ data: typeof data === 'string' || data instanceof ArrayBuffer ? data : JSON.stringify(data) });
  }
  send(data) { this.sent.push(data); }
  close(code = 1000, reason = '') {
    this.closed = { code, reason };
    this.readyState = 3;
  }
  // The gateway (or the network) closes it.
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose({ code, reason });
  }
}

function newStream(direction, extra = {}) {
  const states = [];
  const frames = [];
  const stream = new AudioSocket({
    location: { protocol: 'http:', host: 'gw' },
    account: 'account-1',
    callId: 3,
    direction,
    onState: (state, detail) => states.push([state, detail]),
    onFrame: (pcm) => frames.push(pcm),
    WebSocket: FakeAudioSocket,
    fetch: async () => ({ status: 404, text: async () => 'call 3 of account-1 does not exist' }),
    ...extra,
  });
  return { stream, states, frames };
}

test('a stream starts, hears frames, sends frames and stops when the call ends', () => {
  const { stream, states, frames } = newStream('listen');
  stream.start();
  const socket = FakeAudioSocket.last;
  assert.equal(socket.url, 'ws://gw/ws/audio?account=account-1&call_id=3&rate=16000&direction=listen');
  assert.equal(socket.binaryType, 'arraybuffer');
  assert.deepEqual(states, [['connecting', {}]]);
  socket.open();
  assert.equal(stream.sendFrame(new ArrayBuffer(640)), false); // not started yet
  assert.equal(stream.framesDropped, 0);
  socket.receive({
    event: 'audio-started', account: 'account-1', call_id: 3, sample_rate: 16000, codec: 'PCMU', direction: 'listen',
  });
  assert.deepEqual(states.at(-1), ['started', { codec: 'PCMU', sampleRate: 16000 }]);
  const frame = new ArrayBuffer(640);
  socket.receive(frame);
  socket.receive({ event: 'dtmf', digit: '5', duration_ms: 100 }); // not for the dashboard
  socket.receive('not json');
  assert.deepEqual(frames, [frame]);
  assert.equal(stream.framesHeard, 1);
  assert.equal(stream.sendFrame(frame), true);
  assert.deepEqual(socket.sent, [frame]);
  // A send buffer over 200 ms: the frame is dropped, not queued.
  socket.bufferedAmount = 640 * 11;
  assert.equal(stream.sendFrame(frame), false);
  assert.equal(stream.framesDropped, 1);
  socket.receive({ event: 'audio-stopped', reason: 'Call ended', frames_dropped: 0 });
  assert.deepEqual(states.at(-1), ['stopped', { reason: 'Call ended' }]);
  assert.deepEqual(socket.closed, { code: 1000, reason: 'stopped' });
  assert.equal(states.length, 3);
});

test('a stream whose connection drops after the start is stopped, saying so', () => {
  const { stream, states } = newStream('speak');
  stream.start();
  FakeAudioSocket.last.open();
  FakeAudioSocket.last.receive({ event: 'audio-started', sample_rate: 16000, codec: 'PCMA' });
  FakeAudioSocket.last.drop(1006);
  assert.deepEqual(states.at(-1), ['stopped', { reason: 'connection closed (1006)' }]);
});

test('a refused handshake is explained by the same request without the upgrade', async () => {
  const asked = [];
  const { stream, states } = newStream('listen', {
    fetch: async (url) => {
      asked.push(url);
      return { status: 404, text: async () => 'call 3 of account-1 does not exist' };
    },
  });
  stream.start();
  FakeAudioSocket.last.drop(1006);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(asked, ['http://gw/ws/audio?account=account-1&call_id=3&rate=16000&direction=listen']);
  assert.deepEqual(states.at(-1), ['failed', { error: 'call 3 of account-1 does not exist' }]);

  const busy = newStream('speak', { fetch: async () => ({ status: 429, text: async () => '' }) });
  busy.stream.start();
  FakeAudioSocket.last.drop(1006);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(busy.states.at(-1), ['failed', { error: 'too many audio streams on this call' }]);

  const down = newStream('speak', { fetch: async () => { throw new TypeError('Failed to fetch'); } });
  down.stream.start();
  FakeAudioSocket.last.drop(1006);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(down.states.at(-1), ['failed', { error: 'the gateway cannot be reached' }]);
});

test('a stream the gateway ends before it started has failed, with the reason', () => {
  const { stream, states } = newStream('listen');
  stream.start();
  FakeAudioSocket.last.open();
  FakeAudioSocket.last.receive({ event: 'audio-stopped', reason: 'Call ended' });
  assert.deepEqual(states.at(-1), ['failed', { error: 'Call ended' }]);

  const closed = newStream('listen');
  closed.stream.start();
  FakeAudioSocket.last.open();
  FakeAudioSocket.last.drop(1008, 'bad frame size');
  assert.deepEqual(closed.states.at(-1), ['failed', { error: 'bad frame size' }]);

  // A fail before the close says why better than the close does.
  const busy = newStream('listen');
  busy.stream.start();
  FakeAudioSocket.last.open();
  FakeAudioSocket.last.receive({ event: 'fail', error: 'Too many WebSocket sessions (64)' });
  FakeAudioSocket.last.drop(1013, 'too many sessions');
  assert.deepEqual(busy.states.at(-1), ['failed', { error: 'Too many WebSocket sessions (64)' }]);
});

test('a fail during the stream is the reason it stopped', () => {
  const { stream, states } = newStream('speak');
  stream.start();
  FakeAudioSocket.last.open();
  FakeAudioSocket.last.receive({ event: 'audio-started', sample_rate: 16000, codec: 'PCMU' });
  FakeAudioSocket.last.receive({ event: 'fail', error: 'Audio must be whole frames of 640 bytes' });
  FakeAudioSocket.last.drop(1003, 'bad audio');
  assert.deepEqual(states.at(-1), ['stopped', { reason: 'Audio must be whole frames of 640 bytes' }]);
});

test('Talk sends a mark a second and clears the gateway\'s queue when it comes back late', () => {
  let now = 1000;
  const { stream } = newStream('speak', { now: () => now });
  stream.start();
  const socket = FakeAudioSocket.last;
  socket.open();
  socket.receive({ event: 'audio-started', sample_rate: 16000, codec: 'PCMU' });
  const frame = new ArrayBuffer(640);
  const sendFrames = (n) => {
    for (let i = 0; i < n; i++) stream.sendFrame(frame);
  };
  // The first three frames go together, when the third is there.
  sendFrames(2);
  assert.equal(socket.sent.length, 0);
  sendFrames(1);
  assert.equal(socket.sent.length, 3);
  sendFrames(46);
  assert.equal(socket.sent.length, 49);
  assert.equal(socket.sent.filter((m) => typeof m === 'string').length, 0);
  sendFrames(1);
  assert.deepEqual(JSON.parse(socket.sent.at(-1)), { cmd: 'mark', name: 'delay-50' });
  now += 60;
  socket.receive({ event: 'mark', name: 'delay-50' });
  assert.equal(stream.speakDelayMs, 60);
  assert.equal(stream.clears, 0);
  socket.receive({ event: 'mark', name: 'not-ours' }); // another client's: ignored
  sendFrames(50);
  now += 400;
  socket.receive({ event: 'mark', name: 'delay-100' });
  assert.equal(stream.speakDelayMs, 400);
  assert.deepEqual(JSON.parse(socket.sent.at(-1)), { cmd: 'clear' });
  assert.equal(stream.clears, 1);
  // A Listen stream sends no marks.
  const listen = newStream('listen');
  listen.stream.start();
  FakeAudioSocket.last.open();
  FakeAudioSocket.last.receive({ event: 'audio-started', sample_rate: 16000, codec: 'PCMU' });
  for (let i = 0; i < 100; i++) listen.stream.sendFrame(frame);
  assert.ok(FakeAudioSocket.last.sent.every((m) => typeof m !== 'string'));
});

test('stop() closes the socket and reports nothing more', () => {
  const { stream, states } = newStream('speak');
  stream.start();
  const socket = FakeAudioSocket.last;
  socket.open();
  socket.receive({ event: 'audio-started', sample_rate: 16000, codec: 'PCMU' });
  stream.stop();
  assert.equal(stream.state, 'stopped');
  assert.deepEqual(socket.closed, { code: 1000, reason: 'stopped by the user' });
  socket.drop(1000); // the close completes later: ignored
  socket.receive({ event: 'audio-stopped', reason: 'Stopped' });
  assert.equal(states.length, 2);
  assert.equal(stream.sendFrame(new ArrayBuffer(640)), false);
});

test('fail() ends a stream with the page\'s own error', () => {
  const { stream, states } = newStream('speak');
  stream.start();
  stream.fail('no microphone found');
  assert.deepEqual(states.at(-1), [AUDIO_STATE.FAILED, { error: 'no microphone found' }]);
  assert.deepEqual(FakeAudioSocket.last.closed, { code: 1000, reason: 'failed' });
});
