// The clinic board: every room at a glance (phase, time since dose, the next check and when,
// highlighted vitals, Lights up or a device in trouble), live over each room's WebSocket.
// Tap a room to open it on the tablet.
import { api, h, fmtClock } from "./util.js";

const rooms = new Map(); // id -> { state, card }
const board = document.getElementById("board");
const status = document.getElementById("board-status");

const hhmm = (epoch) => new Date(epoch * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function row(label, value, flag = false) {
  return h("div", { class: "row" }, h("span", {}, label), h("span", { class: flag ? "flag" : "" }, value));
}

function render(id) {
  const { state } = rooms.get(id);
  const s = state.session && !state.session.ended ? state.session : null;
  const card = h("button", { class: "room", type: "button", "data-room": id, onclick: () => open(id) });
  card.append(h("div", { class: "name" }, state.name));
  if (state.emergency) {
    card.classList.add("up");
    card.append(h("span", { class: "badge up" }, "LIGHTS UP"));
  }
  card.append(h("div", { class: "phase" }, s ? s.phase.title : "No session"));
  if (s) {
    card.append(row("In phase", fmtClock(s.time_in_phase_s)));
    if (s.time_since_dose_s !== null && s.time_since_dose_s !== undefined) {
      const last = s.doses.length > 1 ? ` · last ${fmtClock(s.time_since_last_dose_s)}` : "";
      card.append(row("Since dose", fmtClock(s.time_since_dose_s) + last));
    }
    const due = s.cues_due;
    if (due.length) card.append(row("Due now", due.map((c) => c.text).join(" · "), true));
    else if (s.next_cue) card.append(row("Next", `${s.next_cue.text} at ${hhmm(s.next_cue.due_at)}`));
    if (s.observe_until) card.append(row("Observation until", hhmm(s.observe_until)));
    for (const a of s.alerts) {
      card.append(row(`Vitals ${hhmm(a.at)}`, a.flagged.map((k) => `${k.replace("_", " ")} ${a.values[k]}`).join(", "), true));
    }
    card.classList.toggle("alert", s.alerts.length > 0 || due.length > 0);
  }
  for (const d of state.degraded) card.append(h("div", {}, h("span", { class: "badge bad" }, plain(d))));
  const old = rooms.get(id).card;
  if (old) old.replaceWith(card); else board.append(card);
  rooms.get(id).card = card;
}

/** A short plain word for what is in trouble; the tablet shows the details. */
function plain(reason) {
  const r = reason.toLowerCase();
  if (r.startsWith("lights")) return "Lights not answering";
  if (r.startsWith("music") || r.startsWith("audio")) return "Music needs a look";
  if (r.includes("record")) return "Record needs a look";
  if (r.includes("timeline") || r.includes("session clock")) return "Session clock needs a look";
  return "Needs a look";
}

function open(id) {
  try { localStorage.setItem("roomctl.room", id); } catch (e) { /* private mode: the tablet asks */ }
  location.href = "./";
}

function live(id) {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/api/rooms/${encodeURIComponent(id)}/live`);
  ws.onmessage = (ev) => {
    rooms.get(id).state = JSON.parse(ev.data);
    render(id);
    status.textContent = `live · ${new Date().toLocaleTimeString()}`;
    status.classList.remove("bad");
  };
  ws.onclose = () => {
    status.textContent = "the service does not answer — retrying";
    status.classList.add("bad");
    setTimeout(() => live(id), 2000);
  };
}

async function main() {
  let list;
  try {
    list = await api("/api/rooms");
  } catch (err) {
    if (err.status === 401) { document.getElementById("board-empty").hidden = false; status.textContent = ""; return; }
    status.textContent = "the service does not answer — retrying";
    status.classList.add("bad");
    setTimeout(main, 2000);
    return;
  }
  for (const r of list) {
    rooms.set(r.id, { state: r.state, card: null });
    render(r.id);
    live(r.id);
  }
}

main();
