// roomctl tablet: pairing, the live room state over the WebSocket, and the session screen.
import { api, fmtClock, fmtSpan, h, onUnauthorized, toast } from "./util.js";
import * as presets from "./presets.js";
import * as devices from "./devices.js";

const $ = (id) => document.getElementById(id);

const HOLD_MS = 1000; // Lights up needs a deliberate press this long
const SLIDER_EVERY_MS = 100; // at most one slider update per this interval while dragging
const STALE_MS = 6000; // a running session pushes every second; silence this long means a dead link
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
  nudgeDismissed: new Set(),
  wakeLock: null,
  tab: "session",
};
window.roomctl = app; // for a look from the browser's console

// ── boot and pairing ─────────────────────────────────────────────────────────

async function boot() {
  wireStatic();
  onUnauthorized(() => showPair("This tablet is not paired (or was removed). Enter the PIN."));
  let pairNote = "";
  const m = location.hash.match(/^#pair=([^&]+)/);
  if (m) {
    history.replaceState(null, "", location.pathname + location.search);
    try {
      await api("/api/pair", { method: "POST", body: { code: decodeURIComponent(m[1]), label: tabletLabel() } });
    } catch (err) {
      pairNote = err.status === 401 ? "That pairing link was already used. Enter the PIN instead." : err.message;
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
    $("boot").textContent = "roomctl does not answer — retrying…";
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
  if (!pin) { $("pair-msg").textContent = "Enter the PIN first."; return; }
  $("pair-btn").disabled = true;
  try {
    await api("/api/pair", { method: "POST", body: { pin, label: tabletLabel() } });
    $("pair-msg").textContent = "";
    $("pair-screen").hidden = true;
    await enter();
  } catch (err) {
    $("pair-msg").textContent = err.status === 401 ? "That PIN is not right. Try again." : err.message;
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
    if (ev.code === 4401) { showPair("This tablet is not paired any more. Enter the PIN."); return; }
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

function setLive(live) {
  app.live = live;
  $("controls").disabled = !live;
  const conn = $("conn");
  conn.classList.toggle("live", live);
  conn.classList.toggle("lost", !live && app.everLive);
  $("conn-text").textContent = live ? "live" : app.everLive ? "reconnecting…" : "connecting…";
  $("offline").hidden = live || !app.everLive;
  document.body.dataset.live = live ? "1" : "0";
  if (!live) {
    for (const d of document.querySelectorAll("dialog[open]")) d.close();
    cancelHold(false);
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

/** POST to the room; the answer is the new state, shown at once. */
async function command(path, body) {
  try {
    const st = await api(`/api/rooms/${encodeURIComponent(app.room)}${path}`, { method: "POST", body });
    const state = st && st.state ? st.state : st;
    if (state && state.seq >= app.lastSeq) {
      app.restSeq = Math.max(app.restSeq, state.seq);
      applyState(state);
    }
    return st;
  } catch (err) {
    if (err.status !== 401) toast(err.message, true);
    throw err;
  }
}
const quietly = (p) => p.catch(() => {});

// ── rendering the state ──────────────────────────────────────────────────────

function active(st) { return !!(st && st.session && !st.session.ended); }

function applyState(st) {
  app.state = st;
  app.receivedAt = performance.now();
  app.lastSeq = Math.max(app.lastSeq, st.seq);
  const s = st.session;
  const running = active(st);
  $("idle").hidden = running;
  $("running").hidden = !running;
  $("steer").hidden = !running;
  $("preflight-box").hidden = running;
  $("emergency").hidden = !st.emergency;
  $("em-text").textContent = running
    ? "Bright neutral light, music low, the timeline waits."
    : "Bright neutral light, music low.";
  $("lightsdown").textContent = running ? "Lights down — back to the session" : "Lights down";
  renderRoom(st);
  if (running) renderSession(st); else renderIdle(st);
  renderCues(st);
  renderNudge(st);
  updateWakeLock();
  tick();
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
  const notes = st.degraded.filter((d) => !/^audio is simulated/.test(d));
  $("degraded").hidden = notes.length === 0;
  $("degraded").textContent = notes.join(" · ");
}

function hexAlpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a.toFixed(2)})`;
}

let stripKey = "";
function renderSession(st) {
  const s = st.session;
  $("phase-kind").textContent = s.phase.kind;
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
  $("btn-extend").title = s.phase.advance === "manual" ? "A manual phase has no countdown to extend" : "";

  const L = st.lights;
  const target = L.target;
  const onLights = L.lights.filter((l) => l.on);
  const bri = target ? target.brightness
    : onLights.length ? onLights.reduce((a, l) => a + l.brightness, 0) / onLights.length : 0;
  sliders.bri.set(Math.round(bri));
  if (target && target.color_temp) sliders.ct.set(target.color_temp);
  const color = target && target.color ? target.color.toLowerCase() : null;
  for (const b of $("swatches").children) {
    const sw = SWATCHES[Number(b.dataset.i)];
    const on = sw.color ? sw.color === color : !color && target && target.color_temp === sw.color_temp;
    b.setAttribute("aria-pressed", on ? "true" : "false");
  }
  const M = st.music;
  sliders.vol.set(Math.round(M.target_volume ?? M.volume));
  $("btn-play").textContent = M.playing ? "Pause" : "Play";
  $("btn-play").disabled = !M.playlist;
  $("btn-skip").disabled = !M.playlist;
  $("btn-back").hidden = !(L.overridden || M.overridden);
}

function renderIdle(st) {
  const s = st.session;
  const note = $("last-session");
  if (s && s.ended) {
    const at = new Date((s.ended_at || st.t) * 1000);
    note.hidden = false;
    note.textContent = `Last session: ${s.preset_name}${s.label ? ` (${s.label})` : ""}, ended at ` +
      `${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })} after ${fmtSpan(s.session_time_s)}.`;
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
  }, h("span", { class: "src" }, p.source === "clinic" ? "Clinic" : "Bundled"),
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
  const item = (ok, text) => h("li", { class: ok ? "ok" : "bad", "data-ok": ok ? "1" : "0" }, text);
  list.replaceChildren(
    item(p.lights.ok, `Lights: ${p.lights.ok ? "answer" : "not answering"}${p.lights.detail ? ` (${p.lights.detail})` : ""}`),
    item(p.audio.ok, `Audio: ${p.audio.ok ? "ready" : "not ready"}${p.audio.detail ? ` (${p.audio.detail})` : ""}`),
    ...p.playlists.map((pl) => item(pl.ok, pl.ok
      ? `Playlist “${pl.name}”: ${pl.playable} track${pl.playable === 1 ? "" : "s"}`
      : `Playlist “${pl.name}”: ${pl.problems.join("; ") || "nothing playable"}`)),
  );
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
    if (out && out.preflight && !out.preflight.ok) toast("Started; the room check found problems (see Room check).", true);
  } catch {
    // the toast says why
  } finally {
    $("start-btn").disabled = false;
  }
}

// ── reminders: on the tablet only, acknowledged with one tap ─────────────────

const cueEls = new Map();
function renderCues(st) {
  const box = $("cues");
  const s = st.session;
  const due = active(st) ? s.cues_due : [];
  const ids = new Set(due.map((c) => c.id));
  for (const [id, el] of cueEls) if (!ids.has(id)) { el.remove(); cueEls.delete(id); }
  for (const c of due) {
    if (cueEls.has(c.id)) continue;
    const note = h("input", { type: "text", maxlength: 500, placeholder: "Note (optional), e.g. BP 128/82",
      "aria-label": "Note", autocomplete: "off" });
    const done = h("button", { type: "button", class: "primary", "data-cue": c.id }, "Done");
    const when = h("span", { class: "cue-when", "data-due": String(c.due_at) });
    const el = h("div", { class: "cue", "data-cue": c.id, role: "group", "aria-label": "Reminder" },
      h("div", {}, h("div", { class: "cue-text" }, c.text), when), done, note);
    const ack = async () => {
      done.disabled = true;
      try {
        const text = note.value.trim();
        await command("/cues/ack", { cue: c.id, ...(text ? { note: text } : {}) });
      } catch {
        done.disabled = false;
      }
    };
    done.addEventListener("click", ack);
    note.addEventListener("keydown", (e) => { if (e.key === "Enter") ack(); });
    cueEls.set(c.id, el);
    box.append(el);
  }
  const badge = $("cue-badge");
  badge.hidden = due.length === 0;
  badge.textContent = String(due.length);
}

// ── the per-second tick: timers count locally between pushes ─────────────────

function tick() {
  const st = app.state;
  if (!active(st)) return;
  const s = st.session;
  const dt = (performance.now() - app.receivedAt) / 1000;
  $("t-phase").textContent = fmtClock(s.time_in_phase_s + dt);
  const remEl = $("t-remaining");
  const remLabel = $("t-remaining-label");
  let remaining = null;
  if (s.remaining_s !== null && s.remaining_s !== undefined) {
    remaining = Math.max(0, s.remaining_s - dt);
    remEl.textContent = fmtClock(Math.ceil(remaining));
    remLabel.textContent = "Remaining";
    remEl.classList.remove("dim");
  } else if ((s.held || s.emergency) && s.countdown_s !== null && s.countdown_s !== undefined) {
    remEl.textContent = fmtClock(Math.ceil(s.countdown_s));
    remLabel.textContent = "Remaining · on hold";
    remEl.classList.remove("dim");
  } else if (s.phase.advance === "manual") {
    remLabel.textContent = "Manual · waits for you";
    remEl.classList.add("dim");
    if (s.phase.planned_s) {
      const left = s.phase.planned_s - (s.time_in_phase_s + dt);
      remEl.textContent = left >= 0 ? `≈ ${fmtClock(Math.ceil(left))}` : `+${fmtClock(-left)}`;
      remLabel.textContent = left >= 0 ? "Planned · left" : "Past the plan";
    } else {
      remEl.textContent = "—";
    }
  } else {
    remEl.textContent = "—";
    remLabel.textContent = "Remaining";
  }
  $("t-dose").textContent = s.time_since_dose_s === null || s.time_since_dose_s === undefined
    ? "not yet" : fmtClock(s.time_since_dose_s + dt);
  const n = s.next_phase;
  let next;
  if (!n) next = "End of the session";
  else if (s.held) next = `${n.title} — after you resume`;
  else if (s.emergency) next = `${n.title} — after lights down`;
  else if (s.phase.advance === "manual") next = `${n.title} — when you press Next`;
  else next = `${n.title} in ${fmtClock(Math.ceil(remaining ?? 0))}`;
  $("next-phase").textContent = next;
  for (const w of document.querySelectorAll(".cue-when")) {
    const ago = st.t + dt - Number(w.dataset.due);
    w.textContent = ago < 60 ? "due just now" : `due ${fmtClock(ago)} ago`;
  }
  const np = st.music.now_playing;
  if (np) {
    const pos = np.position_s + (st.music.playing ? dt : 0);
    const dur = np.duration_s ? ` / ${fmtClock(np.duration_s)}` : "";
    $("now-playing").textContent = `♪ ${np.title}${np.artist ? ` — ${np.artist}` : ""} · ${fmtClock(pos)}${dur}`;
  } else {
    $("now-playing").textContent = st.music.playlist ? `Playlist “${st.music.playlist}”` : "No music in this phase";
  }
}
setInterval(tick, 250);

// ── sliders: live while dragging, throttled, the final value always sent ─────

function liveSlider(input, output, format, send) {
  let dragging = false;
  let busyUntil = 0; // after a release, wait for the room to echo the value before following it again
  let last = 0;
  let timer = null;
  let inflight = false;
  let queued = null;
  const push = (v) => {
    if (inflight) { queued = v; return; }
    inflight = true;
    send(v).catch(() => {}).finally(() => {
      inflight = false;
      if (queued !== null) { const q = queued; queued = null; push(q); }
    });
  };
  input.addEventListener("pointerdown", () => { dragging = true; });
  input.addEventListener("input", () => {
    busyUntil = performance.now() + 2000;
    output.textContent = format(Number(input.value));
    const now = performance.now();
    clearTimeout(timer);
    if (now - last >= SLIDER_EVERY_MS) {
      last = now;
      push(Number(input.value));
    } else {
      timer = setTimeout(() => { last = performance.now(); push(Number(input.value)); }, SLIDER_EVERY_MS - (now - last));
    }
  });
  input.addEventListener("change", () => {
    clearTimeout(timer);
    dragging = false;
    busyUntil = performance.now() + 2000;
    last = performance.now();
    push(Number(input.value));
  });
  const release = () => { dragging = false; };
  input.addEventListener("pointerup", release);
  input.addEventListener("pointercancel", release);
  return {
    set(v) {
      if (dragging || performance.now() < busyUntil) return;
      input.value = String(v);
      output.textContent = format(v);
    },
  };
}

const sliders = {};

// ── Lights up: press and hold; a short tap only explains ─────────────────────

let holdTimer = null;
let hintTimer = null;
function startHold() {
  if ($("controls").disabled || holdTimer) return;
  const btn = $("lightsup");
  btn.style.setProperty("--hold-ms", `${HOLD_MS}ms`);
  btn.classList.add("holding");
  holdTimer = setTimeout(async () => {
    holdTimer = null;
    btn.classList.remove("holding");
    showHint("Lights coming up…", true);
    await quietly(command("/emergency", { on: true }));
    showHint("Hold 1 s", false);
  }, HOLD_MS);
}
function cancelHold(explain = true) {
  if (!holdTimer) return;
  clearTimeout(holdTimer);
  holdTimer = null;
  $("lightsup").classList.remove("holding");
  if (explain) showHint("Hold to bring the lights up", true);
}
function showHint(text, strong) {
  const hint = $("lightsup-hint");
  hint.textContent = text;
  hint.classList.toggle("show", strong);
  clearTimeout(hintTimer);
  if (strong) hintTimer = setTimeout(() => { hint.textContent = "Hold 1 s"; hint.classList.remove("show"); }, 3000);
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
    !app.nudgeDismissed.has(key);
  $("nudge").hidden = !show;
  $("nudge").dataset.key = key;
}

// ── tabs ─────────────────────────────────────────────────────────────────────

function showTab(tab) {
  app.tab = tab;
  for (const b of document.querySelectorAll(".tabs [data-tab]")) b.setAttribute("aria-selected", b.dataset.tab === tab ? "true" : "false");
  $("view-session").hidden = tab !== "session";
  $("view-presets").hidden = tab !== "presets";
  $("view-devices").hidden = tab !== "devices";
  if (tab === "presets") presets.show();
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
  $("keypad").addEventListener("click", (e) => {
    const key = e.target.closest("button")?.dataset.key;
    if (!key) return;
    const pin = $("pin");
    if (key === "back") pin.value = pin.value.slice(0, -1);
    else if (key === "clear") pin.value = "";
    else if (pin.value.length < 12) pin.value += key;
  });
  $("pin").addEventListener("input", () => { $("pin").value = $("pin").value.replace(/\D/g, ""); });

  $("room-select").addEventListener("change", () => {
    app.room = $("room-select").value;
    localStorage.setItem("roomctl.room", app.room);
    bulbs.forEach((el) => el.remove());
    bulbs.clear();
    cueEls.forEach((el) => el.remove());
    cueEls.clear();
    app.preflightFor = null;
    connect();
    renderPick();
  });
  for (const b of document.querySelectorAll(".tabs [data-tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));

  $("start-btn").addEventListener("click", startSession);
  $("btn-next").addEventListener("click", () => {
    if (app.state?.session && !app.state.session.next_phase) openEnd(true);
    else quietly(command("/session/next"));
  });
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
    $("dlg-end").close();
    await quietly(command("/session/end"));
  });
  $("dlg-jump-no").addEventListener("click", () => $("dlg-jump").close());
  $("btn-back").addEventListener("click", () => quietly(command("/back-to-preset")));
  $("btn-play").addEventListener("click", () => quietly(command("/music", { playing: !app.state.music.playing })));
  $("btn-skip").addEventListener("click", () => quietly(command("/music", { skip: "next" })));
  $("lightsdown").addEventListener("click", () => quietly(command("/emergency", { on: false })));

  const lu = $("lightsup");
  lu.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    lu.setPointerCapture(e.pointerId);
    startHold();
  });
  lu.addEventListener("pointerup", () => cancelHold(true));
  lu.addEventListener("pointercancel", () => cancelHold(false));
  lu.addEventListener("keydown", (e) => {
    if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); startHold(); }
  });
  lu.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") cancelHold(true); });
  lu.addEventListener("blur", () => cancelHold(false));
  lu.addEventListener("contextmenu", (e) => e.preventDefault());

  sliders.bri = liveSlider($("bri"), $("bri-out"), (v) => `${v} %`,
    (v) => command("/lights", { brightness: v, transition: 0.4 }));
  sliders.ct = liveSlider($("ct"), $("ct-out"), (v) => `${v} K`,
    (v) => command("/lights", { color_temp: v, transition: 0.8 }));
  sliders.vol = liveSlider($("vol"), $("vol-out"), (v) => `${v} %`, (v) => command("/music", { volume: v }));
  $("swatches").replaceChildren(...SWATCHES.map((sw, i) => h("button", {
    type: "button", "data-i": i, title: sw.name, "aria-label": sw.name, "aria-pressed": "false",
    onclick: () => quietly(command("/lights", sw.color ? { color: sw.color, transition: 2 } : { color_temp: sw.color_temp, transition: 2 })),
  }, h("i", { style: `background:${sw.color || sw.show}` }))));

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
}

function openEnd(finishing) {
  $("dlg-end-title").textContent = finishing ? "Finish the session?" : "End this session?";
  $("dlg-end-text").textContent = finishing
    ? "This is the last phase: finishing ends the session. The record is kept."
    : "The lights and music stop following the preset. The record is kept.";
  $("dlg-end").showModal();
}

function openJump() {
  const s = app.state?.session;
  if (!s) return;
  $("jump-list").replaceChildren(...s.phases.map((p) => h("button", {
    type: "button", "data-phase": p.id, "aria-current": p.index === s.phase.index ? "step" : false,
    onclick: async () => {
      $("dlg-jump").close();
      await quietly(command("/session/jump", { phase: p.id }));
    },
  }, h("span", {}, `${p.index + 1}. ${p.title}`),
  h("span", { class: "muted small" }, p.index === s.phase.index ? "now" : `${p.kind}${p.planned_s ? ` · ${fmtSpan(p.planned_s)}` : ""}`))));
  $("dlg-jump").showModal();
}

boot();
