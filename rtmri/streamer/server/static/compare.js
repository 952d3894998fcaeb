// The comparison panel: a learner's attempt next to the native reference, on the reference's
// clock. Shown by the learner page after an attempt and by `rtmri compare`'s compare.html.
// payload (rtmri.lessons.panel.panel_payload): comparison (score, curves, segments, phones),
// lesson (words), labels (articulator -> [x, y] fractions), frames {reference, attempt} (JPEG
// data URLs, one per reference frame), audio {reference, attempt} (WAV data URLs, same clock).

const FPS = 25;
const SPEEDS = [1, 0.5, 0.25];
const ROW = 58; // px of one curve (the SVG's units are the page's px)
const MIN_WIDTH = 300; // the SVG's width in its units when it is narrower or not laid out yet
const NAME_SIZE = 12; // the curves' names, in the SVG's units
const NAME_GAP = 8; // between the longest name and the curves
const LABEL_GAP = 2; // px kept between two labels on a picture
const DOT_RADIUS = 2.5; // px: the point a moved label names
const RING_ANGLES = 16; // candidate places per ring around a label's point
const TEXT = {
  en: {
    score: "Score", play: "Play", pause: "Pause", speed: "Speed", labels: "Labels", you: "You (aligned)",
    reference: "Reference", differ: "Where you differ", none: "No large difference from the reference. Well done!",
    attempts: "Your attempts at this item", sound: "Sound", both: "both", ref_only: "reference", you_only: "you",
    keys: "Keys: Space play/pause · ←/→ one frame · 1 2 3 speed 1× 0.5× 0.25× · L labels · J/E language",
    curves: "How narrow each part of the vocal tract is (mm; 0 = closed)", time: "time on the reference (s)",
    score_means: "100 = the reference's articulation and timing. Score =", language: "日本語",
  },
  ja: {
    score: "スコア", play: "再生", pause: "一時停止", speed: "速度", labels: "ラベル", you: "あなた（揃えた時間）",
    reference: "お手本", differ: "お手本と違うところ", none: "お手本との大きな違いはありません。よくできました！",
    attempts: "この項目のこれまでの試行", sound: "音声", both: "両方", ref_only: "お手本", you_only: "あなた",
    keys: "キー: スペース 再生/停止 · ←/→ 1コマ · 1 2 3 速度 1× 0.5× 0.25× · L ラベル · J/E 言語",
    curves: "声道の各部分の狭さ（mm、0 = 閉鎖）", time: "お手本の時間（秒）",
    score_means: "100 = お手本と同じ調音とタイミング。スコア =", language: "English",
  },
};

// A phone as the learner reads it: its IPA (rtmri.lessons.ipa), else the synthesizer's SAMPA.
const phoneName = (phone) => phone.ipa || phone.phone;

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

// Where each articulator's label goes on a picture width × height px: items [{x, y, w, h}] (its
// point and its size), placed in turn on rings around their points, nearest first; a place must
// stay inside the picture and clear every label placed before it (and, if it can, every other
// point). Returns [{left, top}] (px), or null when some label finds no place.
export function layoutLabels(items, width, height) {
  const placed = [];
  const clear = (a, b) => a.left + a.w + LABEL_GAP <= b.left || b.left + b.w + LABEL_GAP <= a.left
    || a.top + a.h + LABEL_GAP <= b.top || b.top + b.h + LABEL_GAP <= a.top;
  const covers = (box, p) => p.x >= box.left - DOT_RADIUS && p.x <= box.left + box.w + DOT_RADIUS
    && p.y >= box.top - DOT_RADIUS && p.y <= box.top + box.h + DOT_RADIUS;
  for (const [index, item] of items.entries()) {
    const others = items.filter((_, j) => j !== index);
    const step = Math.max(2, item.h / 2);
    let found = null;
    for (const strict of [true, false]) {
      for (let r = 0; !found && r <= width + height; r += step) {
        const angles = r === 0 ? 1 : RING_ANGLES;
        for (let k = 0; !found && k < angles; k++) {
          const a = (2 * Math.PI * k) / angles;
          const box = { left: item.x + r * Math.cos(a) - item.w / 2, top: item.y + r * Math.sin(a) - item.h / 2, w: item.w, h: item.h };
          const inside = box.left >= 0 && box.top >= 0 && box.left + box.w <= width && box.top + box.h <= height;
          if (inside && placed.every((p) => clear(box, p)) && (!strict || !others.some((p) => covers(box, p)))) found = box;
        }
      }
      if (found) break;
    }
    if (!found) return null;
    placed.push(found);
  }
  return placed.map(({ left, top }) => ({ left, top }));
}

// The point on a box nearest to p (p itself when inside).
function nearest(box, p) {
  return { x: Math.min(Math.max(p.x, box.left), box.left + box.w), y: Math.min(Math.max(p.y, box.top), box.top + box.h) };
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
  const width = Math.max(MIN_WIDTH, Math.round(svg.getBoundingClientRect().width)); // text at its CSS size at any width
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  // the names first: the curves start past the longest one
  const names = arts.map((art, row) => {
    const name = svgEl("text", { x: 4, y: top + row * ROW + ROW / 2 + 4, "font-size": NAME_SIZE, fill: "currentColor", class: "cmp-name" });
    name.textContent = art[lang];
    svg.append(name);
    return name;
  });
  const estimate = (s) => [...s].reduce((n, c) => n + (c.codePointAt(0) >= 0x2e80 ? 1 : 0.6), 0) * NAME_SIZE; // not laid out yet
  const longest = Math.max(...names.map((name) => name.getComputedTextLength() || estimate(name.textContent)));
  const left = Math.ceil(4 + longest + NAME_GAP);
  const x = (t) => left + ((width - left - 6) * t) / end;
  for (const phone of comparison.phones) {
    svg.append(svgEl("line", { x1: x(phone.start), x2: x(phone.start), y1: top, y2: top + ROW * arts.length, class: "cmp-phone-line", stroke: "#555", "stroke-width": 0.6 }));
    const label = svgEl("text", { x: (x(phone.start) + x(phone.end)) / 2, y: top - 4, "text-anchor": "middle", "font-size": 11, fill: "currentColor", class: "cmp-phone" });
    label.textContent = phoneName(phone);
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
    svg.append(svgEl("line", { x1: left, x2: width - 6, y1: y0 + ROW, y2: y0 + ROW, stroke: "#333" }));
  });
  const axis = svgEl("text", { x: (left + width) / 2, y: height - 4, "text-anchor": "middle", "font-size": 11, fill: "currentColor" });
  axis.textContent = `${TEXT[lang].time}: 0 – ${end.toFixed(2)}`;
  svg.append(axis);
  const cursor = svgEl("line", { x1: left, x2: left, y1: top, y2: top + ROW * arts.length, stroke: "#6cf", "stroke-width": 1.5, class: "cmp-cursor" });
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
  // each articulator's label over both pictures, placed by layoutLabels (numbers and a legend
  // below when a picture is too small for the names)
  const labelled = comparison.articulators.filter((art) => payload.labels && payload.labels[art.key]);
  const labelLayer = () => {
    const leaders = svgEl("svg", { class: "cmp-leaders" });
    const labels = labelled.map((art) => el("span", { class: "cmp-label", "data-articulator": art.key }));
    return { root: el("div", { class: "cmp-label-layer", "aria-hidden": "true" }, leaders, ...labels), leaders, labels };
  };
  const layers = { reference: labelLayer(), attempt: labelLayer() };
  const pictures = el("div", { class: "cmp-pictures" },
    el("figure", {}, layers.reference.root, canvases.reference, captions.reference),
    el("figure", {}, layers.attempt.root, canvases.attempt, captions.attempt));
  const legend = el("ol", { class: "cmp-legend" });
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
  root.replaceChildren(text, score, rule, pictures, legend, controls, differTitle, segments, curvesTitle, svg, historyTitle, historyList, keys);

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
  }

  // One picture's labels: the names where they all fit, else numbers, else none; a dot and a
  // line to its point for a label moved off it. Returns the mode it used.
  function placeLayer(layer) {
    const width = layer.root.clientWidth;
    const height = layer.root.clientHeight;
    const points = labelled.map((art) => ({ x: payload.labels[art.key][0] * width, y: payload.labels[art.key][1] * height }));
    const texts = { names: labelled.map((art) => art[state.lang]), numbers: labelled.map((_, i) => String(i + 1)) };
    layer.leaders.replaceChildren();
    for (const mode of ["names", "numbers"]) {
      layer.labels.forEach((span, i) => { span.hidden = false; span.textContent = texts[mode][i]; });
      const items = layer.labels.map((span, i) => ({ ...points[i], w: span.offsetWidth, h: span.offsetHeight }));
      const boxes = width > 0 && layoutLabels(items, width, height);
      if (!boxes) continue;
      layer.leaders.setAttribute("viewBox", `0 0 ${width} ${height}`);
      boxes.forEach((box, i) => {
        layer.labels[i].style.left = `${box.left}px`;
        layer.labels[i].style.top = `${box.top}px`;
        const end = nearest({ ...box, w: items[i].w, h: items[i].h }, points[i]);
        if (Math.hypot(end.x - points[i].x, end.y - points[i].y) < DOT_RADIUS) return;
        layer.leaders.append(svgEl("circle", { cx: points[i].x, cy: points[i].y, r: DOT_RADIUS, class: "cmp-dot" }),
          svgEl("line", { x1: points[i].x, y1: points[i].y, x2: end.x, y2: end.y, class: "cmp-leader" }));
      });
      return mode;
    }
    layer.labels.forEach((span) => { span.hidden = true; });
    return "none";
  }

  function placeLabels() {
    for (const layer of Object.values(layers)) {
      layer.root.hidden = !state.labels;
      layer.root.dataset.mode = state.labels ? placeLayer(layer) : "off";
    }
    legend.hidden = !state.labels || Object.values(layers).every((layer) => layer.root.dataset.mode === "names");
    legend.replaceChildren(...labelled.map((art, i) => el("li", {}, el("b", {}, String(i + 1)), " ", art[state.lang])));
  }
  let placing = 0;
  const replace = () => { cancelAnimationFrame(placing); placing = requestAnimationFrame(placeLabels); };
  const resized = new ResizeObserver(replace);
  Object.values(layers).forEach((layer) => resized.observe(layer.root));
  let curvesWidth = 0;
  const redrawCurves = new ResizeObserver(() => {
    const width = Math.round(svg.getBoundingClientRect().width);
    if (width === curvesWidth) return;
    curvesWidth = width;
    moveCursor = drawCurves(svg, comparison, state.lang);
    moveCursor(state.t);
  });
  redrawCurves.observe(svg);

  function draw() {
    state.frame = Math.min(n - 1, Math.max(0, Math.floor(state.t * FPS + 1e-9)));
    drawPicture("reference");
    drawPicture("attempt");
    scrubber.value = state.frame;
    const phone = comparison.phones.find((p) => p.start <= state.t && state.t < p.end);
    time.textContent = `${state.t.toFixed(2)} s${phone ? ` /${phoneName(phone)}/` : ""}`;
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
    // the rule the comparison scored with (its payload's, in English), not a text fixed here
    rule.replaceChildren(`${T.score_means} `, el("span", { lang: "en", class: "cmp-rule-formula" }, comparison.score_rule || "100 × exp(−d)"));
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
    placeLabels();
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
  // a web font that arrives later changes the names' widths: measure again
  const fontsLoaded = () => render();
  document.fonts.addEventListener("loadingdone", fontsLoaded);
  render();

  return {
    ready,
    state,
    play, pause, seek, setSpeed, setLang,
    destroy() {
      pause();
      document.removeEventListener("keydown", onKey);
      document.fonts.removeEventListener("loadingdone", fontsLoaded);
      resized.disconnect();
      redrawCurves.disconnect();
      cancelAnimationFrame(placing);
      root.replaceChildren();
    },
  };
}
