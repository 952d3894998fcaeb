// The comparison panel: a learner's attempt next to the native reference, on the reference's
// clock. Shown by the learner page after an attempt and by `rtmri compare`'s compare.html.
// payload (rtmri.lessons.panel.panel_payload): comparison (score, curves, segments, phones),
// lesson (words), labels (articulator -> [x, y] fractions), frames {reference, attempt} (JPEG
// data URLs, one per reference frame), audio {reference, attempt} (WAV data URLs, same clock).

const FPS = 25;
const SPEEDS = [1, 0.5, 0.25];
const ROW = 58; // px of one curve in the SVG's own units
const WIDTH = 600;
const LEFT = 92;
const TEXT = {
  en: {
    score: "Score", play: "Play", pause: "Pause", speed: "Speed", labels: "Labels", you: "You (aligned)",
    reference: "Reference", differ: "Where you differ", none: "No large difference from the reference. Well done!",
    attempts: "Your attempts at this item", sound: "Sound", both: "both", ref_only: "reference", you_only: "you",
    keys: "Keys: Space play/pause · ←/→ one frame · 1 2 3 speed 1× 0.5× 0.25× · L labels · J/E language",
    curves: "How narrow each part of the vocal tract is (mm; 0 = closed)", time: "time on the reference (s)",
    score_rule: "100 = the reference's articulation; 50 ≈ 3.5 mm apart on average", language: "日本語",
  },
  ja: {
    score: "スコア", play: "再生", pause: "一時停止", speed: "速度", labels: "ラベル", you: "あなた（揃えた時間）",
    reference: "お手本", differ: "お手本と違うところ", none: "お手本との大きな違いはありません。よくできました！",
    attempts: "この項目のこれまでの試行", sound: "音声", both: "両方", ref_only: "お手本", you_only: "あなた",
    keys: "キー: スペース 再生/停止 · ←/→ 1コマ · 1 2 3 速度 1× 0.5× 0.25× · L ラベル · J/E 言語",
    curves: "声道の各部分の狭さ（mm、0 = 閉鎖）", time: "お手本の時間（秒）",
    score_rule: "100 = お手本と同じ調音、50 ≈ 平均 3.5 mm の違い", language: "English",
  },
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node[k] = v; else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// A data URL's bytes, without fetch (the page's policy lets it connect to its own server only).
function dataBytes(url) {
  const text = atob(url.slice(url.indexOf(",") + 1));
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes.buffer;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = reject;
    image.src = url;
  });
}

// The curves: one row per articulator, reference solid, attempt dashed, differences shaded,
// the reference's phones on top, a cursor at the current time.
function drawCurves(svg, comparison, lang) {
  svg.replaceChildren();
  const arts = comparison.articulators;
  const times = comparison.times_s;
  const end = times.length / FPS;
  const top = 16;
  const height = top + ROW * arts.length + 22;
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
  const x = (t) => LEFT + ((WIDTH - LEFT - 6) * t) / end;
  for (const phone of comparison.phones) {
    svg.append(svgEl("line", { x1: x(phone.start), x2: x(phone.start), y1: top, y2: top + ROW * arts.length, class: "cmp-phone-line", stroke: "#555", "stroke-width": 0.6 }));
    const label = svgEl("text", { x: (x(phone.start) + x(phone.end)) / 2, y: top - 4, "text-anchor": "middle", "font-size": 11, fill: "currentColor", class: "cmp-phone" });
    label.textContent = phone.phone;
    svg.append(label);
  }
  arts.forEach((art, row) => {
    const y0 = top + row * ROW;
    const ref = comparison.reference[art.key];
    const att = comparison.attempt[art.key];
    const values = ref.concat(att).filter((v) => v !== null);
    const lo = Math.min(0, ...values);
    const hi = Math.max(lo + 2, ...values);
    const y = (v) => y0 + ROW - 6 - ((ROW - 12) * (v - lo)) / (hi - lo);
    for (const segment of comparison.segments.filter((s) => s.articulator === art.key)) {
      svg.append(svgEl("rect", { x: x(segment.start_s), width: Math.max(2, x(segment.end_s) - x(segment.start_s)), y: y0 + 2, height: ROW - 4, fill: "#f90", opacity: 0.3, class: "cmp-difference" }));
    }
    const path = (curve) => curve.map((v, k) => (v === null ? "" : `${k && curve[k - 1] !== null ? "L" : "M"}${x(times[k]).toFixed(1)},${y(v).toFixed(1)}`)).join("");
    svg.append(svgEl("path", { d: path(ref), fill: "none", stroke: "#ddd", "stroke-width": 1.6, class: "cmp-curve cmp-reference", "data-articulator": art.key }));
    svg.append(svgEl("path", { d: path(att), fill: "none", stroke: "#f55", "stroke-width": 1.6, "stroke-dasharray": "5 3", class: "cmp-curve cmp-attempt", "data-articulator": art.key }));
    const name = svgEl("text", { x: 4, y: y0 + ROW / 2 + 4, "font-size": 12, fill: "currentColor" });
    name.textContent = art[lang];
    svg.append(name);
    svg.append(svgEl("line", { x1: LEFT, x2: WIDTH - 6, y1: y0 + ROW, y2: y0 + ROW, stroke: "#333" }));
  });
  const axis = svgEl("text", { x: (LEFT + WIDTH) / 2, y: height - 4, "text-anchor": "middle", "font-size": 11, fill: "currentColor" });
  axis.textContent = `${TEXT[lang].time}: 0 – ${end.toFixed(2)}`;
  svg.append(axis);
  const cursor = svgEl("line", { x1: LEFT, x2: LEFT, y1: top, y2: top + ROW * arts.length, stroke: "#6cf", "stroke-width": 1.5, class: "cmp-cursor" });
  svg.append(cursor);
  return (t) => { cursor.setAttribute("x1", x(t)); cursor.setAttribute("x2", x(t)); };
}

export function mountComparison(root, payload, options = {}) {
  const comparison = payload.comparison;
  const lesson = payload.lesson || {};
  const n = comparison.times_s.length;
  const duration = n / FPS;
  const state = { t: 0, playing: false, speed: 1, labels: true, sound: "both", lang: options.lang === "ja" ? "ja" : "en", frame: 0 };
  const history = options.history || [];
  root.classList.add("cmp");

  const text = el("p", { class: "cmp-item" });
  const score = el("p", { class: "cmp-score" });
  const rule = el("p", { class: "cmp-rule" });
  const canvases = { reference: el("canvas", { width: 288, height: 288, class: "cmp-reference-picture" }), attempt: el("canvas", { width: 288, height: 288, class: "cmp-attempt-picture" }) };
  const captions = { reference: el("figcaption"), attempt: el("figcaption") };
  const pictures = el("div", { class: "cmp-pictures" },
    el("figure", {}, canvases.reference, captions.reference), el("figure", {}, canvases.attempt, captions.attempt));
  const playButton = el("button", { type: "button", class: "cmp-play" });
  const speedButtons = SPEEDS.map((s) => el("button", { type: "button", class: "cmp-speed", "data-speed": s }, `${s}×`));
  const scrubber = el("input", { type: "range", min: 0, max: n - 1, step: 1, value: 0, class: "cmp-scrubber", "aria-label": "time" });
  const time = el("span", { class: "cmp-time" });
  const labelsButton = el("button", { type: "button", class: "cmp-labels" });
  const soundSelect = el("select", { class: "cmp-sound" });
  const langButton = el("button", { type: "button", class: "cmp-lang" });
  const controls = el("div", { class: "cmp-controls" }, playButton, ...speedButtons, scrubber, time, soundSelect, labelsButton, langButton);
  const differTitle = el("h3");
  const segments = el("ol", { class: "cmp-segments" });
  const historyTitle = el("h3");
  const historyList = el("p", { class: "cmp-history" });
  const curvesTitle = el("h3");
  const svg = svgEl("svg", { class: "cmp-curves", role: "img" });
  const keys = el("p", { class: "cmp-keys" });
  root.replaceChildren(text, score, rule, pictures, controls, differTitle, segments, curvesTitle, svg, historyTitle, historyList, keys);

  let images = { reference: [], attempt: [] };
  let moveCursor = () => {};
  const ready = Promise.all(["reference", "attempt"].map(async (track) => {
    images[track] = await Promise.all(payload.frames[track].map(loadImage));
  })).then(() => draw());

  // sound: both tracks on the reference's clock, the reference on the left, the attempt on the right
  let audio = null;
  const sources = [];
  async function audioReady() {
    if (audio) return audio;
    const context = new AudioContext();
    const decode = (url) => context.decodeAudioData(dataBytes(url));
    const [reference, attempt] = await Promise.all([decode(payload.audio.reference), decode(payload.audio.attempt)]);
    audio = { context, reference, attempt };
    return audio;
  }

  function stopSound() {
    for (const s of sources.splice(0)) { try { s.stop(); } catch (e) { /* already stopped */ } }
  }

  function startSound(a, offset) {
    stopSound();
    const tracks = [["reference", -0.8], ["attempt", 0.8]].filter(([name]) => state.sound === "both" || state.sound === name);
    for (const [name, pan] of tracks) {
      const source = a.context.createBufferSource();
      source.buffer = a[name];
      source.playbackRate.value = state.speed;
      const panner = a.context.createStereoPanner();
      panner.pan.value = state.sound === "both" ? pan : 0;
      source.connect(panner).connect(a.context.destination);
      source.start(0, Math.min(offset, a[name].duration));
      sources.push(source);
    }
  }

  let clock = null;
  async function play() {
    if (state.playing) return;
    if (state.t >= duration - 1 / FPS) state.t = 0;
    state.playing = true;
    let a = null;
    try { a = await audioReady(); await a.context.resume(); } catch (e) { a = null; }
    if (!state.playing) return;
    const running = a && a.context.state === "running";
    const now = () => (running ? a.context.currentTime : performance.now() / 1000);
    clock = { start: now(), from: state.t, now };
    if (running) startSound(a, state.t);
    const step = () => {
      if (!state.playing) return;
      state.t = clock.from + (clock.now() - clock.start) * state.speed;
      if (state.t >= duration) { state.t = duration - 1e-6; pause(); }
      draw();
      if (state.playing) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
    render();
  }

  function pause() {
    state.playing = false;
    stopSound();
    render();
  }

  function seek(t) {
    const playing = state.playing;
    if (playing) pause();
    state.t = Math.max(0, Math.min(duration - 1e-6, t));
    draw();
    if (playing) play();
  }

  function setSpeed(speed) {
    const playing = state.playing;
    if (playing) pause();
    state.speed = speed;
    render();
    if (playing) play();
  }

  function drawPicture(track) {
    const canvas = canvases[track];
    const context = canvas.getContext("2d");
    const image = images[track][state.frame];
    if (image) context.drawImage(image, 0, 0, canvas.width, canvas.height);
    if (!state.labels) return;
    context.font = `bold ${Math.round(canvas.width / 24)}px system-ui, sans-serif`;
    context.textAlign = "center";
    for (const art of comparison.articulators) {
      const at = payload.labels && payload.labels[art.key];
      if (!at) continue;
      const label = art[state.lang];
      const [x, y] = [at[0] * canvas.width, at[1] * canvas.height];
      context.lineWidth = 3;
      context.strokeStyle = "rgba(0,0,0,.8)";
      context.strokeText(label, x, y);
      context.fillStyle = "#ffd54a";
      context.fillText(label, x, y);
    }
  }

  function draw() {
    state.frame = Math.min(n - 1, Math.max(0, Math.floor(state.t * FPS + 1e-9)));
    drawPicture("reference");
    drawPicture("attempt");
    scrubber.value = state.frame;
    const phone = comparison.phones.find((p) => p.start <= state.t && state.t < p.end);
    time.textContent = `${state.t.toFixed(2)} s${phone ? ` /${phone.phone}/` : ""}`;
    captions.attempt.textContent = `${TEXT[state.lang].you} ${comparison.attempt_times_s[state.frame].toFixed(2)} s`;
    moveCursor(state.t);
  }

  function render() {
    const T = TEXT[state.lang];
    const words = [el("span", { class: "jp", lang: "ja" }, lesson.text || lesson.kana || lesson.name || "")];
    if (lesson.kana && lesson.kana !== lesson.text) words.push(el("span", { class: "kana", lang: "ja" }, lesson.kana, " "));
    if (lesson.romaji) words.push(el("span", { class: "romaji" }, lesson.romaji));
    words.push(el("span", { class: "gloss" }, state.lang === "ja" ? (lesson.name_ja || lesson.name || "") : [lesson.name, lesson.gloss].filter(Boolean).join(": ")));
    text.replaceChildren(...words);
    score.replaceChildren(`${T.score} `, el("b", { class: "cmp-score-value" }, String(comparison.score)), " / 100");
    rule.textContent = T.score_rule;
    captions.reference.textContent = T.reference;
    playButton.textContent = state.playing ? T.pause : T.play;
    speedButtons.forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.speed) === state.speed)));
    labelsButton.textContent = T.labels;
    labelsButton.setAttribute("aria-pressed", String(state.labels));
    soundSelect.replaceChildren(...[["both", T.both], ["reference", T.ref_only], ["attempt", T.you_only]].map(([v, label]) => {
      const option = el("option", { value: v }, `${T.sound}: ${label}`);
      option.selected = v === state.sound;
      return option;
    }));
    langButton.textContent = T.language;
    differTitle.textContent = T.differ;
    segments.replaceChildren(...(comparison.segments.length
      ? comparison.segments.map((s) => el("li", {}, el("button", { type: "button", class: "cmp-segment", onclick: () => seek(s.start_s) }, s[state.lang])))
      : [el("li", { class: "cmp-none" }, T.none)]));
    curvesTitle.textContent = T.curves;
    moveCursor = drawCurves(svg, comparison, state.lang);
    historyTitle.textContent = T.attempts;
    historyTitle.hidden = historyList.hidden = history.length === 0;
    historyList.textContent = history.map((h, i) => `${i + 1}: ${h.score}`).join("  ·  ");
    keys.textContent = T.keys;
    root.lang = state.lang;
    draw();
  }

  playButton.onclick = () => (state.playing ? pause() : play());
  speedButtons.forEach((b) => { b.onclick = () => setSpeed(Number(b.dataset.speed)); });
  scrubber.oninput = () => seek(Number(scrubber.value) / FPS);
  labelsButton.onclick = () => { state.labels = !state.labels; render(); };
  soundSelect.onchange = () => { state.sound = soundSelect.value; if (state.playing) { pause(); play(); } };
  const setLang = (lang) => { state.lang = lang; render(); if (options.onLanguage) options.onLanguage(lang); };
  langButton.onclick = () => setLang(state.lang === "ja" ? "en" : "ja");

  const onKey = (event) => {
    if (!root.isConnected || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.tagName === "SELECT" || (target.tagName === "INPUT" && target.type !== "range") || target.tagName === "TEXTAREA")) return;
    const key = event.key.toLowerCase();
    if (key === " ") { state.playing ? pause() : play(); } else if (key === "arrowleft") { seek((state.frame - 1) / FPS); } else if (key === "arrowright") { seek((state.frame + 1) / FPS); } else if (key === "1" || key === "2" || key === "3") { setSpeed(SPEEDS[Number(key) - 1]); } else if (key === "l") { state.labels = !state.labels; render(); } else if (key === "j") { setLang("ja"); } else if (key === "e") { setLang("en"); } else { return; }
    event.preventDefault();
  };
  document.addEventListener("keydown", onKey);
  render();

  return {
    ready,
    state,
    play, pause, seek, setSpeed, setLang,
    destroy() { pause(); document.removeEventListener("keydown", onKey); root.replaceChildren(); },
  };
}
