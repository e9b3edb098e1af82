// Recording along a session: a dose (when it was given, by which route, how much), a vitals
// check typed on an on-screen number pad (no keyboard in the dark), a check skipped with its
// reason, and highlighted values acknowledged. The dialogs are in index.html; every change goes
// through app.js's `command`, whose answer is the room's new state.
import { fmtTimeOfDay, h, toast } from "./util.js";
import { ROUTES, SKIP_REASONS, VITALS, vitalsFieldWord } from "./words.js";

const $ = (id) => document.getElementById(id);
const MAX_DIGITS = 3; // every vital is below 1000
const BP = new Set(["systolic", "diastolic"]);

let send = null; // app.js's command(path, body, options)
let serverNow = () => Date.now() / 1000;
let current = () => null; // the room's session (or null)

// ── a dose ───────────────────────────────────────────────────────────────────

const dose = { offsetS: 0, route: null, timer: null };

function openDose() {
  dose.offsetS = 0;
  dose.route = null;
  $("dose-amount").value = "";
  $("dose-msg").textContent = "";
  $("dose-save").disabled = false;
  renderDose();
  clearInterval(dose.timer);
  dose.timer = setInterval(renderDose, 1000);
  $("dlg-dose").showModal();
}

function renderDose() {
  $("dose-at").textContent = fmtTimeOfDay(serverNow() + dose.offsetS);
  const min = Math.round(-dose.offsetS / 60);
  $("dose-ago").textContent = min === 0 ? "now" : `${min} min ago`;
  $("dose-later").disabled = dose.offsetS >= 0;
  for (const b of $("dose-routes").children) b.setAttribute("aria-pressed", b.dataset.route === dose.route ? "true" : "false");
}

async function saveDose() {
  const amount = $("dose-amount").value.trim();
  const body = {
    ...(dose.offsetS < 0 ? { given_at: Math.round(serverNow() + dose.offsetS) } : {}),
    ...(dose.route ? { route: dose.route } : {}),
    ...(amount ? { amount } : {}),
  };
  $("dose-save").disabled = true;
  try {
    await send("/doses", body, { quiet: true });
  } catch (err) {
    $("dose-msg").textContent = problemText(err, []) || err.message;
    $("dose-save").disabled = false;
    return;
  }
  $("dlg-dose").close();
  const n = current()?.doses.length || 1;
  toast(`Dose ${n} recorded, given at ${fmtTimeOfDay(body.given_at ?? serverNow())}.`);
}

function wireDose() {
  $("dose-routes").replaceChildren(...ROUTES.map((r) => h("button", {
    type: "button", "data-route": r, "aria-pressed": "false",
    onclick: () => { dose.route = dose.route === r ? null : r; renderDose(); },
  }, r)));
  for (const b of $("dlg-dose").querySelectorAll("[data-step]")) {
    b.addEventListener("click", () => {
      const step = Number(b.dataset.step);
      dose.offsetS = step === 0 ? 0 : Math.min(0, dose.offsetS + step);
      renderDose();
    });
  }
  $("dose-cancel").addEventListener("click", () => $("dlg-dose").close());
  $("dose-save").addEventListener("click", saveDose);
  $("dlg-dose").addEventListener("close", () => clearInterval(dose.timer));
}

// ── vitals ───────────────────────────────────────────────────────────────────

const vit = { values: {}, obs: {}, field: "systolic", cue: null, observations: [] };

function openVitals(cue) {
  const s = current();
  if (!s) return;
  vit.values = {};
  vit.obs = {};
  vit.field = "systolic";
  vit.cue = cue ? cue.id : null;
  vit.observations = (s.monitoring && s.monitoring.observations) || [];
  $("vitals-for").textContent = cue ? cue.text : "A check at any time.";
  $("vitals-note").value = "";
  $("vitals-save").disabled = false;
  buildObservations();
  clearProblems();
  renderVitals();
  $("dlg-vitals").showModal();
}

function buildObservations() {
  $("vitals-obs").replaceChildren(...vit.observations.map((o) => {
    const values = o.kind === "yes_no" ? [[0, "No"], [1, "Yes"]]
      : Array.from({ length: o.scale[1] - o.scale[0] + 1 }, (_, i) => [o.scale[0] + i, String(o.scale[0] + i)]);
    return h("div", { class: "obs-row", "data-obs": o.id },
      h("span", { class: "obs-label", id: `obs-${o.id}` }, o.label),
      h("div", { class: "choices", role: "group", "aria-labelledby": `obs-${o.id}` }, ...values.map(([v, text]) =>
        h("button", { type: "button", "data-obs": o.id, "data-value": String(v), "aria-pressed": "false",
          onclick: () => {
            vit.obs[o.id] = vit.obs[o.id] === v ? undefined : v;
            setProblem(`observations.${o.id}`, "");
            renderVitals();
          } }, text))),
      h("p", { class: "fmsg", "data-problem": `observations.${o.id}`, hidden: true }));
  }));
}

function renderVitals() {
  for (const b of $("vitals-fields").querySelectorAll("button[data-field]")) {
    const f = b.dataset.field;
    b.setAttribute("aria-pressed", f === vit.field ? "true" : "false");
    b.querySelector(".vf-value").textContent = vit.values[f] || "—";
    b.classList.toggle("empty", !vit.values[f]);
  }
  for (const b of $("vitals-obs").querySelectorAll("button[data-obs]")) {
    b.setAttribute("aria-pressed", vit.obs[b.dataset.obs] === Number(b.dataset.value) ? "true" : "false");
  }
}

function press(key) {
  const f = vit.field;
  const now = vit.values[f] || "";
  if (key === "back") vit.values[f] = now.slice(0, -1);
  else if (key === "clear") vit.values[f] = "";
  else if (now.length < MAX_DIGITS) vit.values[f] = now === "0" ? key : now + key;
  setProblem(BP.has(f) ? "bp" : f, "");
  $("vitals-msg").textContent = "";
  renderVitals();
}

/** Where a refused value is shown: its field, the blood pressure pair, an observation, or the whole. */
function problemSpot(field, message) {
  const key = String(field || "").replace(/^vitals\./, "");
  if (BP.has(key)) return "bp";
  if (VITALS.some((v) => v.id === key) || key.startsWith("observations.")) return key;
  if (/blood pressure|systolic|diastolic/i.test(message)) return "bp";
  return null;
}

/** The server's reason in plain words: "Blood pressure (systolic): 400 is above 300." */
function problemText(err, observations) {
  const p = err.body && Array.isArray(err.body.problems) ? err.body.problems[0] : null;
  if (!p) return "";
  const word = vitalsFieldWord(p.field, observations);
  const msg = String(p.message || "");
  if (/give at least one value/.test(msg)) return "Type at least one value or choose an observation.";
  const sentence = word ? `${word}: ${msg}` : msg.charAt(0).toUpperCase() + msg.slice(1);
  return `${sentence}.`;
}

function setProblem(spot, text) {
  const el = $("dlg-vitals").querySelector(`.fmsg[data-problem="${spot}"]`);
  if (!el) return false;
  el.textContent = text;
  el.hidden = !text;
  const group = el.closest("[data-group]");
  if (group) group.classList.toggle("has-problem", !!text);
  return true;
}

function clearProblems() {
  for (const el of $("dlg-vitals").querySelectorAll(".fmsg")) { el.textContent = ""; el.hidden = true; }
  for (const el of $("dlg-vitals").querySelectorAll(".has-problem")) el.classList.remove("has-problem");
  $("vitals-msg").textContent = "";
}

async function saveVitals() {
  clearProblems();
  const vitals = {};
  for (const v of VITALS) if (vit.values[v.id]) vitals[v.id] = Number(vit.values[v.id]);
  const obs = Object.fromEntries(Object.entries(vit.obs).filter(([, v]) => v !== undefined));
  if (Object.keys(obs).length) vitals.observations = obs;
  const note = $("vitals-note").value.trim();
  const body = { vitals, ...(vit.cue ? { cue: vit.cue } : {}), ...(note ? { note } : {}) };
  $("vitals-save").disabled = true;
  let st;
  try {
    st = await send("/vitals", body, { quiet: true });
  } catch (err) {
    $("vitals-save").disabled = false;
    const text = err.status === 422 ? problemText(err, vit.observations) : "";
    const p = err.body && Array.isArray(err.body.problems) ? err.body.problems[0] : null;
    const spot = text && p ? problemSpot(p.field, p.message) : null;
    if (!(spot && setProblem(spot, `${text} Nothing was recorded.`))) {
      $("vitals-msg").textContent = `${text || err.message}${err.status === 422 || err.status === 409 ? " Nothing was recorded." : ""}`;
    }
    return;
  }
  $("dlg-vitals").close();
  const recorded = st && st.session ? st.session.vitals[st.session.vitals.length - 1] : null;
  toast(recorded && recorded.flagged.length
    ? "Vitals recorded. Some values are outside the clinic's ranges: highlighted until acknowledged."
    : "Vitals recorded.");
}

function wireVitals() {
  const field = (id) => {
    const v = VITALS.find((x) => x.id === id);
    return h("button", { type: "button", class: "vfield empty", "data-field": id, "aria-pressed": "false",
      "aria-label": v.label, onclick: () => { vit.field = id; renderVitals(); } },
    BP.has(id) ? h("span", { class: "vf-label" }, v.label.replace(/^BP /, "")) : null, h("span", { class: "vf-value" }, "—"));
  };
  const group = (key, label, unit, ...buttons) => h("div", { class: "vgroup", "data-group": key },
    h("span", { class: "vg-label" }, label),
    h("div", { class: "vg-values" }, ...buttons.flatMap((b, i) => (i ? [h("span", { class: "vg-sep" }, "/"), b] : [b])),
      h("span", { class: "vg-unit" }, unit)),
    h("p", { class: "fmsg", "data-problem": key, hidden: true }));
  $("vitals-fields").replaceChildren(
    group("bp", "Blood pressure", "mmHg", field("systolic"), field("diastolic")),
    group("heart_rate", "Heart rate", "/min", field("heart_rate")),
    group("spo2", "SpO2", "%", field("spo2")));
  const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "back"];
  $("vitals-pad").replaceChildren(...keys.map((k) => h("button", {
    type: "button", "data-key": k, "aria-label": k === "back" ? "Delete one digit" : k === "clear" ? "Clear" : k,
    onclick: () => press(k),
  }, k === "back" ? "⌫" : k === "clear" ? "Clear" : k)));
  $("vitals-cancel").addEventListener("click", () => $("dlg-vitals").close());
  $("vitals-save").addEventListener("click", saveVitals);
}

// ── a check skipped ──────────────────────────────────────────────────────────

let skipCue = null;

function openSkip(cue) {
  skipCue = cue;
  $("skip-for").textContent = cue.text;
  $("skip-reason").value = "";
  $("skip-msg").textContent = "";
  $("skip-save").disabled = false;
  renderSkip();
  $("dlg-skip").showModal();
}

function renderSkip() {
  const reason = $("skip-reason").value.trim();
  for (const b of $("skip-reasons").children) b.setAttribute("aria-pressed", b.dataset.reason === reason ? "true" : "false");
}

async function saveSkip() {
  const reason = $("skip-reason").value.trim();
  if (!reason) {
    $("skip-msg").textContent = "Say why the check is skipped: tap a reason or type one.";
    return;
  }
  $("skip-save").disabled = true;
  try {
    await send("/cues/ack", { cue: skipCue.id, note: reason, skipped: true }, { quiet: true });
  } catch (err) {
    $("skip-msg").textContent = err.status === 422 ? problemText(err, []) || err.message : err.message;
    $("skip-save").disabled = false;
    return;
  }
  $("dlg-skip").close();
  toast("Check skipped; the reason is in the record.");
}

function wireSkip() {
  $("skip-reasons").replaceChildren(...SKIP_REASONS.map((r) => h("button", {
    type: "button", "data-reason": r, "aria-pressed": "false",
    onclick: () => { $("skip-reason").value = r; $("skip-msg").textContent = ""; renderSkip(); },
  }, r)));
  $("skip-reason").addEventListener("input", () => { $("skip-msg").textContent = ""; renderSkip(); });
  $("skip-cancel").addEventListener("click", () => $("dlg-skip").close());
  $("skip-save").addEventListener("click", saveSkip);
}

// ── highlighted values ───────────────────────────────────────────────────────

function acknowledgeAlert(id) {
  return send("/alerts/ack", { alert: id });
}

/** `command(path, body, {quiet})` sends to the room; `now()` is the server's clock; `session()` the session shown. */
export function init({ command, now, session }) {
  send = command;
  serverNow = now;
  current = session;
  wireDose();
  wireVitals();
  wireSkip();
}

/** What the clinical views call. */
export const handlers = {
  onDose: () => openDose(),
  onVitals: (cue) => openVitals(cue),
  onSkip: (cue) => openSkip(cue),
  onAlertAck: (id) => acknowledgeAlert(id),
};
