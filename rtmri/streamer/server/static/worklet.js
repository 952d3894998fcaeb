// rtmri-capture: the microphone as 16 kHz mono float chunks, posted to the page.
// Where the AudioContext already runs at 16 kHz (Chromium) the samples pass through;
// otherwise they are smoothed with a moving average (a crude anti-alias filter) and
// resampled by linear interpolation.
class Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.chunk = o.chunk || 320;
    this.step = sampleRate / (o.targetRate || 16000);
    this.taps = this.step > 1.5 ? Math.round(this.step) : 1;
    this.history = new Float32Array(this.taps);
    this.h = 0;
    this.sum = 0;
    this.pos = 0; // next output position, in input samples from the block start (-1: the previous sample)
    this.prev = 0;
    this.out = new Float32Array(this.chunk);
    this.n = 0;
  }

  emit(v) {
    this.out[this.n++] = v;
    if (this.n === this.chunk) {
      this.port.postMessage(this.out, [this.out.buffer]);
      this.out = new Float32Array(this.chunk);
      this.n = 0;
    }
  }

  smooth(x) {
    if (this.taps === 1) return x;
    const y = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      this.sum += x[i] - this.history[this.h];
      this.history[this.h] = x[i];
      this.h = (this.h + 1) % this.taps;
      y[i] = this.sum / this.taps;
    }
    return y;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    if (this.step === 1) {
      for (const v of input[0]) this.emit(v);
      return true;
    }
    const x = this.smooth(input[0]);
    const last = x.length - 1;
    while (this.pos < last) {
      const i = Math.floor(this.pos);
      const a = i < 0 ? this.prev : x[i];
      this.emit(a + (x[i + 1] - a) * (this.pos - i));
      this.pos += this.step;
    }
    this.pos -= x.length;
    this.prev = x[last];
    return true;
  }
}

registerProcessor("rtmri-capture", Capture);
