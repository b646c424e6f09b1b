// Listen and Talk on the dashboard's calls: one /ws/audio stream per
// direction of a call (audio-socket.js), played and captured with WebAudio
// through the processors of audio-worklet.js. The page (app.js) toggles
// streams, renders what view() says when onChange(account, callId) tells it
// to, and reads the levels for its meters as often as it draws.
// Thread: the page's main thread.

import { LevelMeter, rmsOfPcm16 } from './audio-dsp.js';
import { AUDIO_STATE, AudioSocket, DASHBOARD_RATE, LISTEN, SPEAK, audioStatusText } from './audio-socket.js';

const WORKLET_URL = new URL('audio-worklet.js', import.meta.url);

// The microphone as a call's Talk asks for it (the browser's own echo
// canceller on: the far end would hear itself from the speakers otherwise).
const MICROPHONE = Object.freeze({
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
});

const keyOf = (account, callId) => `${account}\n${callId}`;

// One direction of one call: its socket, its level, its WebAudio node.
class CallAudioStream {
  constructor(direction) {
    this.direction = direction;
    this.socket = null;
    this.meter = new LevelMeter();
    this.node = null; // the playout or capture AudioWorkletNode
    this.analyser = null; // Listen: what is played
    this.microphone = null; // Talk: the page's microphone it holds
    this.state = AUDIO_STATE.CONNECTING;
    this.detail = {};
    this.playout = { underruns: 0, droppedMs: 0, queuedMs: 0 }; // Listen
  }

  get active() {
    return this.state === AUDIO_STATE.CONNECTING || this.state === AUDIO_STATE.STARTED;
  }
}

export class CallAudio {
  // options: location (window.location), onChange(account, callId),
  // rate (DASHBOARD_RATE).
  constructor(options) {
    this.options = options;
    this.rate = options.rate || DASHBOARD_RATE;
    this.calls = new Map(); // keyOf(account, callId) -> {listen, speak}: CallAudioStream or null
    this.context = null;
    this.workletReady = null; // promise
    this.microphone = null; // while a Talk holds it: acquireMicrophone
  }

  // Why a direction cannot work in this page ('' when it can): AudioWorklet
  // and getUserMedia exist only in a secure context (https, or http on
  // localhost / 127.0.0.1).
  unavailable(direction) {
    if (!globalThis.isSecureContext) {
      return 'needs a secure page: open the dashboard over https, or as localhost or 127.0.0.1';
    }
    if (!globalThis.AudioContext || !globalThis.AudioWorkletNode) return 'this browser has no AudioWorklet';
    if (direction === SPEAK && !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
      return 'this browser cannot capture a microphone';
    }
    return '';
  }

  // What the page shows for a direction of a call: null when it never
  // started here, else {state, active, text}.
  view(account, callId, direction) {
    const stream = this.streamOf(account, callId, direction);
    if (!stream) return null;
    return {
      state: stream.state,
      active: stream.active,
      text: audioStatusText(direction, stream.state, stream.detail),
    };
  }

  // 0..1 for the direction's meter (0 when it is not running).
  level(account, callId, direction) {
    const stream = this.streamOf(account, callId, direction);
    return stream && stream.active ? stream.meter.level() : 0;
  }

  // Whether any stream of the page runs (the page draws meters meanwhile).
  anyActive() {
    for (const streams of this.calls.values()) {
      for (const stream of Object.values(streams)) if (stream && stream.active) return true;
    }
    return false;
  }

  // Starts or stops a direction of a call. Call from a click: the browser
  // lets a page start its audio only then.
  toggle(account, callId, direction) {
    const stream = this.streamOf(account, callId, direction);
    if (stream && stream.active) {
      this.stop(account, callId, direction);
    } else {
      this.start(account, callId, direction);
    }
  }

  start(account, callId, direction) {
    const streams = this.streamsOf(account, callId, true);
    if (streams[direction] && streams[direction].active) return;
    const stream = new CallAudioStream(direction);
    streams[direction] = stream;
    const why = this.unavailable(direction);
    if (why) {
      this.end(account, callId, stream, AUDIO_STATE.FAILED, { error: why });
      return;
    }
    // Created and resumed in the click: a context made later stays suspended.
    if (this.context === null) this.context = new AudioContext({ latencyHint: 'interactive' });
    if (this.context.state === 'suspended') this.context.resume().catch(() => {});
    if (direction === SPEAK) stream.detail = { text: 'Talk: asking for the microphone…' };
    this.changed(account, callId);
    const prepared = direction === LISTEN ? this.prepareListen(stream) : this.prepareTalk(stream);
    prepared.then(
      () => {
        if (streams[direction] !== stream || !stream.active) return; // stopped meanwhile
        this.open(account, callId, stream);
      },
      (error) => {
        if (streams[direction] !== stream || !stream.active) return;
        this.end(account, callId, stream, AUDIO_STATE.FAILED, { error: describeError(error) });
      },
    );
  }

  stop(account, callId, direction) {
    const stream = this.streamOf(account, callId, direction);
    if (!stream || !stream.active) return;
    if (stream.socket) stream.socket.stop();
    this.end(account, callId, stream, AUDIO_STATE.STOPPED, {});
  }

  // The call went away: its streams stop and are forgotten.
  forgetCall(account, callId) {
    const streams = this.calls.get(keyOf(account, callId));
    if (!streams) return;
    for (const direction of [LISTEN, SPEAK]) {
      const stream = streams[direction];
      if (stream && stream.active) {
        if (stream.socket) stream.socket.stop();
        this.release(stream);
        stream.state = AUDIO_STATE.STOPPED;
      }
    }
    this.calls.delete(keyOf(account, callId));
    this.restIfIdle();
  }

  stopAll() {
    for (const key of [...this.calls.keys()]) {
      const [account, callId] = key.split('\n');
      this.forgetCall(account, Number(callId));
    }
  }

  // The AnalyserNode that sees what a call's Listen plays (tests, curious
  // users); null when it does not play.
  analyserOf(account, callId) {
    const stream = this.streamOf(account, callId, LISTEN);
    return stream && stream.active ? stream.analyser : null;
  }

  // Counters of a direction of a call, for tests and the console.
  stats(account, callId, direction) {
    const stream = this.streamOf(account, callId, direction);
    if (!stream) return null;
    const socket = stream.socket || {};
    return {
      state: stream.state,
      framesHeard: socket.framesHeard || 0,
      framesSent: socket.framesSent || 0,
      framesDropped: socket.framesDropped || 0,
      ...(direction === LISTEN
        ? stream.playout
        : {
            delayMs: socket.speakDelayMs === undefined ? null : socket.speakDelayMs,
            clears: socket.clears || 0,
          }),
    };
  }

  // ---------------------------------------------------------------- inside

  streamsOf(account, callId, create = false) {
    const key = keyOf(account, callId);
    let streams = this.calls.get(key);
    if (!streams && create) {
      streams = { [LISTEN]: null, [SPEAK]: null };
      this.calls.set(key, streams);
    }
    return streams;
  }

  streamOf(account, callId, direction) {
    const streams = this.streamsOf(account, callId);
    return streams ? streams[direction] : null;
  }

  loadWorklet() {
    if (this.workletReady === null) {
      this.workletReady = this.context.audioWorklet.addModule(WORKLET_URL.href);
      this.workletReady.catch(() => {
        this.workletReady = null; // try again next time
      });
    }
    return this.workletReady;
  }

  // Listen: the playout node, through an analyser, to the speakers.
  async prepareListen(stream) {
    await this.loadWorklet();
    if (!stream.active) return;
    const context = this.context;
    const node = new AudioWorkletNode(context, 'telestra-playout', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { streamRate: this.rate },
    });
    node.port.onmessage = ({ data }) => {
      stream.playout = data;
    };
    const analyser = context.createAnalyser();
    analyser.fftSize = 4096;
    node.connect(analyser);
    analyser.connect(context.destination);
    stream.node = node;
    stream.analyser = analyser;
  }

  // Talk: the microphone into the capture node, whose frames go out.
  async prepareTalk(stream) {
    stream.microphone = this.acquireMicrophone();
    await Promise.all([stream.microphone.ready, this.loadWorklet()]);
    if (!stream.active) return;
    const node = new AudioWorkletNode(this.context, 'telestra-capture', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: 1,
      channelCountMode: 'explicit',
      channelInterpretation: 'speakers',
      processorOptions: { streamRate: this.rate },
    });
    node.port.onmessage = ({ data }) => {
      stream.meter.add(data.rms);
      if (stream.socket) stream.socket.sendFrame(data.pcm);
    };
    stream.microphone.source.connect(node);
    node.connect(this.context.destination); // silence: keeps it pulled
    stream.node = node;
  }

  // The socket, once the stream's audio side is ready.
  open(account, callId, stream) {
    const socket = new AudioSocket({
      location: this.options.location,
      account,
      callId,
      direction: stream.direction,
      rate: this.rate,
      onFrame: (pcm) => {
        stream.meter.add(rmsOfPcm16(pcm));
        if (stream.node) stream.node.port.postMessage({ pcm }, [pcm]);
      },
      onState: (state, detail) => {
        if (state === AUDIO_STATE.STOPPED || state === AUDIO_STATE.FAILED) {
          this.end(account, callId, stream, state, detail);
        } else {
          stream.state = state;
          stream.detail = detail;
          this.changed(account, callId);
        }
      },
    });
    stream.socket = socket;
    socket.start();
  }

  // A stream ends (stopped, refused, failed): its audio is released and its
  // last state stays on show.
  end(account, callId, stream, state, detail) {
    this.release(stream);
    if (stream.socket && state === AUDIO_STATE.FAILED) stream.socket.stop();
    stream.state = state;
    stream.detail = detail;
    stream.meter.reset();
    this.restIfIdle();
    this.changed(account, callId);
  }

  release(stream) {
    if (stream.node) {
      stream.node.port.postMessage({ stop: true });
      stream.node.port.onmessage = null;
      stream.node.disconnect();
      stream.node = null;
    }
    if (stream.analyser) {
      stream.analyser.disconnect();
      stream.analyser = null;
    }
    if (stream.microphone) {
      this.releaseMicrophone(stream.microphone);
      stream.microphone = null;
    }
  }

  // Nothing plays or captures any more: the audio thread rests until the
  // next start resumes it.
  restIfIdle() {
    if (this.context !== null && this.context.state === 'running' && !this.anyActive()) {
      this.context.suspend().catch(() => {});
    }
  }

  // One microphone for every Talk of the page, opened by the first and
  // closed (the browser's recording indicator goes off) after the last:
  // {ready (a promise), stream, source, users}, held by each Talk until
  // releaseMicrophone.
  acquireMicrophone() {
    if (this.microphone === null) {
      const microphone = { ready: null, stream: null, source: null, users: 0 };
      microphone.ready = navigator.mediaDevices.getUserMedia(MICROPHONE).then((media) => {
        microphone.stream = media;
        if (microphone.users === 0) {
          stopTracks(media); // every Talk stopped while the browser asked
          throw new Error('stopped');
        }
        microphone.source = this.context.createMediaStreamSource(media);
        for (const track of media.getAudioTracks()) {
          track.addEventListener('ended', () => this.microphoneLost(microphone));
        }
      });
      // A refusal is not kept: the next Talk asks again.
      microphone.ready.catch(() => {
        if (this.microphone === microphone) this.microphone = null;
      });
      this.microphone = microphone;
    }
    this.microphone.users += 1;
    return this.microphone;
  }

  releaseMicrophone(microphone) {
    microphone.users -= 1;
    if (microphone.users > 0) return;
    if (this.microphone === microphone) this.microphone = null;
    if (microphone.source) microphone.source.disconnect();
    if (microphone.stream) stopTracks(microphone.stream);
  }

  // The device went away or the permission was taken back: every Talk fails.
  microphoneLost(microphone) {
    for (const [key, streams] of this.calls) {
      const stream = streams[SPEAK];
      if (!stream || stream.microphone !== microphone) continue;
      const [account, callId] = key.split('\n');
      this.end(account, Number(callId), stream, AUDIO_STATE.FAILED, { error: 'the microphone stopped' });
    }
  }

  changed(account, callId) {
    if (this.options.onChange) this.options.onChange(account, callId);
  }
}

function stopTracks(media) {
  for (const track of media.getTracks()) track.stop();
}

// getUserMedia's and addModule's errors, in words.
function describeError(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
      return 'the browser was not allowed to use the microphone';
    case 'NotFoundError':
      return 'no microphone found';
    case 'NotReadableError':
      return 'the microphone is in use by another program';
    default:
      return String((error && error.message) || error);
  }
}
