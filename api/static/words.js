// Words a clinician uses. The API keeps its field names and its reasons; the screen shows these.

const KINDS = {
  preparation: "Preparation", dosing: "Dosing", journey: "Journey", "return": "Return",
  integration: "Integration", custom: "Phase",
};
export function kindWord(kind) { return KINDS[kind] || "Phase"; }
export const KIND_CHOICES = Object.entries(KINDS);

/** A preset field path (as the API names it) in words: "lights.brightness" -> "Brightness". */
const FIELDS = {
  id: "Short name", name: "Name", description: "Description", phases: "Phases", kind: "Type",
  title: "Title", advance: "Moves on", duration: "Duration", planned: "Planned time",
  lights: "Lights", "lights.brightness": "Brightness", "lights.color_temp": "Warmth",
  "lights.color": "Colour", "lights.transition": "Light fade", music: "Music",
  "music.playlist": "Playlist", "music.volume": "Volume", "music.fade_in": "Music fade in",
  "music.crossfade": "Music crossfade", cues: "Reminders",
};
export function fieldWord(path) {
  if (!path) return "";
  if (FIELDS[path]) return FIELDS[path];
  const cue = /^cues\[(\d+)\](?:\.(\w+))?$/.exec(path);
  if (cue) {
    const part = { at: "time", since_dose: "time", text: "text" }[cue[2]] || "";
    return `Reminder ${Number(cue[1]) + 1}${part ? ` ${part}` : ""}`;
  }
  const last = path.split(".").pop();
  return FIELDS[`lights.${last}`] || FIELDS[`music.${last}`] || FIELDS[last] || last.replace(/_/g, " ");
}

/**
 * A room problem as the service words it (for engineers, kept in "details" and /healthz) ->
 * a short plain sentence for the therapist.
 */
export function plainProblem(reason) {
  const r = String(reason || "");
  if (/^lights\b/i.test(r)) return "The lights are not responding. roomctl keeps trying; the wall switch still works.";
  if (/^(music|audio)\b/i.test(r)) {
    if (/simulated/i.test(r)) return "Music is not playing in the room (no sound output is set up).";
    return "The music is not playing as it should. roomctl keeps trying.";
  }
  if (/timeline/i.test(r)) return "The session's schedule cannot be worked out. Lights up and End still work.";
  if (/session clock/i.test(r)) return "The session clock stopped and was started again.";
  return "Something in the room needs attention.";
}

/** Broken files are skipped, named by their file name alone (the folder says nothing at the bedside). */
function musicExtra(pl) {
  const broken = pl.broken || [];
  const parts = [];
  if (broken.length) {
    const names = broken.map((b) => String(b).split(": ")[0].split("/").pop());
    parts.push(`${broken.length} file${broken.length === 1 ? "" : "s"} cannot be played and will be skipped: ${names.join(", ")}`);
  }
  if (pl.files && pl.measured < pl.files) parts.push(`Evening out loudness: ${pl.measured} of ${pl.files} tracks done`);
  return parts.length ? parts.join(". ") : null;
}

/** Preflight lines: [ok, text, extra line or null, technical detail or null]. */
export function preflightLines(p) {
  const lines = [];
  const detail = (d) => (d ? String(d) : null);
  lines.push(p.lights.ok
    ? [true, "Lights respond", p.lights.extra || null, detail(p.lights.detail)]
    : [false, "Lights do not respond", p.lights.extra || "Check that the bridge and lamps have power.", detail(p.lights.detail)]);
  lines.push(p.audio.ok
    ? [true, "Sound ready", p.audio.extra || null, detail(p.audio.detail)]
    : [false, "No sound", p.audio.extra || "The room computer cannot play sound.", detail(p.audio.detail)]);
  for (const pl of p.playlists) {
    lines.push(pl.ok
      ? [true, `Music “${pl.name}”: ${pl.playable} track${pl.playable === 1 ? "" : "s"}`,
        musicExtra(pl), null]
      : [false, `Music “${pl.name}” cannot play`, "It is missing or empty; that phase will be quiet.",
        pl.problems.join("; ") || null]);
  }
  return lines;
}

// ── vitals ───────────────────────────────────────────────────────────────────

/** The measured vitals: the API's field, a clinician's name for it, its unit, the short form in a list. */
export const VITALS = [
  { id: "systolic", label: "BP systolic", long: "Blood pressure (systolic)", unit: "mmHg" },
  { id: "diastolic", label: "BP diastolic", long: "Blood pressure (diastolic)", unit: "mmHg" },
  { id: "heart_rate", label: "Heart rate", long: "Heart rate", unit: "/min" },
  { id: "spo2", label: "SpO2", long: "SpO2", unit: "%" },
];

/** A refused value's place, as the API names it ("vitals.systolic", "observations.sedation"), in words. */
export function vitalsFieldWord(field, observations = []) {
  const key = String(field || "").replace(/^vitals\./, "");
  const known = VITALS.find((v) => v.id === key);
  if (known) return known.long;
  const obs = /^observations\.(\w+)$/.exec(key);
  if (obs) return (observations.find((o) => o.id === obs[1]) || {}).label || obs[1].replace(/_/g, " ");
  if (key === "note") return "Note";
  return "";
}

/**
 * One vitals record as short parts for a line: "BP 172/96 mmHg", "HR 72 /min", "SpO2 91 %",
 * "Sedation 3", "Nausea yes"; each {text, flagged}. `only` keeps just the highlighted ones.
 */
export function vitalsParts(v, observations = [], { only = false } = {}) {
  const vals = v.values || {};
  const flagged = new Set(v.flagged || []);
  const parts = [];
  if (vals.systolic !== undefined || vals.diastolic !== undefined) {
    const f = flagged.has("systolic") || flagged.has("diastolic");
    parts.push({ text: `BP ${vals.systolic ?? "—"}/${vals.diastolic ?? "—"} mmHg`, flagged: f });
  }
  if (vals.heart_rate !== undefined) parts.push({ text: `HR ${vals.heart_rate} /min`, flagged: flagged.has("heart_rate") });
  if (vals.spo2 !== undefined) parts.push({ text: `SpO2 ${vals.spo2} %`, flagged: flagged.has("spo2") });
  for (const [id, value] of Object.entries(vals)) {
    if (VITALS.some((x) => x.id === id)) continue;
    const o = observations.find((x) => x.id === id);
    const label = o ? shortLabel(o.label) : id.replace(/_/g, " ");
    const shown = o && o.kind === "yes_no" ? (value ? "yes" : "no") : String(value);
    parts.push({ text: `${label} ${shown}`, flagged: flagged.has(id) });
  }
  return only ? parts.filter((p) => p.flagged) : parts;
}

/** "Sedation (0 none - 5 unresponsive)" -> "Sedation": the explanation stays in the dialog. */
export function shortLabel(label) {
  return String(label).replace(/\s*\(.*\)\s*$/, "") || String(label);
}

/** Reasons a vitals check is skipped, offered as taps (a reason can also be typed). */
export const SKIP_REASONS = ["Client asleep", "Client declined", "Measured on the ward monitor", "Not needed now"];

/** Routes a dose is given by, offered as taps. */
export const ROUTES = ["Nasal", "Sublingual", "IM", "IV", "Oral"];
