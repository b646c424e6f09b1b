// The dashboard's WebSocket to the gateway: reconnects with exponential
// backoff and jitter, and resumes from the last seq it applied
// (/ws?after_seq=N&instance=I, docs/websocket-api.md). No DOM here.

export const CONNECTION = Object.freeze({
  CONNECTING: 'connecting',
  OPEN: 'open', // the opening snapshot or replay arrived
  WAITING: 'waiting', // closed; the next attempt is scheduled
  UNAUTHORIZED: 'unauthorized', // the gateway wants its token
  STOPPED: 'stopped',
});

export function backoffDelay(attempt, { minMs = 500, maxMs = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 16));
  // "Equal jitter": at least half the ceiling, so retries never bunch at 0.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export function socketUrl(location, resume) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const params = new URLSearchParams();
  if (resume && resume.instance && resume.lastSeq > 0) {
    params.set('after_seq', String(resume.lastSeq));
    params.set('instance', resume.instance);
  }
  const query = params.toString();
  return `${scheme}//${location.host}/ws${query ? `?${query}` : ''}`;
}

export class GatewayConnection {
  // options:
  //   location: window.location (or a stand-in)
  //   resumePoint(): {instance, lastSeq} to resume from, or null
  //   onMessage(msg, rawText), onState(state, detail)
  //   WebSocket, fetch, setTimeout, clearTimeout: injectable for tests
  constructor(options) {
    this.options = options;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.fetch = options.fetch || ((...args) => globalThis.fetch(...args));
    this.setTimeout = options.setTimeout || ((...args) => globalThis.setTimeout(...args));
    this.clearTimeout = options.clearTimeout || ((...args) => globalThis.clearTimeout(...args));
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.state = CONNECTION.STOPPED;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) this.clearTimeout(this.timer);
    this.timer = null;
    if (this.socket) this.socket.close(1000, 'page closed');
    this.socket = null;
    this.setState(CONNECTION.STOPPED, {});
  }

  // Sends one command object; false when not connected.
  send(command) {
    if (!this.socket || this.socket.readyState !== 1 || this.state !== CONNECTION.OPEN) {
      return false;
    }
    this.socket.send(JSON.stringify(command));
    return true;
  }

  // Reconnect now (e.g. the user pressed "retry"), forgetting the backoff.
  retryNow() {
    if (this.stopped || this.state === CONNECTION.CONNECTING || this.state === CONNECTION.OPEN) {
      return;
    }
    if (this.timer !== null) this.clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.connect();
  }

  setState(state, detail) {
    this.state = state;
    if (this.options.onState) this.options.onState(state, detail);
  }

  connect() {
    this.timer = null;
    const resume = this.options.resumePoint ? this.options.resumePoint() : null;
    const url = socketUrl(this.options.location, resume);
    this.setState(CONNECTION.CONNECTING, { attempt: this.attempt, resuming: url.includes('after_seq') });
    let socket;
    try {
      socket = new this.WebSocket(url);
    } catch (error) {
      this.scheduleRetry({ reason: String(error) });
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      let msg;
      try {
        msg = JSON.parse(message.data);
      } catch {
        return; // the gateway only sends JSON; ignore anything else
      }
      if (msg.event === 'snapshot' || msg.event === 'resumed') {
        opened = true;
        this.attempt = 0;
        this.setState(CONNECTION.OPEN, { resumed: msg.event === 'resumed' });
      }
      this.options.onMessage(msg, message.data);
    };
    socket.onclose = (close) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (this.stopped) return;
      const detail = { code: close.code, reason: close.reason, wasOpen: opened };
      if (!opened) {
        // Never got in: find out whether the token is the problem.
        this.probeAuthorization().then((unauthorized) => {
          if (this.stopped || this.socket !== null) return;
          if (unauthorized) detail.unauthorized = true;
          this.scheduleRetry(detail);
        });
        return;
      }
      this.scheduleRetry(detail);
    };
    socket.onerror = () => {}; // onclose follows and handles it
  }

  async probeAuthorization() {
    try {
      const response = await this.fetch('/ws', { cache: 'no-store', credentials: 'same-origin' });
      return response.status === 401;
    } catch {
      return false; // gateway unreachable
    }
  }

  scheduleRetry(detail) {
    const delay = backoffDelay(this.attempt, this.options.backoff);
    this.attempt += 1;
    this.setState(detail.unauthorized ? CONNECTION.UNAUTHORIZED : CONNECTION.WAITING, {
      ...detail,
      delay,
      retryAt: Date.now() + delay,
    });
    this.timer = this.setTimeout(() => this.connect(), delay);
  }
}
