// roomctl tablet: pairing, the live room state over the WebSocket, and the session screen.
import { api, details, fmtClock, fmtSpan, fmtTimeOfDay, h, onUnauthorized, toast } from "./util.js";
import { kindWord, plainProblem, preflightLines } from "./words.js";
import { makeSlider } from "./slider.js";
import { clinicalView } from "./clinical.js";
import * as monitor from "./monitor.js";
import * as pastSessions from "./history.js";
import * as presets from "./presets.js";
import * as devices from "./devices.js";

const $ = (id) => document.getElementById(id);

const HOLD_MS = 1000; // Lights up needs a deliberate press this long ...
const HOLD_SLOP_PX = 24; // ... with the finger staying where it landed (a roll this far is still staying)
const UNDO_MS = 5000; // a phase change can be taken back from the tablet this long
const STALE_MS = 6000; // a running session pushes every second; silence this long means a dead link
const BACK_MS = 4000; // "connected again" stays this long
const ROOM_SOFT = { brightness: 30, color_temp: 2700, transition: 10 };
const ROOM_OFF = { brightness: 0, transition: 10 };
const SWATCHES = [
  { name: "Warm white", color_temp: 2700, show: "#ffa757" },
  { name: "Candle", color: "#ff9a3c" },
  { name: "Amber", color: "#ff7a1f" },
  { name: "Rose", color: "#ff6f61" },
  { name: "Violet", color: "#8e6cf0" },
  { name: "Deep blue", color: "#3f5efb" },
  { name: "Sea", color: "#2bb3a3" },
];

const app = {
  rooms: [],
  room: null,
  state: null,
  receivedAt: 0,
  lastSeq: -1, // newest pushed state applied
  restSeq: -1, // a command's answer supersedes pushes up to this number
  live: false,
  everLive: false,
  ws: null,
  attempt: 0,
  retryTimer: null,
  lastMessageAt: 0,
  presetList: [],
  chosen: null, // preset id picked for the next session
  preflightFor: null,
  startProblems: [], // what the room check found when the running session started
  nudgeDismissed: new Set(),
  undo: null, // {until, from, to, timer}
  wakeLock: null,
  tab: "session",
};
window.roomctl = app; // for a look from the browser's console

// ── boot and pairing ─────────────────────────────────────────────────────────

async function boot() {
  wireStatic();
  onUnauthorized(() => showPair("This tablet is not paired (or was removed). Type the PIN."));
  let pairNote = "";
  const m = location.hash.match(/^#pair=([^&]+)/);
  if (m) {
    history.replaceState(null, "", location.pathname + location.search);
    try {
      await api("/api/pair", { method: "POST", body: { code: decodeURIComponent(m[1]), label: tabletLabel() } });
    } catch (err) {
      pairNote = err.status === 401 ? "That pairing link was already used. Type the PIN instead." : err.message;
    }
  }
  await enter(pairNote);
}

function tabletLabel() {
  const ua = navigator.userAgent;
  const kind = /iPad|Tablet|Android/.test(ua) ? "tablet" : "browser";
  return `${kind} ${new Date().toISOString().slice(0, 10)}`;
}

let bootRetry = 0;
async function enter(pairNote = "") {
  let rooms;
  try {
    rooms = await api("/api/rooms");
    performance.mark("roomctl:rooms");
  } catch (err) {
    if (err.status === 401) { showPair(pairNote); return; }
    $("boot").textContent = "roomctl does not answer — trying again…";
    setTimeout(() => enter(pairNote), Math.min(5000, 500 * 2 ** bootRetry++));
    return;
  }
  showApp(rooms);
}

function showPair(message = "") {
  closeLive();
  $("boot").hidden = true;
  $("app").hidden = true;
  $("pair-screen").hidden = false;
  $("pair-msg").textContent = message;
  $("pin").value = "";
  $("pin").focus({ preventScroll: true });
}

async function pairSubmit(ev) {
  ev.preventDefault();
  const pin = $("pin").value.trim();
  if (!pin) { $("pair-msg").textContent = "Type the PIN first."; return; }
  $("pair-btn").disabled = true;
  try {
    await api("/api/pair", { method: "POST", body: { pin, label: tabletLabel() } });
    $("pair-msg").textContent = "";
    $("pair-screen").hidden = true;
    await enter();
  } catch (err) {
    $("pair-msg").textContent = err.status === 401 ? "That PIN is not right. Try again."
      : err.status === 429 ? "Too many wrong PINs. Wait a minute, then try again." : err.message;
    $("pin").value = "";
  } finally {
    $("pair-btn").disabled = false;
  }
}

function showApp(rooms) {
  app.rooms = rooms;
  $("boot").hidden = true;
  $("pair-screen").hidden = true;
  $("app").hidden = false;
  const saved = localStorage.getItem("roomctl.room");
  const room = rooms.find((r) => r.id === saved) || rooms[0];
  const sel = $("room-select");
  sel.replaceChildren(...rooms.map((r) => h("option", { value: r.id }, r.name)));
  sel.value = room.id;
  sel.closest(".room-pick").hidden = rooms.length < 2;
  app.room = room.id;
  applyState(room.state); // a first picture at once; controls wait for the live state
  connect();
  refreshPresets();
}

// ── live state over the WebSocket ────────────────────────────────────────────

function closeLive() {
  clearTimeout(app.retryTimer);
  if (app.ws) {
    app.ws.onclose = null;
    app.ws.onmessage = null;
    app.ws.close();
    app.ws = null;
  }
}

function connect() {
  closeLive();
  setLive(false);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/rooms/${encodeURIComponent(app.room)}/live`);
  app.ws = ws;
  let opened = false;
  ws.onopen = () => { opened = true; performance.mark("roomctl:ws-open"); };
  ws.onmessage = (ev) => {
    const st = JSON.parse(ev.data);
    app.lastMessageAt = performance.now();
    if (!app.live) {
      // The first message after (re)connecting restores everything, whatever we showed before.
      app.lastSeq = -1;
      app.restSeq = -1;
      app.attempt = 0;
      applyState(st);
      setLive(true);
      return;
    }
    if (st.seq <= app.restSeq || st.seq <= app.lastSeq) return;
    applyState(st);
  };
  ws.onclose = async (ev) => {
    if (app.ws !== ws) return;
    app.ws = null;
    setLive(false);
    if (ev.code === 4401) { showPair("This tablet is not paired any more. Type the PIN."); return; }
    if (!opened) {
      // Refused before it opened: a revoked token (the 401 shows the pairing screen), a room that
      // is gone, or simply no server yet.
      try {
        const rooms = await api("/api/rooms");
        if (!rooms.some((r) => r.id === app.room)) { showApp(rooms); return; }
      } catch (err) {
        if (err.status === 401) return;
      }
      if (app.ws) return; // something else reconnected meanwhile
    }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  clearTimeout(app.retryTimer);
  const delay = Math.min(5000, 300 * 2 ** app.attempt) * (0.85 + Math.random() * 0.3);
  app.attempt += 1;
  app.retryTimer = setTimeout(connect, delay);
}

let backTimer = null;
function setLive(live) {
  const wasLost = !app.live && app.everLive && $("offline").dataset.lost === "1";
  app.live = live;
  $("controls").disabled = !live;
  $("lightsup").disabled = !live;
  const conn = $("conn");
  conn.classList.toggle("live", live);
  conn.classList.toggle("lost", !live && app.everLive);
  $("conn-text").textContent = live ? "live" : app.everLive ? "not connected" : "connecting…";
  document.body.dataset.live = live ? "1" : "0";
  const banner = $("offline");
  clearTimeout(backTimer);
  if (!live && app.everLive) {
    // What is true when the tablet cannot reach roomctl: nothing here knows what the room does.
    banner.dataset.lost = "1";
    banner.classList.remove("back");
    $("offline-title").textContent = "roomctl does not answer";
    $("offline-text").textContent = "The lights and music may have stopped, or stayed as they were. " +
      "If the client needs light now, use the wall switch or the room's own light controls. " +
      "This screen reconnects by itself.";
    banner.hidden = false;
    showHint("Not connected: use the wall switch", true, true);
  } else if (live && wasLost) {
    banner.dataset.lost = "0";
    banner.classList.add("back");
    $("offline-title").textContent = "Connected again";
    $("offline-text").textContent = "roomctl answers; the screen shows the room as it is now and the controls work.";
    banner.hidden = false;
    backTimer = setTimeout(() => { banner.hidden = true; }, BACK_MS);
    showHint(HOLD_HINT, false);
  } else {
    banner.hidden = true;
  }
  if (app.state) renderNotes(app.state); // what the screen knows of the room changes with the link
  if (!live) {
    for (const d of document.querySelectorAll("dialog[open]")) d.close();
    cancelHold(null);
    return;
  }
  if (!app.everLive) {
    app.everLive = true;
    window.__roomctlReadyAt = performance.now(); // first usable control screen (bench/ui.py reads it)
  }
  window.__roomctlLiveAt = performance.now();
}

// A dead link without a close (Wi-Fi gone): a running session pushes every second.
setInterval(() => {
  const s = app.state && app.state.session;
  if (app.live && app.ws && s && !s.ended && performance.now() - app.lastMessageAt > STALE_MS) {
    app.ws.close();
  }
}, 1000);
window.addEventListener("online", () => { if (!app.live && app.room) connect(); });
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && !app.live && app.everLive) connect();
  updateWakeLock();
});

// ── commands ─────────────────────────────────────────────────────────────────

/** POST to the room; the answer is the new state, shown at once. A `quiet` caller shows the
 * refusal itself (at the field it names) instead of the toast. */
async function command(path, body, { quiet = false } = {}) {
  try {
    const st = await api(`/api/rooms/${encodeURIComponent(app.room)}${path}`, { method: "POST", body });
    const state = st && st.state ? st.state : st;
    if (state && state.seq >= app.lastSeq) {
      app.restSeq = Math.max(app.restSeq, state.seq);
      applyState(state);
    }
    return st;
  } catch (err) {
    if (err.status !== 401 && !quiet) toast(err.message, true);
    throw err;
  }
}
const quietly = (p) => p.catch(() => {});

/** Lights and music: the session's controls while one runs, the room by hand otherwise. */
function setLights(change) {
  return active(app.state) ? command("/lights", change) : command("/by-hand", { lights: change });
}
function setMusic(change) {
  return active(app.state) ? command("/music", change) : command("/by-hand", { music: change });
}

// ── rendering the state ──────────────────────────────────────────────────────

function active(st) { return !!(st && st.session && !st.session.ended); }

let clinical = null;
let emClinical = null;

function applyState(st) {
  const before = app.state;
  app.state = st;
  app.receivedAt = performance.now();
  app.lastSeq = Math.max(app.lastSeq, st.seq);
  const running = active(st);
  if (before && active(before) && (!running || before.session.id !== st.session?.id)) app.startProblems = [];
  $("idle").hidden = running;
  $("running").hidden = !running;
  $("view-session").classList.toggle("is-running", running);
  $("room-looks").hidden = running;
  renderEmergency(st, running);
  renderRoom(st);
  renderSteer(st, running);
  if (running) renderSession(st); else renderIdle(st);
  clinical.render(st);
  const due = running ? st.session.cues_due.length : 0;
  $("cue-badge").hidden = due === 0;
  $("cue-badge").textContent = String(due);
  renderUndo();
  renderNudge(st);
  updateWakeLock();
  tick();
}

function renderEmergency(st, running) {
  $("emergency").hidden = !st.emergency;
  $("emergency").classList.toggle("with-session", running);
  if (!st.emergency) { emClinical.root.hidden = true; return; }
  $("em-text").textContent = running
    ? "Bright neutral light, music low, the session's countdown waits."
    : "Bright neutral light, music low.";
  $("lightsdown").textContent = running ? "Lights down — back to the session" : "Lights down";
  const up = st.lights_up;
  $("em-confirm").textContent = !up ? "" : up.confirmed
    ? "The lights confirmed it."
    : up.sent_at ? "Sent to the lights; waiting for them to confirm…" : "Sending to the lights…";
  $("em-confirm").classList.toggle("ok", !!(up && up.confirmed));
  const music = st.music;
  $("em-quieter").disabled = !music.playlist || !music.playing || music.volume <= 0.5;
  $("em-stop").disabled = !music.playlist || !music.playing;
  emClinical.root.hidden = !running;
  if (running) emClinical.render(st);
}

const bulbs = new Map();
function renderRoom(st) {
  const pic = $("room-picture");
  const seen = new Set();
  for (const l of st.lights.lights) {
    seen.add(l.id);
    let el = bulbs.get(l.id);
    if (!el) {
      el = h("div", { class: "bulb", "data-light": l.id },
        h("span", { class: "glow" }), h("span", { class: "name" }, l.name), h("span", { class: "lvl" }));
      bulbs.set(l.id, el);
      pic.append(el);
    }
    const level = l.on ? l.brightness : 0;
    el.dataset.brightness = level.toFixed(1);
    el.dataset.rgb = l.rgb;
    el.dataset.on = l.on ? "1" : "0";
    el.classList.toggle("off", !l.on);
    el.classList.toggle("unreachable", !l.reachable);
    el.title = `${l.name}: ${l.on ? `${Math.round(level)} %` : "off"}${l.reachable ? "" : " (not answering)"}`;
    const glow = el.firstChild;
    const f = level / 100;
    glow.style.backgroundColor = l.on ? l.rgb : "";
    glow.style.opacity = l.on ? String(0.2 + 0.8 * f) : "1";
    glow.style.boxShadow = l.on ? `0 0 ${8 + 30 * f}px ${2 + 12 * f}px ${hexAlpha(l.rgb, 0.12 + 0.4 * f)}` : "none";
    el.querySelector(".lvl").textContent = l.on ? `${Math.round(level)} %` : "off";
  }
  for (const [id, el] of bulbs) if (!seen.has(id)) { el.remove(); bulbs.delete(id); }
  renderNotes(st);
}

let notesKey = "";
function renderNotes(st) {
  // A short plain sentence per problem; the service's own words inside "details".
  const reasons = st.degraded.filter((d) => !/^audio is simulated/.test(d));
  const notes = reasons.map((r) => [plainProblem(r), r]);
  if (active(st)) {
    for (const [text, detail] of app.startProblems) notes.push([text, detail]);
  }
  if (!app.live && app.everLive) notes.splice(0, notes.length, ["Not known: roomctl does not answer.", null]);
  const key = JSON.stringify(notes);
  if (key === notesKey) return;
  notesKey = key;
  const box = $("room-notes");
  box.replaceChildren(...(notes.length ? notes.map(([text, detail]) => h("div", { class: "note" },
    h("span", { class: "note-text" }, text), detail ? details("details", detail) : null))
    : [h("p", { class: "all-well" }, "Lights and music answer.")]));
  box.classList.toggle("has-notes", notes.length > 0);
}

function hexAlpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a.toFixed(2)})`;
}

function renderSteer(st, running) {
  const L = st.lights;
  const target = running ? L.target : null;
  const lit = L.lights.filter((l) => l.reachable);
  const avg = (key) => lit.length ? lit.reduce((a, l) => a + (l.on ? l[key] || 0 : 0), 0) / lit.length : 0;
  const bri = target ? target.brightness : avg("brightness");
  sliders.bri.set(Math.round(bri));
  // Warmth shows what the lights do: during a colour it says so instead of a stale number.
  const colour = target ? target.color : lit.find((l) => l.on && l.color)?.color || null;
  const kelvin = target ? target.color_temp : lit.find((l) => l.on && l.color_temp)?.color_temp;
  if (colour) sliders.ct.set(sliders.ct.value, "a colour");
  else if (kelvin) sliders.ct.set(kelvin);
  const col = colour ? colour.toLowerCase() : null;
  for (const b of $("swatches").children) {
    const sw = SWATCHES[Number(b.dataset.i)];
    const on = sw.color ? sw.color === col : !col && kelvin === sw.color_temp;
    b.setAttribute("aria-pressed", on ? "true" : "false");
  }
  const M = st.music;
  sliders.vol.set(Math.round(running ? M.target_volume ?? M.volume : M.volume));
  $("btn-play").textContent = M.playlist && M.playing ? "Pause" : "Play";
  $("btn-skip").disabled = !M.playlist;
  $("btn-back").hidden = !(running && (L.overridden || M.overridden));
}

let stripKey = "";
function renderSession(st) {
  const s = st.session;
  $("phase-kind").textContent = kindWord(s.phase.kind);
  $("phase-title").textContent = s.phase.title;
  $("session-name").textContent = s.preset_name + (s.label ? ` · ${s.label}` : "");
  $("held-badge").hidden = !s.held;
  const key = `${s.id}:${s.phases.map((p) => p.id).join(",")}`;
  const strip = $("phase-strip");
  if (key !== stripKey) {
    stripKey = key;
    strip.replaceChildren(...s.phases.map((p) => h("li", { title: p.title })));
  }
  [...strip.children].forEach((li, i) => {
    li.className = i < s.phase.index ? "done" : i === s.phase.index ? "now" : "";
  });
  const last = !s.next_phase;
  $("btn-next").textContent = last ? "Finish…" : "Next phase";
  $("btn-hold").textContent = s.held ? "Resume" : "Hold";
  $("btn-hold").classList.toggle("primary", s.held);
  $("btn-extend").disabled = s.phase.advance === "manual";
  $("btn-extend").title = s.phase.advance === "manual" ? "This phase waits for you: there is no countdown to extend" : "";
}

function renderIdle(st) {
  const s = st.session;
  const note = $("last-session");
  if (s && s.ended) {
    const at = new Date((s.ended_at || st.t) * 1000);
    note.hidden = false;
    note.textContent = `Last session: ${s.preset_name}${s.label ? ` (${s.label})` : ""}, ended at ` +
      `${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })} after ${fmtSpan(s.session_time_s)}. ` +
      "The lights and music can still be set (beside), or choose Room soft or Room off.";
  } else {
    note.hidden = true;
  }
}

function renderPick() {
  const usable = app.presetList.filter((p) => p.valid);
  if (!usable.some((p) => p.id === app.chosen)) {
    const saved = localStorage.getItem("roomctl.preset");
    app.chosen = usable.some((p) => p.id === saved) ? saved : null;
  }
  $("preset-pick").replaceChildren(...usable.map((p) => h("button", {
    type: "button", role: "radio", "aria-checked": p.id === app.chosen ? "true" : "false", "data-preset": p.id,
    onclick: () => choosePreset(p.id),
  }, h("span", { class: "src" }, p.source === "clinic" ? "The clinic's" : "Came with roomctl"),
  h("b", {}, p.name), h("span", { class: "meta" }, `${p.phases} phases · about ${fmtSpan(p.planned_s)}`))));
  if (app.chosen && app.preflightFor !== app.chosen) loadPreflight();
  if (!app.chosen) {
    $("preflight").replaceChildren(h("li", { class: "bad" }, "Choose a preset to check the room."));
    $("start-btn").disabled = true;
  }
}

function choosePreset(id) {
  app.chosen = id;
  localStorage.setItem("roomctl.preset", id);
  for (const b of $("preset-pick").children) b.setAttribute("aria-checked", b.dataset.preset === id ? "true" : "false");
  loadPreflight();
}

/** One room-check line: the plain words, a short extra line, the technical words in "details". */
function checkItem([ok, text, extra, detail]) {
  return h("li", { class: ok ? "ok" : "bad", "data-ok": ok ? "1" : "0" },
    h("span", { class: "check-text" }, text),
    extra ? h("span", { class: "check-extra" }, extra) : null,
    detail && !ok ? details("details", detail) : null);
}

let preflightSeq = 0;
async function loadPreflight() {
  const id = app.chosen;
  const mine = ++preflightSeq;
  app.preflightFor = id;
  const list = $("preflight");
  list.replaceChildren(h("li", { class: "muted" }, "Checking the room…"));
  $("start-btn").disabled = true;
  let p;
  try {
    p = await api(`/api/rooms/${encodeURIComponent(app.room)}/preflight?preset=${encodeURIComponent(id)}`);
  } catch (err) {
    if (mine !== preflightSeq) return;
    app.preflightFor = null;
    list.replaceChildren(h("li", { class: "bad" }, err.message));
    return;
  }
  if (mine !== preflightSeq) return;
  list.replaceChildren(...preflightLines(p).map(checkItem));
  $("start-btn").disabled = false;
  $("start-btn").textContent = p.ok ? "Start session" : "Start anyway";
}

async function startSession() {
  if (!app.chosen) return;
  $("start-btn").disabled = true;
  try {
    const label = $("session-label").value.trim();
    const out = await command("/session", { preset: app.chosen, ...(label ? { label } : {}) });
    $("session-label").value = "";
    if (out && out.preflight && !out.preflight.ok) {
      // The room check is not on the session screen: what it found goes into the room's notes.
      app.startProblems = preflightLines(out.preflight).filter((l) => !l[0])
        .map(([, text, extra, detail]) => [`${text}${extra ? `: ${extra}` : ""}`, detail]);
      notesKey = "";
      renderNotes(app.state);
      toast(`Started. The room check found a problem: ${app.startProblems[0][0]}`, true);
    }
  } catch {
    // the toast says why
  } finally {
    $("start-btn").disabled = false;
  }
}

// ── Next, Go to… and Undo ────────────────────────────────────────────────────

async function changePhase(path, body) {
  const from = app.state?.session?.phase?.title;
  try {
    await command(path, body);
  } catch {
    return;
  }
  const s = app.state?.session;
  if (!s) return;
  clearTimeout(app.undo?.timer);
  app.undo = { until: performance.now() + UNDO_MS, from, to: s.ended ? "the end" : s.phase.title,
    timer: setTimeout(() => { app.undo = null; renderUndo(); renderNudge(app.state); }, UNDO_MS) };
  renderUndo();
  renderNudge(app.state);
}

function renderUndo() {
  const u = app.undo;
  const show = !!u && active(app.state);
  $("undo").hidden = !show;
  if (!show) return;
  const left = Math.max(1, Math.ceil((u.until - performance.now()) / 1000));
  $("undo-text").textContent = `Now: ${u.to}.`;
  $("undo-btn").textContent = `Undo — back to ${u.from} (${left})`;
}

async function undo() {
  clearTimeout(app.undo?.timer);
  app.undo = null;
  renderUndo();
  try {
    await command("/session/undo");
    toast("Taken back: as if it never happened.");
  } catch {
    // the toast says why (e.g. too late)
  }
  renderNudge(app.state);
}

// ── the per-second tick: timers count locally between pushes ─────────────────

function tick() {
  const st = app.state;
  if (!active(st)) return;
  const s = st.session;
  const dt = (performance.now() - app.receivedAt) / 1000;
  clinical.tick(st, dt);
  if (st.emergency) emClinical.tick(st, dt);
  const remaining = s.remaining_s === null || s.remaining_s === undefined ? null : Math.max(0, s.remaining_s - dt);
  const n = s.next_phase;
  let next;
  if (!n) next = "End of the session";
  else if (s.held) next = `${n.title} — after you resume`;
  else if (s.emergency) next = `${n.title} — after lights down`;
  else if (s.phase.advance === "manual") next = `${n.title} — when you press Next`;
  else next = `${n.title} in ${fmtClock(Math.ceil(remaining ?? 0))}`;
  $("next-phase").textContent = next;
  const np = st.music.now_playing;
  if (np) {
    const pos = np.position_s + (st.music.playing ? dt : 0);
    const dur = np.duration_s ? ` / ${fmtClock(np.duration_s)}` : "";
    $("now-playing").textContent = `♪ ${np.title}${np.artist ? ` — ${np.artist}` : ""} · ${fmtClock(pos)}${dur}`;
  } else {
    $("now-playing").textContent = st.music.playlist ? `“${st.music.playlist}”` : "No music now";
  }
  if (app.undo) renderUndo();
}
setInterval(tick, 250);

const sliders = {};

// ── Lights up: press and hold, the finger staying on it; a short tap only explains ──

const HOLD_HINT = "Press and hold 1 s";
let holdTimer = null;
let holdPointer = null;
let holdFrom = null; // where the finger landed
let hintTimer = null;
function startHold() {
  const btn = $("lightsup");
  if (btn.disabled || holdTimer) return;
  btn.style.setProperty("--hold-ms", `${HOLD_MS}ms`);
  btn.classList.add("holding");
  showHint("Keep holding…", true);
  const mine = setTimeout(() => {
    // Moves are handed to the page once per frame: let those already made arrive (and cancel
    // the hold if the finger slid off) before deciding that the finger stayed.
    requestAnimationFrame(() => setTimeout(() => { if (holdTimer === mine) fire(); }, 0));
  }, HOLD_MS);
  holdTimer = mine;
  async function fire() {
    holdTimer = null;
    holdPointer = null;
    btn.classList.remove("holding");
    showHint("Lights coming up…", true);
    await quietly(command("/emergency", { on: true }));
    showHint(HOLD_HINT, false);
  }
}
function cancelHold(explain) {
  holdPointer = null;
  if (!holdTimer) return;
  clearTimeout(holdTimer);
  holdTimer = null;
  $("lightsup").classList.remove("holding");
  if (explain) showHint(explain, true);
  else showHint(app.live ? HOLD_HINT : "Not connected: use the wall switch", !app.live, !app.live);
}
function showHint(text, strong, stay = false) {
  const hint = $("lightsup-hint");
  hint.textContent = text;
  hint.classList.toggle("show", strong);
  clearTimeout(hintTimer);
  if (strong && !stay) hintTimer = setTimeout(() => { hint.textContent = app.live ? HOLD_HINT : hint.textContent; hint.classList.remove("show"); }, 3000);
}

function wireLightsUp() {
  const lu = $("lightsup");
  // Off the button, or sliding along it (it is wide): either way not a finger that stays.
  const moved = (e) => {
    const r = lu.getBoundingClientRect();
    const off = e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom;
    return off || !holdFrom || Math.hypot(e.clientX - holdFrom.x, e.clientY - holdFrom.y) > HOLD_SLOP_PX;
  };
  lu.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    lu.setPointerCapture(e.pointerId);
    holdPointer = e.pointerId;
    holdFrom = { x: e.clientX, y: e.clientY };
    startHold();
  });
  lu.addEventListener("pointermove", (e) => {
    if (e.pointerId === holdPointer && holdTimer && moved(e)) cancelHold("Slid off: hold still on the button");
  });
  lu.addEventListener("pointerup", (e) => { if (e.pointerId === holdPointer) cancelHold("Hold it for a whole second"); });
  lu.addEventListener("pointercancel", () => cancelHold(null));
  lu.addEventListener("lostpointercapture", () => cancelHold(null));
  lu.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); startHold(); }
  });
  lu.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") cancelHold("Hold it for a whole second"); });
  lu.addEventListener("blur", () => cancelHold(null));
  lu.addEventListener("contextmenu", (e) => e.preventDefault());
}

// ── wake lock, night mode ────────────────────────────────────────────────────

async function updateWakeLock() {
  const want = active(app.state) && document.visibilityState === "visible";
  if (!("wakeLock" in navigator)) return;
  if (want && !app.wakeLock) {
    app.wakeLock = "pending";
    try {
      const lock = await navigator.wakeLock.request("screen");
      app.wakeLock = lock;
      lock.addEventListener("release", () => { if (app.wakeLock === lock) app.wakeLock = null; });
    } catch {
      app.wakeLock = null;
    }
  } else if (!want && app.wakeLock && app.wakeLock !== "pending") {
    const lock = app.wakeLock;
    app.wakeLock = null;
    lock.release().catch(() => {});
  }
}

function setNight(on) {
  document.documentElement.classList.toggle("night", on);
  $("night-btn").setAttribute("aria-pressed", on ? "true" : "false");
  document.querySelector('meta[name="theme-color"]').content = on ? "#000000" : "#0c0d10";
  try { localStorage.setItem("roomctl.night", on ? "1" : "0"); } catch { /* private mode */ }
  renderNudge(app.state);
  presets.redraw();
}

function renderNudge(st) {
  const s = st && st.session;
  const key = s ? `${s.id}/${s.phase.id}` : "";
  const show = active(st) && s.phase.kind === "journey" && !document.documentElement.classList.contains("night") &&
    !app.nudgeDismissed.has(key) && !app.undo;
  $("nudge").hidden = !show;
  $("nudge").dataset.key = key;
}

// ── tabs ─────────────────────────────────────────────────────────────────────

function showTab(tab) {
  app.tab = tab;
  for (const b of document.querySelectorAll(".tabs [data-tab]")) b.setAttribute("aria-selected", b.dataset.tab === tab ? "true" : "false");
  $("view-session").hidden = tab !== "session";
  $("view-presets").hidden = tab !== "presets";
  $("view-history").hidden = tab !== "history";
  $("view-devices").hidden = tab !== "devices";
  document.body.dataset.tab = tab;
  if (tab === "presets") presets.show();
  if (tab === "history") pastSessions.show();
  if (tab === "devices") devices.show();
}

async function refreshPresets() {
  try {
    app.presetList = await api("/api/presets");
  } catch {
    return;
  }
  app.preflightFor = null;
  renderPick();
  presets.setList(app.presetList);
}

// ── wiring ───────────────────────────────────────────────────────────────────

function wireStatic() {
  $("pair-form").addEventListener("submit", pairSubmit);
  const clearPairMsg = () => { $("pair-msg").textContent = ""; };
  $("keypad").addEventListener("click", (e) => {
    const key = e.target.closest("button")?.dataset.key;
    if (!key) return;
    clearPairMsg();
    const pin = $("pin");
    if (key === "back") pin.value = pin.value.slice(0, -1);
    else if (key === "clear") pin.value = "";
    else if (pin.value.length < 12) pin.value += key;
  });
  $("pin").addEventListener("input", () => { clearPairMsg(); $("pin").value = $("pin").value.replace(/\D/g, ""); });

  $("room-select").addEventListener("change", () => {
    app.room = $("room-select").value;
    localStorage.setItem("roomctl.room", app.room);
    bulbs.forEach((el) => el.remove());
    bulbs.clear();
    clinical = clinicalView($("clinical"), { onAck: ack, ...monitor.handlers });
    app.preflightFor = null;
    app.undo = null;
    connect();
    renderPick();
    if (app.tab === "history") pastSessions.show();
  });
  for (const b of document.querySelectorAll(".tabs [data-tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));
  document.body.dataset.tab = "session";

  $("start-btn").addEventListener("click", startSession);
  $("btn-next").addEventListener("click", () => {
    if (app.state?.session && !app.state.session.next_phase) openEnd(true);
    else changePhase("/session/next");
  });
  $("undo-btn").addEventListener("click", undo);
  $("btn-hold").addEventListener("click", () => {
    quietly(command(app.state?.session?.held ? "/session/resume" : "/session/hold"));
  });
  $("btn-extend").addEventListener("click", async () => {
    try {
      await command("/session/extend", { seconds: 300 });
    } catch {
      return;
    }
    toast("5 minutes added to this phase.");
  });
  $("btn-jump").addEventListener("click", openJump);
  $("btn-end").addEventListener("click", () => openEnd(false));
  $("dlg-end-no").addEventListener("click", () => $("dlg-end").close());
  $("dlg-end-yes").addEventListener("click", async () => {
    const reason = $("dlg-end-reason").value.trim();
    if (!$("dlg-end-why").hidden && !reason) {
      $("dlg-end-msg").textContent = "Give the reason first: it goes into the record.";
      $("dlg-end-reason").focus();
      return;
    }
    $("dlg-end").close();
    app.undo = null;
    await quietly(command("/session/end", reason ? { reason } : undefined));
  });
  $("dlg-jump-no").addEventListener("click", () => $("dlg-jump").close());
  $("btn-back").addEventListener("click", () => quietly(command("/back-to-preset")));
  $("btn-play").addEventListener("click", () => {
    const m = app.state.music;
    quietly(setMusic({ playing: !(m.playlist && m.playing) }));
  });
  $("btn-skip").addEventListener("click", () => quietly(setMusic({ skip: "next" })));
  $("btn-soft").addEventListener("click", () => quietly(setLights(ROOM_SOFT)));
  $("btn-off").addEventListener("click", async () => {
    await quietly(setLights(ROOM_OFF));
    if (app.state.music.playlist && app.state.music.playing) await quietly(setMusic({ playing: false }));
  });
  $("lightsdown").addEventListener("click", () => quietly(command("/emergency", { on: false })));
  $("em-quieter").addEventListener("click", () => {
    const m = app.state.music;
    quietly(setMusic({ volume: Math.max(0, Math.round(m.volume) - 5) }));
  });
  $("em-stop").addEventListener("click", () => quietly(setMusic({ playing: false })));
  wireLightsUp();

  sliders.bri = makeSlider($("bri"), { min: 0, max: 100, step: 1, keyStep: 5, format: (v) => `${v} %`,
    send: (v) => setLights({ brightness: v, transition: 0.4 }) });
  sliders.ct = makeSlider($("ct"), { min: 2000, max: 6500, step: 50, keyStep: 250, format: (v) => `${v} K`,
    send: (v) => setLights({ color_temp: v, transition: 0.8 }) });
  sliders.vol = makeSlider($("vol"), { min: 0, max: 100, step: 1, keyStep: 5, format: (v) => `${v} %`,
    send: (v) => setMusic({ volume: v }) });
  $("swatches").replaceChildren(...SWATCHES.map((sw, i) => h("button", {
    type: "button", "data-i": i, title: sw.name, "aria-label": sw.name, "aria-pressed": "false",
    onclick: () => quietly(setLights(sw.color ? { color: sw.color, transition: 2 } : { color_temp: sw.color_temp, transition: 2 })),
  }, h("i", { style: { background: sw.color || sw.show } }))));

  clinical = clinicalView($("clinical"), { onAck: ack, ...monitor.handlers });
  emClinical = clinicalView($("em-clinical"), { onAck: ack, ...monitor.handlers });
  monitor.init({
    command,
    // The server's clock, counted on from the last state: a dose's time is the room's, not the tablet's.
    now: () => (app.state ? app.state.t + (performance.now() - app.receivedAt) / 1000 : Date.now() / 1000),
    session: () => (active(app.state) ? app.state.session : null),
  });

  $("night-btn").addEventListener("click", () => setNight(!document.documentElement.classList.contains("night")));
  $("night-btn").setAttribute("aria-pressed", document.documentElement.classList.contains("night") ? "true" : "false");
  $("nudge-yes").addEventListener("click", () => { app.nudgeDismissed.add($("nudge").dataset.key); setNight(true); });
  $("nudge-no").addEventListener("click", () => { app.nudgeDismissed.add($("nudge").dataset.key); renderNudge(app.state); });

  devices.init();
  presets.init({
    refresh: refreshPresets,
    use(id) {
      choosePreset(id);
      renderPick();
      showTab("session");
    },
  });
  pastSessions.init({ room: () => app.room });
}

function ack(cue, note) {
  return command("/cues/ack", { cue, ...(note ? { note } : {}) });
}

function openEnd(finishing) {
  $("dlg-end-title").textContent = finishing ? "Finish the session?" : "End this session?";
  $("dlg-end-text").textContent = finishing
    ? "This is the last phase: finishing ends the session. The record is kept; the lights and music can still be set afterwards."
    : "The lights and music stop following the preset. The record is kept; the lights and music can still be set afterwards.";
  // Inside the preset's observation time an early end needs a reason, for the record.
  const until = app.state?.session?.observe_until;
  const early = !!until && until > app.state.t + (performance.now() - app.receivedAt) / 1000;
  $("dlg-end-why").hidden = !early;
  $("dlg-end-reason").value = "";
  $("dlg-end-msg").textContent = "";
  if (early) {
    $("dlg-end-why-text").textContent = `Observation runs until ${fmtTimeOfDay(until)}. Why end the session earlier?`;
  }
  $("dlg-end").showModal();
}

function openJump() {
  const s = app.state?.session;
  if (!s) return;
  $("jump-list").replaceChildren(...s.phases.map((p) => h("button", {
    type: "button", "data-phase": p.id, "aria-current": p.index === s.phase.index ? "step" : false,
    onclick: async () => {
      $("dlg-jump").close();
      await changePhase("/session/jump", { phase: p.id });
    },
  }, h("span", {}, `${p.index + 1}. ${p.title}`),
  h("span", { class: "muted small" }, p.index === s.phase.index ? "now" : `${kindWord(p.kind)}${p.planned_s ? ` · ${fmtSpan(p.planned_s)}` : ""}`))));
  $("dlg-jump").showModal();
}

boot();
