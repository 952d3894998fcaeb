// The voice picker: a lesson may come in a male, a female and a child's voice (its reference's
// lesson description carries "voice" and "lesson", the lesson's id); the learner picks the voice
// nearest theirs (remembered in localStorage), the lesson list shows each lesson once, and a
// lesson's option is the chosen voice's reference. A reference without those keys is a lesson
// of its own in one voice.
//
// app.js fills #ref-select with one option per reference and reads the chosen reference's id
// from it (playing, comparing); this module keeps, in its place, one option per lesson: a copy of
// app.js's option of the chosen voice. It reads the voices from the references listing.

export const VOICES = ["male", "female", "child"];
const STORAGE_KEY = "rtmri-voice";
const TEXT = {
  en: { label: "the reference voice nearest yours", male: "male voice", female: "female voice", child: "child's voice" },
  ja: { label: "自分の声に近いお手本の声", male: "男性の声", female: "女性の声", child: "子どもの声" },
};

// A reference's voice and lesson: from its lesson description, else the reference alone.
function voiceOf(description) {
  const lesson = description.lesson || {};
  return VOICES.includes(lesson.voice) && lesson.lesson ? { voice: lesson.voice, key: `lesson:${lesson.lesson}` }
    : { voice: null, key: `reference:${description.id}` };
}

// descriptions (the listing's order) -> [{key, ids: Map(voice or null -> reference id)}], each
// lesson once, in the order its first reference comes.
export function groupLessons(descriptions) {
  const lessons = new Map();
  for (const description of descriptions) {
    const { voice, key } = voiceOf(description);
    if (!lessons.has(key)) lessons.set(key, { key, ids: new Map() });
    const ids = lessons.get(key).ids;
    if (!ids.has(voice)) ids.set(voice, description.id);
  }
  return [...lessons.values()];
}

// The reference of a lesson for a voice: that voice's, else the first of VOICES it has, else
// its only one.
export function referenceFor(lesson, voice) {
  const fallback = VOICES.find((v) => lesson.ids.has(v));
  return lesson.ids.get(voice) ?? lesson.ids.get(fallback) ?? lesson.ids.values().next().value;
}

const select = document.getElementById("ref-select");
const picker = document.getElementById("voice-select");
const params = [new URLSearchParams(location.hash.slice(1)), new URLSearchParams(location.search)];
const token = params.map((p) => p.get("token")).find(Boolean) || "";
const descriptions = new Map(); // reference id -> its description
const pool = new Map(); // reference id -> app.js's option for it
let lessons = [];
let voice = localStorage.getItem(STORAGE_KEY);
let generation = 0; // app.js's fills seen; an older one still waiting for the listing gives way

const lang = () => (document.documentElement.lang === "ja" ? "ja" : "en");

async function fetchListing() {
  const response = await fetch(`/references?token=${encodeURIComponent(token)}`);
  if (!response.ok) throw new Error(`/references: ${response.status}`);
  const listing = await response.json();
  descriptions.clear();
  for (const description of listing) descriptions.set(description.id, description);
}

// app.js filled the list (at each connection: another server may list other references): take
// its options, group them by lesson, show the chosen voice's.
async function adopt() {
  const seen = ++generation;
  const options = [...select.options];
  if (!options.length) { lessons = []; showPicker(); return; }
  const chosen = select.value;
  try { await fetchListing(); } catch (error) { return; } // app.js's list stays as it is
  if (seen !== generation) return;
  pool.clear();
  options.forEach((option) => pool.set(option.value, option));
  lessons = groupLessons(options.map((option) => descriptions.get(option.value) || { id: option.value }));
  showLessons(lessons.find((lesson) => [...lesson.ids.values()].includes(chosen)));
}

function voicesPresent() {
  return VOICES.filter((v) => lessons.some((lesson) => lesson.ids.has(v)));
}

let shown = { lang: null, voices: "" }; // what the picker shows, not to rebuild it for nothing

function showPicker() {
  const present = voicesPresent();
  if (shown.lang === lang() && shown.voices === present.join()) return;
  shown = { lang: lang(), voices: present.join() };
  const T = TEXT[lang()];
  picker.hidden = present.length < 2;
  picker.setAttribute("aria-label", T.label);
  picker.title = T.label;
  picker.replaceChildren(...present.map((v) => {
    const option = document.createElement("option");
    option.value = v;
    option.textContent = T[v];
    return option;
  }));
  if (present.length) picker.value = present.includes(voice) ? voice : present[0];
}

// The voice the lessons are shown in: the learner's, where the lessons have it.
function currentVoice() {
  const present = voicesPresent();
  return present.includes(voice) ? voice : present[0] ?? null;
}

// One option per lesson, the chosen voice's reference; selected: the lesson to keep selected.
function showLessons(selected) {
  showPicker();
  const current = currentVoice();
  observer.disconnect(); // these are this module's own changes, not app.js's
  select.replaceChildren(...lessons.map((lesson) => {
    const id = referenceFor(lesson, current);
    const option = pool.get(id).cloneNode(true);
    option.dataset.lesson = lesson.key;
    option.dataset.voice = voiceOf(descriptions.get(id) || { id }).voice || "";
    return option;
  }));
  if (selected) select.value = referenceFor(selected, current);
  observer.observe(select, { childList: true });
}

const observer = new MutationObserver(() => adopt());
observer.observe(select, { childList: true });
// the page's language is app.js's: it sets <html lang>
new MutationObserver(() => showPicker()).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });

picker.addEventListener("change", () => {
  voice = picker.value;
  localStorage.setItem(STORAGE_KEY, voice);
  const selected = lessons.find((lesson) => lesson.key === (select.selectedOptions[0] || {}).dataset?.lesson);
  showLessons(selected);
  select.dispatchEvent(new Event("change"));
});

if (select.options.length) adopt(); // app.js filled it before this module ran
