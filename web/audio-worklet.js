// The dashboard's AudioWorklet processors (loaded by call-audio.js with
// audioWorklet.addModule; a file of its own, as the page's
// Content-Security-Policy allows scripts from the gateway only).
// `sampleRate` is the AudioContext's rate; a stream's rate comes in
// processorOptions.streamRate.
// Thread: the page's audio rendering thread.
/* global AudioWorkletProcessor, registerProcessor, sampleRate */

import {
  FrameChunker,
  PlayoutBuffer,
  Resampler,
  decodePcm16,
  encodePcm16,
  frameSamples,
  rms,
} from './audio-dsp.js';

// How often (in render quanta of 128 samples) the playout reports its
// counters to the page: about 4 times a second.
const REPORT_EVERY = Math.max(1, Math.round(sampleRate / 128 / 4));

// Listen: frames of the stream (port messages {pcm: ArrayBuffer}, 16-bit
// PCM at streamRate) resampled to the context's rate on arrival, queued in
// a jitter buffer and played out continuously (silence on underrun).
// {stop: true} ends it. Reports {underruns, droppedMs, queuedMs}.
class PlayoutProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const streamRate = options.processorOptions.streamRate;
    this.resampler = new Resampler(streamRate, sampleRate);
    this.buffer = new PlayoutBuffer(sampleRate, options.processorOptions.playout || {});
    this.running = true;
    this.quanta = 0;
    this.port.onmessage = ({ data }) => {
      if (data.stop) {
        this.running = false;
      } else if (data.pcm) {
        this.buffer.push(this.resampler.process(decodePcm16(data.pcm)));
      }
    };
  }

  process(inputs, outputs) {
    const output = outputs[0];
    if (output.length > 0) {
      this.buffer.pull(output[0]);
      for (let channel = 1; channel < output.length; channel++) output[channel].set(output[0]);
    }
    if (++this.quanta % REPORT_EVERY === 0) {
      this.port.postMessage({
        underruns: this.buffer.underruns,
        droppedMs: Math.round((this.buffer.droppedSamples * 1000) / sampleRate),
        queuedMs: Math.round((this.buffer.queued * 1000) / sampleRate),
      });
    }
    return this.running;
  }
}

// Talk: the microphone (its input, mixed down to mono by the node's
// channelCount 1) resampled to streamRate and cut into 20 ms frames; each
// goes to the page as {pcm: ArrayBuffer, rms}. Its output is silence (it is
// connected only so that the graph pulls it). {stop: true} ends it.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const streamRate = options.processorOptions.streamRate;
    this.resampler = new Resampler(sampleRate, streamRate);
    this.chunker = new FrameChunker(frameSamples(streamRate));
    this.running = true;
    this.port.onmessage = ({ data }) => {
      if (data.stop) this.running = false;
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (this.running && input.length > 0) {
      for (const frame of this.chunker.push(this.resampler.process(input[0]))) {
        const pcm = encodePcm16(frame);
        this.port.postMessage({ pcm, rms: rms(frame) }, [pcm]);
      }
    }
    return this.running;
  }
}

registerProcessor('telestra-playout', PlayoutProcessor);
registerProcessor('telestra-capture', CaptureProcessor);
