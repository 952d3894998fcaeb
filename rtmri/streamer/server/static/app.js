// rtmri serve: the page. No build step. Protocol: rtmri/streamer/server/protocol.py.
"use strict";
import { mountComparison } from "/compare.js";

const FPS = 25;
const SAMPLE_RATE = 16000;
const SAMPLES_PER_FRAME = SAMPLE_RATE / FPS;
// The frame message's header: field -> [byte offset, DataView getter], little-endian.
// protocol.py's FRAME_LAYOUT is the definition; tests/test_server.py checks this table against it.
const FRAME_HEADER = {"kind": [0, "Uint8"], "version": [1, "Uint8"], "codec": [2, "Uint8"], "track": [3, "Uint8"], "index": [4, "Uint32"], "dropped": [8, "Uint32"], "epoch": [12, "Uint32"], "spoken_at_ms": [16, "Float64"], "audio_ready_at_ms": [24, "Float64"], "made_at_ms": [32, "Float64"], "sent_at_ms": [40, "Float64"], "lips_mm": [48, "Float32"], "alveolar_mm": [52, "Float32"], "palatal_mm": [56, "Float32"], "velar_mm": [60, "Float32"], "pharyngeal_mm": [64, "Float32"], "velopharyngeal_mm": [68, "Float32"], "closed": [72, "Uint8"]};
const HEADER = 73;
const VERSION = 2;
const AUDIO_HEADER = 8;
const KIND_FRAME = 1;
const KIND_AUDIO = 2;
// The regions whose constriction the header carries (field "<region>_mm"), in its order.
const REGIONS = Object.keys(FRAME_HEADER).filter((name) => name.endsWith("_mm")).map((name) => name.slice(0, -3));
// Closure place -> its bit in the header's "closed" field (protocol.py, state.CLOSURE_PLACES).
const CLOSURE_BITS = {"lips": 0, "alveolar": 1, "velar": 2};
const BAR_MAX_MM = 20;
const CODEC_PNG = 2;
const MAX_ATTEMPT_S = 15;

const I18N = {
  en: {
    title: "rtMRI live", fps: "fps", latency: "sound → picture", live: "Live", reference: "Reference",
    mic_start: "Start microphone", mic_stop: "Stop microphone", record: "Record attempt", record_stop: "Stop recording",
    replay: "Replay attempt", play_reference: "Play reference", compare: "Play both",
    track_rendered: "rendered by the model", track_original: "original rtMRI",
    sound_reference: "sound: reference", sound_attempt: "sound: attempt", sound_both: "sound: both",
    no_references: "No reference recordings on this server (start it with --references DIR).",
    speed: "Replay speed", received: "received", painted: "painted", dropped: "dropped",
    transport: "server → screen p50 / p95", a2p: "sound → picture p50 / p95", clock: "clock sync round trip",
    source: "source", state_connecting: "connecting…", state_open: "connected", state_closed: "disconnected",
    live_broadcast: "Live (broadcast)", live_learner: "You, live",
    msg_token: "Access token missing or wrong: open the join URL you were given.",
    msg_full: "The server is full; trying again shortly.", msg_closed: "Connection closed: ",
    msg_mic_denied: "The microphone is not available: ", msg_mic_secure: "The microphone needs https or localhost.",
    msg_recording: "Recording… speak now.", msg_recorded: "Attempt recorded: ", msg_no_original: "This reference has no original rtMRI clip.",
    msg_speak: "Speak: your vocal tract appears on the left.", seconds: "s", source_mic: "this browser's microphone",
    comparison: "Your attempt next to the reference", msg_comparing: "Comparing your attempt with the reference…",
    msg_compare_error: "No score: ",
    articulators: "Articulators", articulators_hint: "narrowest opening in mm (bar: 0–20 mm)", closed: "closed",
    region_lips: "lips", region_alveolar: "tongue tip", region_palatal: "tongue body (palatal)",
    region_velar: "back of the tongue (velar)", region_pharyngeal: "tongue root (pharyngeal)",
    region_velopharyngeal: "velum (port opening)",
    msg_reconnecting: "The connection to the server was lost; reconnecting…",
    msg_reconnected: "The server you were on went away: you are now on another one (your recorded attempt is kept). ",
    msg_moving: "This server is being restarted: moving you to another one…",
    msg_comparison_lost: "The comparison was lost with the server; record your attempt again to compare it.",
  },
  ja: {
    title: "リアルタイムMRI ライブ", fps: "fps", latency: "音声→映像", live: "ライブ", reference: "お手本",
    mic_start: "マイク開始", mic_stop: "マイク停止", record: "発音を録画", record_stop: "録画停止",
    replay: "録画を再生", play_reference: "お手本を再生", compare: "並べて再生",
    track_rendered: "モデルで生成", track_original: "元のrtMRI",
    sound_reference: "音声: お手本", sound_attempt: "音声: 自分", sound_both: "音声: 両方",
    no_references: "このサーバーにはお手本の録音がありません（--references DIR で起動してください）。",
    speed: "再生速度", received: "受信", painted: "描画", dropped: "欠落",
    transport: "サーバー→画面 p50 / p95", a2p: "音声→映像 p50 / p95", clock: "時計合わせの往復時間",
    source: "音源", state_connecting: "接続中…", state_open: "接続済み", state_closed: "切断",
    live_broadcast: "ライブ（配信）", live_learner: "あなた（ライブ）",
    msg_token: "アクセストークンがないか間違っています。配布された参加URLを開いてください。",
    msg_full: "サーバーが満員です。しばらくして再接続します。", msg_closed: "接続が閉じられました: ",
    msg_mic_denied: "マイクが使えません: ", msg_mic_secure: "マイクには https または localhost が必要です。",
    msg_recording: "録画中… 話してください。", msg_recorded: "録画しました: ", msg_no_original: "このお手本には元のrtMRI映像がありません。",
    msg_speak: "話してください。左にあなたの声道が表示されます。", seconds: "秒", source_mic: "このブラウザのマイク",
    comparison: "お手本とあなたの発音", msg_comparing: "お手本と比べています…", msg_compare_error: "スコアなし: ",
    articulators: "調音器官", articulators_hint: "最も狭いところの開き（mm、棒は 0–20 mm）", closed: "閉鎖",
    region_lips: "唇", region_alveolar: "舌先", region_palatal: "舌の中ほど（硬口蓋）",
    region_velar: "奥舌（軟口蓋）", region_pharyngeal: "舌根（咽頭）",
    region_velopharyngeal: "軟口蓋（鼻への通り道の開き）",
    msg_reconnecting: "サーバーとの接続が切れました。再接続しています…",
    msg_reconnected: "接続していたサーバーが停止したため、別のサーバーに接続しました（録画した発音はそのまま残っています）。",
    msg_moving: "このサーバーは再起動します。別のサーバーに移動しています…",
    msg_comparison_lost: "比較はサーバーとともに失われました。もう一度録画して比べてください。",
  },
};

const $ = (id) => document.getElementById(id);
const hashParams = new URLSearchParams(location.hash.slice(1));
const queryParams = new URLSearchParams(location.search);
const token = hashParams.get("token") || queryParams.get("token") || "";
const debug = hashParams.has("debug") || queryParams.has("debug");
let lang = queryParams.get("lang") || localStorage.getItem("rtmri-lang") || (navigator.language.startsWith("ja") ? "ja" : "en");
if (!I18N[lang]) lang = "en";
const t = (key) => I18N[lang][key] || I18N.en[key] || key;

// What the page measured; the browser test reads this.
const stats = {
  state: "connecting", mode: null, received: 0, painted: 0, dropped: 0, fps: 0,
  offsetMs: null, rttMs: null, transport: [], a2p: [], closeCode: null, closeReason: "",
  micRunning: false, sentSamples: 0, trace: [], audioRms: {}, articulation: null,
  worker: null, reconnects: 0, reconnectMs: null, notice: "",
};
window.rtmriStats = stats;

let ws = null;
let welcome = null;
let message = { key: "", extra: "" };

// ---- frames ------------------------------------------------------------------

function parseFrame(buffer, offset = 0, length = buffer.byteLength - offset) {
  if (length < HEADER) return null;
  const v = new DataView(buffer, offset, length);
  const frame = {};
  for (const [name, [at, type]] of Object.entries(FRAME_HEADER)) frame[name] = v["get" + type](at, true);
  if (frame.kind !== KIND_FRAME || frame.version !== VERSION) return null;
  const type = frame.codec === CODEC_PNG ? "image/png" : "image/jpeg";
  frame.image = new Blob([new Uint8Array(buffer, offset + HEADER, length - HEADER)], { type });
  return frame;
}
window.rtmriProtocol = { frameHeader: FRAME_HEADER, headerBytes: HEADER, parseFrame }; // for the browser test

function draw(canvas, bitmap) {
  const g = canvas.getContext("2d");
  g.imageSmoothingQuality = "high";
  g.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
}

const probe = document.createElement("canvas");
probe.width = probe.height = 32;
function lowerHalfMean(bitmap) {
  const g = probe.getContext("2d", { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0, 32, 32);
  const d = g.getImageData(0, 16, 32, 16).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) sum += d[i];
  return sum / (d.length / 4);
}

let latest = null; // the newest decoded live frame not yet painted
let decodeSeq = 0;
let placedSeq = 0;
let paintScheduled = false;
let replaying = 0; // players drawing on the live canvas
const paintTimes = [];

async function onFrame(buffer) {
  const frame = parseFrame(buffer);
  if (!frame) return;
  stats.received++;
  stats.dropped += frame.dropped;
  frame.receivedAt = performance.now();
  recorder.frame(frame);
  const seq = ++decodeSeq;
  let bitmap;
  try {
    bitmap = await createImageBitmap(frame.image);
  } catch (e) {
    return;
  }
  if (seq < placedSeq) { bitmap.close(); return; } // a newer frame was decoded first
  placedSeq = seq;
  if (latest) latest.bitmap.close();
  latest = { frame, bitmap };
  if (!paintScheduled) { paintScheduled = true; requestAnimationFrame(paint); }
}

function paint() {
  paintScheduled = false;
  if (!latest) return;
  const { frame, bitmap } = latest;
  latest = null;
  if (replaying) { bitmap.close(); return; } // the live canvas shows a replay now
  draw($("live"), bitmap);
  showArticulation(frame);
  const now = performance.now();
  stats.painted++;
  paintTimes.push(now);
  while (paintTimes.length > 1 && now - paintTimes[0] > 2000) paintTimes.shift();
  if (stats.offsetMs !== null) {
    push(stats.transport, now - (frame.sent_at_ms - stats.offsetMs));
    const spoken = stats.mode === "learner" ? mic.spokenAt(frame.index, frame.epoch) : frame.spoken_at_ms - stats.offsetMs;
    if (spoken !== null && frame.spoken_at_ms > 0) push(stats.a2p, now - spoken);
  }
  if (debug) {
    stats.trace.push({ index: frame.index, epoch: frame.epoch, lower: lowerHalfMean(bitmap), t: now });
    if (stats.trace.length > 3000) stats.trace.shift();
  }
  bitmap.close();
}

// ---- the articulators: the live frame's constrictions (articulatory bundles) ---------------

function buildArticulators() {
  const row = (region) => {
    const li = document.createElement("li");
    li.dataset.region = region;
    li.innerHTML = '<span class="name"></span><span class="shut" hidden></span>'
      + '<span class="bar" aria-hidden="true"><span class="fill"></span></span><span class="value">–</span>';
    li.querySelector(".name").dataset.i18n = "region_" + region;
    li.querySelector(".shut").dataset.i18n = "closed";
    return li;
  };
  $("articulator-rows").replaceChildren(...REGIONS.map(row));
}

function showArticulation(frame) {
  const mm = Object.fromEntries(REGIONS.map((region) => [region, frame[region + "_mm"]]));
  const known = REGIONS.some((region) => Number.isFinite(mm[region]));
  $("articulators").hidden = !known;
  stats.articulation = known ? { mm, closed: frame.closed } : null;
  if (!known) return;
  for (const li of $("articulator-rows").children) {
    const value = mm[li.dataset.region];
    const bit = CLOSURE_BITS[li.dataset.region];
    const shut = bit !== undefined && (frame.closed & (1 << bit)) !== 0;
    const finite = Number.isFinite(value);
    li.classList.toggle("closed", shut);
    li.querySelector(".shut").hidden = !shut;
    li.querySelector(".fill").style.width = finite ? `${(100 * Math.min(value, BAR_MAX_MM)) / BAR_MAX_MM}%` : "0";
    li.querySelector(".value").textContent = finite ? `${value.toFixed(1)} mm` : "–";
  }
}

function push(list, value) {
  list.push(value);
  if (list.length > 200) list.shift();
}

function percentile(list, p) {
  if (!list.length) return null;
  const s = [...list].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

// ---- connection and clock offset ---------------------------------------------------

const pongs = [];
let pingTimer = null;
let reconnectDelay = 1000;
// A server that went away (killed, restarted, draining) is replaced at once by another behind
// the balancer: the page tries again within RECONNECT_FIRST_MS (spread, so that a worker's
// learners do not all arrive in the same millisecond), then backs off.
const RECONNECT_FIRST_MS = 150;
const RECONNECT_SPREAD_MS = 350;
const CLOSE_MOVE = 4001; // protocol.py: the server drains, connect again
const CLOSE_MOVING = 4000; // the page closes to move (after a "move" message)
const lost = { at: null, worker: null, moving: false }; // a connection that went away, until the next welcome

// The notice that the page moved to another server: made here, next to the message line.
const notice = document.createElement("p");
notice.id = "connection-notice";
notice.setAttribute("role", "status");
notice.hidden = true;
$("message").insertAdjacentElement("afterend", notice);

function showNotice(key, extra = "") {
  stats.notice = key;
  notice.dataset.key = key;
  notice.dataset.extra = extra;
  notice.textContent = key ? t(key) + extra : "";
  notice.hidden = !key;
}

function serverWentAway(code) {
  return code === 1006 || code === 1001 || code === 1011 || code === 1012 || code === CLOSE_MOVE || code === CLOSE_MOVING;
}

function connect() {
  setState("connecting");
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: "hello", token }));
    pongs.length = 0;
    let n = 0;
    const ping = () => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping", t0: performance.now() }));
      pingTimer = setTimeout(ping, ++n < 5 ? 250 : 2000);
    };
    ping();
  };
  ws.onmessage = (e) => (typeof e.data === "string" ? onControl(JSON.parse(e.data)) : onFrame(e.data));
  ws.onclose = (e) => {
    clearTimeout(pingTimer);
    stats.closeCode = e.code;
    stats.closeReason = e.reason;
    const wasOpen = stats.state === "open";
    mic.streaming = false; // its stream was that server's; a new one starts on the next
    setState("closed");
    recorder.stop(); // what was recorded so far stays the attempt
    if (comparison.pending) { comparison.pending = false; $("compare-message").textContent = t("msg_comparison_lost"); }
    if (e.code === 1008 && /token/.test(e.reason)) { mic.stop(false); say("msg_token"); return; }
    let delay = reconnectDelay;
    if (serverWentAway(e.code)) {
      if (wasOpen) {
        lost.at = performance.now();
        lost.worker = welcome && welcome.worker;
        delay = RECONNECT_FIRST_MS + Math.random() * RECONNECT_SPREAD_MS;
      }
      showNotice(lost.moving ? "msg_moving" : "msg_reconnecting");
    } else { // refused or closed by the server for a reason: the microphone stops, as the learner is told
      mic.stop(false);
      lost.at = null;
      if (e.code === 1013) { say("msg_full"); delay = reconnectDelay = 5000; }
      else say("msg_closed", `${e.code} ${e.reason}`);
    }
    setTimeout(connect, delay);
    reconnectDelay = Math.min(reconnectDelay * 2, 15000);
  };
}

function onControl(m) {
  if (m.type === "welcome") {
    welcome = m;
    stats.mode = m.mode;
    stats.worker = m.worker || null;
    setState("open");
    reconnectDelay = 1000;
    if (lost.at !== null) { // back after losing a server: say so, and carry on where the learner was
      stats.reconnects++;
      stats.reconnectMs = performance.now() - lost.at;
      showNotice("msg_reconnected", m.worker ? `(${lost.worker || "?"} → ${m.worker})` : "");
      lost.at = null;
      lost.moving = false;
    } else {
      showNotice("");
    }
    if (mic.running && !mic.streaming) mic.beginStream(); // carry on where the learner was
    $("d-source").textContent = m.mode === "learner" ? t("source_mic") : m.source || "–";
    loadReferences(m.references || []);
    if (m.mode === "learner") say("msg_speak");
    render();
  } else if (m.type === "pong") {
    const now = performance.now();
    pongs.push({ rtt: now - m.t0, offset: m.server_ms - (m.t0 + now) / 2 });
    if (pongs.length > 10) pongs.shift();
    const best = pongs.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    stats.offsetMs = best.offset;
    stats.rttMs = best.rtt;
  } else if (m.type === "started") {
    mic.epoch = m.epoch;
  } else if (m.type === "status") {
    stats.server = m;
  } else if (m.type === "comparison") {
    showComparison(m);
  } else if (m.type === "move") { // the server drains: go now, the balancer picks another
    lost.moving = true;
    ws.close(CLOSE_MOVING, "moving");
  }
}

function setState(state) {
  stats.state = state;
  $("state").dataset.state = state;
  $("state").textContent = t("state_" + state);
  render();
}

function say(key, extra = "") {
  message = { key, extra };
  $("message").textContent = key ? t(key) + extra : "";
}

// ---- learner microphone ------------------------------------------------------------

const mic = {
  running: false, starting: false, streaming: false, stream: null, ctx: null, node: null, offset: 0, epoch: null, anchor: null, inputLatencyMs: 0,
  rms: { block: -1, sum: 0, n: 0 },

  async start() {
    if (this.running || this.starting) return;
    if (!navigator.mediaDevices || !window.isSecureContext) { say("msg_mic_secure"); return; }
    this.starting = true;
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (e) {
      say("msg_mic_denied", e.message || e.name);
      return;
    } finally {
      this.starting = false;
    }
    let source;
    try {
      this.ctx = new AudioContext({ sampleRate: SAMPLE_RATE });
      source = this.ctx.createMediaStreamSource(this.stream);
    } catch (e) { // a browser that cannot resample the microphone itself: the worklet does
      if (this.ctx) this.ctx.close();
      this.ctx = new AudioContext();
      source = this.ctx.createMediaStreamSource(this.stream);
    }
    await this.ctx.audioWorklet.addModule("/worklet.js");
    this.node = new AudioWorkletNode(this.ctx, "rtmri-capture", {
      processorOptions: { targetRate: SAMPLE_RATE, chunk: 320 }, numberOfOutputs: 1, outputChannelCount: [1],
    });
    this.node.port.onmessage = (e) => this.chunk(e.data);
    source.connect(this.node);
    this.node.connect(this.ctx.destination); // silent: keeps the graph pulling
    const settings = this.stream.getAudioTracks()[0].getSettings();
    this.inputLatencyMs = (settings.latency || 0) * 1000;
    this.running = stats.micRunning = true;
    if (ws && ws.readyState === WebSocket.OPEN) this.beginStream(); // else at the next welcome
    render();
  },

  chunk(samples) {
    if (!this.running || !this.streaming || !ws || ws.readyState !== WebSocket.OPEN) return;
    const now = performance.now();
    if (this.anchor === null) this.anchor = { t: now - this.inputLatencyMs, end: samples.length };
    const buffer = new ArrayBuffer(AUDIO_HEADER + samples.length * 2);
    const v = new DataView(buffer);
    v.setUint8(0, KIND_AUDIO); v.setUint8(1, VERSION); v.setUint16(2, 0, true); v.setUint32(4, this.offset, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      v.setInt16(AUDIO_HEADER + 2 * i, Math.round(s * 32767), true);
    }
    ws.send(buffer);
    recorder.audio(samples);
    if (debug) this.measure(samples);
    this.offset += samples.length;
    stats.sentSamples = this.offset;
  },

  measure(samples) { // RMS per frame-long block, for the browser test
    for (let i = 0; i < samples.length; i++) {
      const block = Math.floor((this.offset + i) / SAMPLES_PER_FRAME);
      if (block !== this.rms.block) {
        if (this.rms.n) stats.audioRms[`${this.epoch}:${this.rms.block}`] = Math.sqrt(this.rms.sum / this.rms.n);
        this.rms = { block, sum: 0, n: 0 };
      }
      this.rms.sum += samples[i] * samples[i];
      this.rms.n++;
    }
  },

  beginStream() { // a new stream on the server now connected: at the start, and on a new server
    this.offset = 0;
    this.epoch = null;
    this.anchor = null;
    this.rms = { block: -1, sum: 0, n: 0 };
    ws.send(JSON.stringify({ type: "start" }));
    this.streaming = true;
  },

  spokenAt(index, epoch) { // browser time the sound at frame index's timestamp reached the microphone
    if (epoch !== this.epoch || this.anchor === null) return null;
    return this.anchor.t + ((index * SAMPLES_PER_FRAME - this.anchor.end) * 1000) / SAMPLE_RATE;
  },

  stop(tell = true) {
    if (!this.running) return;
    this.running = stats.micRunning = this.streaming = false;
    if (tell && ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "stop" }));
    if (this.node) this.node.disconnect();
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.ctx) this.ctx.close();
    this.node = this.stream = this.ctx = null;
    recorder.stop();
    render();
  },
};

// ---- record an attempt, replay it ------------------------------------------------

let playCtx = null;
function audioContext() {
  if (!playCtx) playCtx = new AudioContext();
  return playCtx;
}

const recorder = {
  active: false, frames: [], pcm: [], startSample: 0, firstIndex: null, attempt: null, timer: null,

  start() {
    this.active = true;
    this.frames = [];
    this.pcm = [];
    this.firstIndex = null;
    this.startSample = mic.running ? mic.offset : 0;
    this.timer = setTimeout(() => this.stop(), MAX_ATTEMPT_S * 1000);
    say("msg_recording");
    render();
  },

  frame(frame) {
    if (!this.active) return;
    if (stats.mode === "learner") {
      if (frame.epoch !== mic.epoch || frame.index * SAMPLES_PER_FRAME < this.startSample) return;
    } else if (this.firstIndex === null) {
      this.firstIndex = frame.index;
    }
    this.frames.push(frame);
  },

  audio(samples) {
    if (this.active) this.pcm.push(samples.slice());
  },

  stop() {
    if (!this.active) return;
    this.active = false;
    clearTimeout(this.timer);
    const learner = stats.mode === "learner";
    const frames = this.frames.map((f) => ({
      t: learner ? (f.index * SAMPLES_PER_FRAME - this.startSample) / SAMPLE_RATE : (f.index - this.firstIndex) / FPS,
      blob: f.image,
    })).filter((f) => f.t >= 0);
    let audio = null;
    const length = this.pcm.reduce((n, p) => n + p.length, 0);
    if (learner && length) {
      audio = audioContext().createBuffer(1, length, SAMPLE_RATE);
      const data = audio.getChannelData(0);
      let at = 0;
      for (const p of this.pcm) { data.set(p, at); at += p.length; }
    }
    this.pcm = [];
    this.frames = [];
    if (frames.length) {
      this.attempt = { frames, audio };
      if (learner && length) requestComparison(this.startSample, this.startSample + length);
      const seconds = frames[frames.length - 1].t + 1 / FPS;
      say("msg_recorded", `${seconds.toFixed(1)} ${t("seconds")}`);
    }
    render();
  },
};

// A clip: frames [{t (s), blob}] and optional AudioBuffer, played on a canvas at a speed.
async function play(canvas, clip, speed, withSound, startAt) {
  const bitmaps = await Promise.all(clip.frames.map((f) => createImageBitmap(f.blob)));
  const ctx = audioContext();
  await ctx.resume();
  const start = startAt ?? ctx.currentTime + 0.15;
  if (clip.audio && withSound) {
    const source = ctx.createBufferSource();
    source.buffer = clip.audio;
    source.playbackRate.value = speed;
    source.connect(ctx.destination);
    source.start(start);
  }
  const end = clip.frames[clip.frames.length - 1].t + 1 / FPS;
  const onLive = canvas === $("live");
  if (onLive) replaying++;
  canvas.classList.add("replaying");
  await new Promise((resolve) => {
    let shown = -1;
    const step = () => {
      const elapsed = (ctx.currentTime - start) * speed;
      let i = shown;
      while (i + 1 < clip.frames.length && clip.frames[i + 1].t <= elapsed) i++;
      if (i !== shown && i >= 0) { draw(canvas, bitmaps[i]); shown = i; }
      if (elapsed > end) resolve(); else requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  bitmaps.forEach((b) => b.close());
  canvas.classList.remove("replaying");
  if (onLive) replaying--;
}

const speed = () => Number($("speed").value);

// ---- references --------------------------------------------------------------------

const referenceCache = new Map();

function loadReferences(list) {
  const select = $("ref-select");
  const previous = select.value;
  select.replaceChildren(...list.map((r) => {
    const option = document.createElement("option");
    option.value = r.id;
    const words = r.lesson && r.lesson.romaji ? `: ${r.lesson.text} ${r.lesson.romaji}` : "";
    option.textContent = `${r.name}${words} (${r.duration_s.toFixed(1)} s)`;
    option.dataset.original = r.original ? "1" : "";
    return option;
  }));
  if (list.some((r) => r.id === previous)) select.value = previous;
  $("ref-empty").hidden = list.length > 0;
  $("ref-controls").hidden = list.length === 0;
  render();
}

async function fetchReference(id, track) {
  const key = `${id}/${track}`;
  if (referenceCache.has(key)) return referenceCache.get(key);
  const q = `?token=${encodeURIComponent(token)}`;
  const [bin, wav] = await Promise.all([
    fetch(`/references/${id}/${track}.bin${q}`).then((r) => { if (!r.ok) throw new Error(r.statusText); return r.arrayBuffer(); }),
    fetch(`/references/${id}/audio.wav${q}`).then((r) => r.arrayBuffer()),
  ]);
  const frames = [];
  const v = new DataView(bin);
  for (let at = 0; at + 4 <= bin.byteLength;) {
    const length = v.getUint32(at, true);
    const frame = parseFrame(bin, at + 4, length);
    if (frame) frames.push({ t: frame.index / FPS, blob: frame.image });
    at += 4 + length;
  }
  const clip = { frames, audio: await audioContext().decodeAudioData(wav) };
  referenceCache.set(key, clip);
  return clip;
}

async function reference() {
  const option = $("ref-select").selectedOptions[0];
  if (!option) return null;
  const track = $("ref-track").value;
  if (track === "original" && !option.dataset.original) { say("msg_no_original"); return null; }
  return fetchReference(option.value, track);
}

// ---- comparison with the reference (compare.js; the server: rtmri/lessons/live.py) -----

const comparison = { panel: null, asked: 0, histories: new Map(), pending: false };

function requestComparison(start, end) {
  const reference = $("ref-select").value;
  if (!reference || !ws || ws.readyState !== WebSocket.OPEN) return;
  comparison.asked += 1;
  ws.send(JSON.stringify({ type: "compare", id: comparison.asked, reference, start, end }));
  comparison.pending = true;
  $("comparison-section").hidden = false;
  $("compare-message").textContent = t("msg_comparing");
}

function showComparison(m) {
  if (m.id !== undefined && m.id !== comparison.asked) return; // an answer to an older attempt
  comparison.pending = false;
  $("comparison-section").hidden = false;
  if (m.error) {
    $("compare-message").textContent = t("msg_compare_error") + m.error;
    return;
  }
  $("compare-message").textContent = "";
  const key = m.lesson.id || m.lesson.name;
  const history = comparison.histories.get(key) || [];
  history.push({ score: m.comparison.score });
  comparison.histories.set(key, history);
  if (comparison.panel) comparison.panel.destroy();
  comparison.panel = mountComparison($("comparison"), m, { lang, history, onLanguage: (l) => setLanguage(l) });
  window.rtmriComparison = comparison.panel;
}

// ---- controls ----------------------------------------------------------------------

function render() {
  const open = stats.state === "open";
  const learner = stats.mode === "learner";
  $("live-title").textContent = t(stats.mode ? (learner ? "live_learner" : "live_broadcast") : "live");
  const micButton = $("mic");
  micButton.hidden = !learner;
  micButton.disabled = !open;
  micButton.textContent = t(mic.running ? "mic_stop" : "mic_start");
  micButton.classList.toggle("active", mic.running);
  const recordButton = $("record");
  recordButton.disabled = !open || (learner && !mic.running && !recorder.active);
  recordButton.textContent = t(recorder.active ? "record_stop" : "record");
  recordButton.classList.toggle("active", recorder.active);
  $("replay").disabled = !recorder.attempt;
  const haveReference = $("ref-select").options.length > 0;
  $("ref-play").disabled = !haveReference;
  $("compare").disabled = !haveReference || !recorder.attempt;
  document.documentElement.lang = lang;
  $("lang-ja").setAttribute("aria-pressed", String(lang === "ja"));
  $("lang-en").setAttribute("aria-pressed", String(lang === "en"));
}

function setLanguage(next) {
  lang = next;
  localStorage.setItem("rtmri-lang", lang);
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.title = t("title");
  if (comparison.panel && comparison.panel.state.lang !== lang) comparison.panel.setLang(lang);
  setState(stats.state);
  say(message.key, message.extra);
  showNotice(notice.dataset.key || "", notice.dataset.extra || "");
}

$("lang-ja").onclick = () => setLanguage("ja");
$("lang-en").onclick = () => setLanguage("en");
$("mic").onclick = () => (mic.running ? mic.stop() : mic.start());
$("record").onclick = () => (recorder.active ? recorder.stop() : recorder.start());
$("replay").onclick = () => recorder.attempt && play($("live"), recorder.attempt, speed(), true);
$("ref-play").onclick = async () => {
  const clip = await reference();
  if (clip) play($("reference"), clip, speed(), true);
};
$("compare").onclick = async () => {
  const clip = await reference();
  if (!clip || !recorder.attempt) return;
  const sound = $("compare-sound").value;
  const start = audioContext().currentTime + 0.5; // both decoded by then
  play($("reference"), clip, speed(), sound !== "attempt", start);
  play($("live"), recorder.attempt, speed(), sound !== "reference", start);
};

setInterval(() => {
  const now = performance.now();
  stats.fps = paintTimes.length > 1 ? ((paintTimes.length - 1) * 1000) / (paintTimes[paintTimes.length - 1] - paintTimes[0]) : 0;
  if (paintTimes.length && now - paintTimes[paintTimes.length - 1] > 1000) stats.fps = 0;
  const ms = (x) => (x === null ? "–" : `${Math.round(x)} ms`);
  const a2p50 = percentile(stats.a2p, 0.5);
  $("fps").textContent = stats.fps.toFixed(1);
  $("latency").textContent = ms(a2p50);
  $("d-received").textContent = stats.received;
  $("d-painted").textContent = stats.painted;
  $("d-dropped").textContent = stats.dropped;
  $("d-transport").textContent = `${ms(percentile(stats.transport, 0.5))} / ${ms(percentile(stats.transport, 0.95))}`;
  $("d-a2p").textContent = `${ms(a2p50)} / ${ms(percentile(stats.a2p, 0.95))}`;
  $("d-clock").textContent = stats.rttMs === null ? "–" : `${stats.rttMs.toFixed(1)} ms`;
}, 500);

buildArticulators();
setLanguage(lang);
connect();
