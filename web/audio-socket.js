// One /ws/audio stream of a call (docs/websocket-api.md, "/ws/audio"):
// binary messages are 20 ms frames of 16-bit little-endian mono PCM both
// ways, text messages JSON events. No DOM and no WebAudio: the page
// (call-audio.js) plays and captures the frames; tests/e2e/audio_test.mjs
// drives this with a stand-in WebSocket.
// Thread: the page's main thread.

import { frameBytes } from './audio-dsp.js';

// The rate the dashboard asks for: the gateway resamples the call's 8 kHz
// to it with speexdsp, the page resamples it to the AudioContext's rate.
export const DASHBOARD_RATE = 16000;

// The two directions the dashboard opens (one stream each): the far end's
// audio to the page, the microphone to the far end.
export const LISTEN = 'listen';
export const SPEAK = 'speak';

export const AUDIO_STATE = Object.freeze({
  CONNECTING: 'connecting', // until audio-started
  STARTED: 'started',
  STOPPED: 'stopped', // audio-stopped, the socket closed, or stop()
  FAILED: 'failed', // never started: refused, unreachable, no microphone
});

// At most this much audio waits in the socket's send buffer; frames beyond
// it are dropped (counted): a stalled connection never grows the delay.
export const SEND_BACKLOG_MS = 200;

// Talk's lead: the gateway plays a speaking stream's frames on its own
// 20 ms tick and sends silence when none is queued, so Talk holds its first
// frames back and sends them at once: the queue starts that much ahead and
// absorbs a page that delivers a frame late (a busy main thread), instead
// of a gap in the far end's audio.
export const SPEAK_LEAD_FRAMES = 3;

// Talk's delay: the gateway queues what a speaking stream sends (up to 5 s)
// and plays a frame per 20 ms of its own clock. A page whose clock runs a
// little fast would build that queue up over a long call, so Talk sends a
// mark every SPEAK_MARK_EVERY frames; when one comes back more than
// SPEAK_MAX_DELAY_MS after it was sent, the queue is cleared (a moment of
// silence, counted in `clears`).
export const SPEAK_MARK_EVERY = 50;
export const SPEAK_MAX_DELAY_MS = 300;
const SPEAK_MARKS_KEPT = 16;

// ws://host/ws/audio?account=A&call_id=N&rate=R&direction=D (wss: on https).
// The token travels as for /ws: in the cookie the page got from ?token=.
export function audioSocketUrl(location, { account, callId, rate = DASHBOARD_RATE, direction }) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const params = new URLSearchParams({
    account,
    call_id: String(callId),
    rate: String(rate),
    direction,
  });
  return `${scheme}//${location.host}/ws/audio?${params}`;
}

// Why the gateway refused the handshake, from the HTTP status of the same
// request made without the upgrade and the text it answered with.
export function refusalText(status, body = '') {
  const said = String(body || '').trim().split('\n')[0].slice(0, 160);
  switch (status) {
    case 0:
      return 'the gateway cannot be reached';
    case 401:
      return 'not authorized: open the dashboard as /?token=…';
    case 404:
      return said || 'the gateway does not know this call';
    case 426:
      // Asked without the upgrade, the gateway only says that /ws/audio is
      // a WebSocket: the handshake's own status (404, 400, 429) stays with
      // the browser.
      return 'the gateway refused the stream (has the call ended, or does it have too many streams?)';
    case 429:
      return 'too many audio streams on this call';
    default:
      return said ? `${said} (HTTP ${status})` : `refused (HTTP ${status})`;
  }
}

// One line for a stream's state, e.g. "Listening: PCMU, 16 kHz",
// "Talk stopped: Call ended", "Listen failed: too many audio streams on
// this call".
export function audioStatusText(direction, state, detail = {}) {
  const name = direction === SPEAK ? 'Talk' : 'Listen';
  switch (state) {
    case AUDIO_STATE.CONNECTING:
      return detail.text || `${name}: connecting…`;
    case AUDIO_STATE.STARTED: {
      const doing = direction === SPEAK ? 'Talking' : 'Listening';
      const what = [detail.codec, detail.sampleRate ? `${detail.sampleRate / 1000} kHz` : '']
        .filter(Boolean)
        .join(', ');
      return what ? `${doing}: ${what}` : doing;
    }
    case AUDIO_STATE.STOPPED:
      return detail.reason ? `${name} stopped: ${detail.reason}` : `${name} stopped`;
    case AUDIO_STATE.FAILED:
      return `${name} failed: ${detail.error || 'unknown error'}`;
    default:
      return '';
  }
}

export class AudioSocket {
  // options:
  //   location: window.location (or a stand-in)
  //   account, callId, direction (LISTEN or SPEAK), rate (DASHBOARD_RATE)
  //   onState(state, detail): CONNECTING, then STARTED {codec, sampleRate},
  //     then STOPPED {reason} or FAILED {error}; nothing after stop()
  //   onFrame(ArrayBuffer): a frame heard (LISTEN)
  //   WebSocket, fetch, now (ms): injectable for tests
  constructor(options) {
    this.options = options;
    this.rate = options.rate || DASHBOARD_RATE;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.fetch = options.fetch || ((...args) => globalThis.fetch(...args));
    this.now = options.now || (() => performance.now());
    this.url = audioSocketUrl(options.location, { ...options, rate: this.rate });
    this.socket = null;
    this.state = null;
    this.detail = {};
    this.framesHeard = 0;
    this.framesSent = 0;
    this.framesDropped = 0; // not sent: the send buffer was full
    this.failure = ''; // the gateway's newest fail, said before it closes
    this.marks = new Map(); // Talk: name of a mark waiting -> when it was sent
    this.speakDelayMs = null; // Talk: the newest mark's round trip
    this.clears = 0; // Talk: queues cleared for being too long
    this.lead = []; // Talk: the first frames, held back until there are SPEAK_LEAD_FRAMES
  }

  start() {
    if (this.state !== null) return;
    this.setState(AUDIO_STATE.CONNECTING, {});
    let socket;
    try {
      socket = new this.WebSocket(this.url);
    } catch (error) {
      this.setState(AUDIO_STATE.FAILED, { error: String(error.message || error) });
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      if (typeof message.data !== 'string') {
        this.framesHeard += 1;
        if (this.options.onFrame) this.options.onFrame(message.data);
        return;
      }
      let msg;
      try {
        msg = JSON.parse(message.data);
      } catch {
        return;
      }
      this.onEvent(msg);
    };
    socket.onclose = (close) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (this.state === AUDIO_STATE.STARTED) {
        this.setState(AUDIO_STATE.STOPPED, {
          reason: this.failure || close.reason || `connection closed (${close.code})`,
        });
      } else if (this.state === AUDIO_STATE.CONNECTING && opened) {
        this.setState(AUDIO_STATE.FAILED, {
          error: this.failure || close.reason || `closed before the audio started (${close.code})`,
        });
      } else if (this.state === AUDIO_STATE.CONNECTING) {
        // Refused at the handshake: ask again without the upgrade to learn why.
        this.probe().then((error) => {
          if (this.state === AUDIO_STATE.CONNECTING) this.setState(AUDIO_STATE.FAILED, { error });
        });
      }
    };
    socket.onerror = () => {}; // onclose follows and handles it
  }

  onEvent(msg) {
    switch (msg.event) {
      case 'audio-started':
        if (this.state !== AUDIO_STATE.CONNECTING) return;
        this.setState(AUDIO_STATE.STARTED, {
          codec: msg.codec || '',
          sampleRate: Number(msg.sample_rate) || this.rate,
        });
        break;
      case 'audio-stopped': {
        const reason = msg.reason || '';
        if (this.state === AUDIO_STATE.CONNECTING) {
          this.setState(AUDIO_STATE.FAILED, { error: reason || 'stopped before it started' });
        } else if (this.state === AUDIO_STATE.STARTED) {
          this.setState(AUDIO_STATE.STOPPED, { reason });
        }
        this.closeSocket(1000, 'stopped');
        break;
      }
      case 'mark':
        this.onMark(String(msg.name));
        break;
      case 'fail':
        // The gateway refuses something (a bad frame, too many sessions)
        // and closes next.
        this.failure = String(msg.error || 'failed');
        break;
      default:
        break; // mark, dtmf: the dashboard asks for neither
    }
  }

  // Sends one frame of the stream's size; false (and counted when started)
  // when it is not sent.
  sendFrame(pcm) {
    if (this.state !== AUDIO_STATE.STARTED || !this.socket || this.socket.readyState !== 1) {
      return false;
    }
    const backlog = (frameBytes(this.rate) * SEND_BACKLOG_MS) / 20;
    if (this.socket.bufferedAmount > backlog) {
      this.framesDropped += 1;
      return false;
    }
    if (this.options.direction === SPEAK && this.framesSent === 0) {
      this.lead.push(pcm);
      if (this.lead.length < SPEAK_LEAD_FRAMES) return true;
      const lead = this.lead;
      this.lead = [];
      for (const frame of lead) this.sendNow(frame);
      return true;
    }
    this.sendNow(pcm);
    return true;
  }

  sendNow(pcm) {
    this.socket.send(pcm);
    this.framesSent += 1;
    if (this.options.direction === SPEAK && this.framesSent % SPEAK_MARK_EVERY === 0) {
      const name = `delay-${this.framesSent}`;
      this.marks.set(name, this.now());
      if (this.marks.size > SPEAK_MARKS_KEPT) this.marks.delete(this.marks.keys().next().value);
      this.socket.send(JSON.stringify({ cmd: 'mark', name }));
    }
  }

  // One of Talk's marks came back: the audio sent before it has gone out.
  onMark(name) {
    const sentAt = this.marks.get(name);
    if (sentAt === undefined) return;
    this.marks.delete(name);
    this.speakDelayMs = Math.round(this.now() - sentAt);
    if (this.speakDelayMs <= SPEAK_MAX_DELAY_MS || !this.socket) return;
    this.socket.send(JSON.stringify({ cmd: 'clear' }));
    this.clears += 1;
    this.marks.clear(); // those come back at once now, telling nothing
  }

  // Ends the stream from this side (the gateway detaches it); STOPPED,
  // without a callback.
  stop() {
    this.closeSocket(1000, 'stopped by the user');
    if (this.state === AUDIO_STATE.CONNECTING || this.state === AUDIO_STATE.STARTED) {
      this.state = AUDIO_STATE.STOPPED;
      this.detail = { reason: 'stopped' };
    }
    this.options.onState = null;
  }

  // Ends it with an error of the page's own (no microphone): FAILED.
  fail(error) {
    this.closeSocket(1000, 'failed');
    if (this.state === AUDIO_STATE.CONNECTING || this.state === AUDIO_STATE.STARTED) {
      this.setState(AUDIO_STATE.FAILED, { error });
    }
  }

  closeSocket(code, reason) {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(code, reason);
  }

  async probe() {
    const http = this.url.replace(/^ws/, 'http');
    try {
      const response = await this.fetch(http, { cache: 'no-store', credentials: 'same-origin' });
      const body = response.text ? await response.text().catch(() => '') : '';
      // The handshake failed, so a 2xx here means the upgrade itself did.
      if (response.status >= 200 && response.status < 300) return 'the connection was refused';
      return refusalText(response.status, body);
    } catch {
      return refusalText(0);
    }
  }

  setState(state, detail) {
    this.state = state;
    this.detail = detail;
    if (this.options.onState) this.options.onState(state, detail);
  }
}
