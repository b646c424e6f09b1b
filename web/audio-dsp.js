// Call audio in the page, the parts that need neither the DOM nor WebAudio:
// 16-bit PCM to and from floats, levels, a streaming resampler, the playout
// (jitter) buffer and 20 ms framing. Shared by the page (call-audio.js), its
// AudioWorklet (audio-worklet.js) and tests/e2e/audio_test.mjs in Node.
// Thread: whichever imports it (the page's main thread, the audio thread).

// /ws/audio carries 20 ms frames of signed 16-bit little-endian mono PCM
// (docs/websocket-api.md).
export const FRAME_MS = 20;

export function frameSamples(rate) {
  return Math.round((rate * FRAME_MS) / 1000);
}

export function frameBytes(rate) {
  return frameSamples(rate) * 2;
}

// Floats in [-1, 1] (clamped) to 16-bit little-endian PCM: -1 is -32768 and
// 1 is 32767, so that decodePcm16 gives back what it was given.
export function encodePcm16(samples) {
  const buffer = new ArrayBuffer(samples.length * 2);
  const view = new DataView(buffer);
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i] > 1 ? 1 : samples[i] < -1 ? -1 : samples[i] || 0;
    view.setInt16(i * 2, Math.round(s < 0 ? s * 32768 : s * 32767), true);
  }
  return buffer;
}

// 16-bit little-endian PCM (an ArrayBuffer or a view of one) to floats in
// [-1, 1]; an odd last byte is ignored.
export function decodePcm16(data) {
  const view = pcmView(data);
  const samples = new Float32Array(view.byteLength >> 1);
  for (let i = 0; i < samples.length; i++) {
    const v = view.getInt16(i * 2, true);
    samples[i] = v < 0 ? v / 32768 : v / 32767;
  }
  return samples;
}

function pcmView(data) {
  if (data instanceof ArrayBuffer) return new DataView(data);
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}

// Root mean square of floats (a full-scale sine: 0.707).
export function rms(samples) {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / samples.length);
}

// Root mean square of 16-bit little-endian PCM, full scale = 1.
export function rmsOfPcm16(data) {
  const view = pcmView(data);
  const count = view.byteLength >> 1;
  if (count === 0) return 0;
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const v = view.getInt16(i * 2, true) / 32768;
    sum += v * v;
  }
  return Math.sqrt(sum / count);
}

// What a level meter shows for an RMS: 0 at METER_FLOOR_DB dBFS and below,
// 1 at 0 dBFS, in dB between (speech at -25 dBFS is about 0.6).
export const METER_FLOOR_DB = -60;

export function meterLevel(rmsValue) {
  if (!(rmsValue > 0)) return 0;
  const db = 20 * Math.log10(rmsValue);
  return Math.min(1, Math.max(0, (db - METER_FLOOR_DB) / -METER_FLOOR_DB));
}

// The level of a direction of a call: the RMS of its newest `frames` frames.
export class LevelMeter {
  constructor(frames = 5) {
    this.squares = new Float64Array(frames); // mean squares, a ring
    this.next = 0;
    this.count = 0;
  }

  // One frame's RMS.
  add(frameRms) {
    this.squares[this.next] = frameRms * frameRms;
    this.next = (this.next + 1) % this.squares.length;
    this.count = Math.min(this.count + 1, this.squares.length);
  }

  reset() {
    this.squares.fill(0);
    this.count = 0;
  }

  rms() {
    if (this.count === 0) return 0;
    let sum = 0;
    for (const square of this.squares) sum += square;
    return Math.sqrt(sum / this.count);
  }

  // 0..1, for a <meter> (meterLevel).
  level() {
    return meterLevel(this.rms());
  }
}

// Resolution of the resampler's kernel table: points per input sample.
const KERNEL_STEPS = 64;

// A streaming resampler between any two rates (the page's AudioContext runs
// at 44.1 or 48 kHz, a stream at 8 or 16 kHz): windowed sinc (Blackman),
// its low-pass at 90 % of the lower rate's Nyquist frequency, so neither
// aliases (down) nor images (up) come through; it delays by `halfWidth`
// input samples (under 1 ms). Chunks of any size give the same output as
// one whole.
export class Resampler {
  constructor(fromRate, toRate, { zeroCrossings = 8 } = {}) {
    if (!(fromRate > 0 && toRate > 0)) throw new RangeError(`bad rates ${fromRate} -> ${toRate}`);
    this.step = fromRate / toRate; // input samples per output sample
    const cutoff = 0.9 * Math.min(1, toRate / fromRate); // share of the input's Nyquist
    const halfWidth = Math.ceil(zeroCrossings / cutoff);
    this.halfWidth = halfWidth;
    // kernel(x) for x = 0 .. halfWidth input samples from the output's time.
    const table = new Float32Array(halfWidth * KERNEL_STEPS + 2);
    for (let i = 0; i < table.length; i++) {
      const x = i / KERNEL_STEPS;
      if (x >= halfWidth) continue;
      const u = x / halfWidth;
      const window = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
      const arg = Math.PI * cutoff * x;
      table[i] = cutoff * (x === 0 ? 1 : Math.sin(arg) / arg) * window;
    }
    // Unity gain at DC.
    let sum = table[0];
    for (let k = 1; k < halfWidth; k++) sum += 2 * table[k * KERNEL_STEPS];
    for (let i = 0; i < table.length; i++) table[i] /= sum;
    this.table = table;
    // Input not consumed yet, starting with halfWidth samples of silence
    // before the first one; `time` is the next output's position in it.
    this.buffer = new Float32Array(Math.max(1024, 4 * halfWidth));
    this.length = halfWidth;
    this.time = halfWidth;
  }

  // Resamples the next chunk of input; the output it completes (possibly
  // none).
  process(input) {
    this.append(input);
    const { buffer, table, halfWidth, step } = this;
    const last = this.length - halfWidth; // an output at t needs floor(t) < last
    const room = Math.max(0, Math.ceil((last - this.time) / step) + 1);
    const out = new Float32Array(room);
    let produced = 0;
    let time = this.time;
    while (Math.floor(time) < last && produced < room) {
      const center = Math.floor(time);
      const frac = time - center;
      let sum = 0;
      for (let k = 1 - halfWidth; k <= halfWidth; k++) {
        const p = Math.abs(k - frac) * KERNEL_STEPS;
        const i = Math.floor(p);
        const w = table[i] + (table[i + 1] - table[i]) * (p - i);
        sum += buffer[center + k] * w;
      }
      out[produced++] = sum;
      time += step;
    }
    // Keep what the next outputs still need.
    const keep = Math.min(this.length, Math.max(0, Math.floor(time) - halfWidth + 1));
    buffer.copyWithin(0, keep, this.length);
    this.length -= keep;
    this.time = time - keep;
    return out.subarray(0, produced);
  }

  append(input) {
    if (this.length + input.length > this.buffer.length) {
      const bigger = new Float32Array(Math.max(2 * this.buffer.length, this.length + input.length));
      bigger.set(this.buffer.subarray(0, this.length));
      this.buffer = bigger;
    }
    this.buffer.set(input, this.length);
    this.length += input.length;
  }
}

// Cuts a stream of samples into frames of `size` (20 ms at the stream's
// rate).
export class FrameChunker {
  constructor(size) {
    this.frame = new Float32Array(size);
    this.filled = 0;
  }

  // The frames `samples` completes, oldest first (each a new array).
  push(samples) {
    const frames = [];
    let offset = 0;
    while (offset < samples.length) {
      const n = Math.min(this.frame.length - this.filled, samples.length - offset);
      this.frame.set(samples.subarray(offset, offset + n), this.filled);
      this.filled += n;
      offset += n;
      if (this.filled === this.frame.length) {
        frames.push(this.frame.slice());
        this.filled = 0;
      }
    }
    return frames;
  }
}

// The jitter buffer of a Listen stream (it runs in the AudioWorklet, at the
// page's rate): audio goes in as it arrives and comes out in blocks, in
// time. Playout starts once `targetMs` is queued; when the queue runs dry
// the rest of the block is silence (an underrun, counted) and playout waits
// for the target again. Past `maxMs` (a burst after a stall, or clocks that
// drift apart) the oldest audio is dropped down to the target (counted), so
// the delay stays bounded.
export class PlayoutBuffer {
  constructor(rate, { targetMs = 60, maxMs = 200 } = {}) {
    this.target = Math.round((rate * targetMs) / 1000);
    this.ring = new Float32Array(Math.max(this.target + 1, Math.round((rate * maxMs) / 1000)));
    this.start = 0; // oldest queued sample
    this.size = 0;
    this.playing = false;
    this.underruns = 0;
    this.droppedSamples = 0;
  }

  get queued() {
    return this.size;
  }

  push(samples) {
    const capacity = this.ring.length;
    let input = samples;
    if (input.length > capacity) {
      this.droppedSamples += input.length - capacity;
      input = input.subarray(input.length - capacity);
    }
    if (this.size + input.length > capacity) {
      const drop = Math.min(this.size, this.size + input.length - this.target);
      this.start = (this.start + drop) % capacity;
      this.size -= drop;
      this.droppedSamples += drop;
    }
    let end = (this.start + this.size) % capacity;
    for (let i = 0; i < input.length; i++) {
      this.ring[end] = input[i];
      end = end + 1 === capacity ? 0 : end + 1;
    }
    this.size += input.length;
  }

  // Fills `out` with the next samples (silence where there are none).
  pull(out) {
    if (!this.playing && this.size >= this.target && this.size > 0) this.playing = true;
    const n = this.playing ? Math.min(out.length, this.size) : 0;
    const capacity = this.ring.length;
    for (let i = 0; i < n; i++) {
      out[i] = this.ring[this.start];
      this.start = this.start + 1 === capacity ? 0 : this.start + 1;
    }
    this.size -= n;
    out.fill(0, n);
    if (this.playing && n < out.length) {
      this.underruns += 1;
      this.playing = false;
    }
  }
}
