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
