// The clinical information of a running session: time in phase, what remains, the dose clock,
// highlighted vitals (until acknowledged), reminders due (acknowledged with one tap and an
// optional note; a vitals check is recorded or skipped with a reason), the doses given, the
// vitals recorded, and the reminders already done.
// The session screen and the Lights-up view each show one (`clinicalView`), so the therapist
// never loses the dose clock, a due reminder or a highlighted value while the lights are up.
//
// Sections go in order inside the view: the timers; the `clin-extra` slot (Dose given, Vitals,
// the observation time, the check line); then one scrolling list, so nothing above it moves
// when something is added.
import { fmtClock, fmtTimeOfDay, h } from "./util.js";
import { vitalsParts } from "./words.js";

export function clinicalView(root, { onAck, onDose, onVitals, onSkip, onAlertAck }) {
  const timer = (label, key, ...more) => h("div", { class: `timer t-${key}` },
    h("span", { class: "label", "data-label": key }, label), h("span", { class: "big-time", "data-t": key }, "—"), ...more);
  const timers = h("div", { class: "clin-timers" },
    timer("In phase", "phase"), timer("Remaining", "remaining"), timer("Since dose", "dose"));

  const doseBtn = h("button", { type: "button", class: "clin-btn", "data-act": "dose", onclick: () => onDose() }, "Dose given");
  const vitalsBtn = h("button", { type: "button", class: "clin-btn", "data-act": "vitals", onclick: () => onVitals(null) }, "Vitals");
  // Beside the buttons, two quiet lines: the time since the last dose (once there are two) and
  // the observation time; the check line heads the list below, over the checks it is about.
  const sinceLast = h("span", { class: "since-last", "data-t": "last-dose", hidden: true });
  const observe = h("span", { class: "observe", "data-observe": "" });
  const extra = h("div", { class: "clin-extra", "data-slot": "clinical-extra" },
    h("div", { class: "clin-act" }, doseBtn, vitalsBtn, h("div", { class: "clin-status" }, sinceLast, observe)));
  const check = h("p", { class: "check-line", hidden: true },
    "Check: lights lifted a little, music lowered — record or skip to return");

  const alerts = h("div", { class: "clin-alerts" });
  const due = h("div", { class: "cues-due" });
  const none = h("p", { class: "cues-none faint" }, "No reminder due.");
  const dosesHead = h("h3", { hidden: true }, "Doses given");
  const doses = h("ol", { class: "doses-list" });
  const vitalsHead = h("h3", { hidden: true }, "Vitals");
  const vitals = h("ul", { class: "vitals-list" });
  const doneHead = h("h3", { hidden: true }, "Done");
  const done = h("ul", { class: "cues-done" });
  const cues = h("div", { class: "clin-cues" }, alerts, check, h("h3", {}, "Reminders"), due, none,
    dosesHead, doses, vitalsHead, vitals, doneHead, done);
  root.replaceChildren(timers, extra, cues);
  const els = new Map(); // due reminder id -> element
  const alertEls = new Map(); // highlighted vitals id -> element
  let listsKey = "";
  const q = (key) => root.querySelector(`[data-t="${key}"]`);
  const ql = (key) => root.querySelector(`[data-label="${key}"]`);

  /** A button that stays pressed until its command is answered (a second tap sends nothing). */
  const once = (btn, run) => async () => {
    btn.disabled = true;
    try {
      await run();
    } catch {
      btn.disabled = false;
    }
  };

  function reminder(c) {
    if (c.check === "vitals") {
      const record = h("button", { type: "button", class: "primary", "data-cue": c.id, "data-act": "record" }, "Record vitals");
      const skip = h("button", { type: "button", class: "quiet", "data-act": "skip" }, "Skip…");
      record.addEventListener("click", () => onVitals(c));
      skip.addEventListener("click", () => onSkip(c));
      return h("div", { class: "cue check", "data-cue": c.id, role: "group", "aria-label": "Vitals check" },
        h("div", { class: "cue-words" }, h("div", { class: "cue-text" }, c.text),
          h("span", { class: "cue-when", "data-due": String(c.due_at) })), h("div", { class: "cue-btns" }, record, skip));
    }
    const note = h("input", { type: "text", maxlength: 500, placeholder: "Note (optional), e.g. BP 128/82",
      "aria-label": "Note", autocomplete: "off" });
    const btn = h("button", { type: "button", class: "primary", "data-cue": c.id }, "Done");
    const ack = once(btn, () => onAck(c.id, note.value.trim() || null));
    btn.addEventListener("click", ack);
    note.addEventListener("keydown", (e) => { if (e.key === "Enter") ack(); });
    return h("div", { class: "cue", "data-cue": c.id, role: "group", "aria-label": "Reminder" },
      h("div", { class: "cue-words" }, h("div", { class: "cue-text" }, c.text),
        h("span", { class: "cue-when", "data-due": String(c.due_at) })), btn, note);
  }

  function alertCard(v, observations) {
    const btn = h("button", { type: "button", class: "alert-ack", "data-alert": v.id }, "Acknowledge");
    btn.addEventListener("click", once(btn, () => onAlertAck(v.id)));
    return h("div", { class: "alert", "data-alert": v.id, role: "group", "aria-label": "Highlighted values" },
      h("div", { class: "alert-words" },
        h("span", { class: "alert-head" }, `Outside the clinic's ranges · ${fmtTimeOfDay(v.at)}`),
        h("span", { class: "alert-values" },
          ...vitalsParts(v, observations, { only: true }).map((p) => h("b", { class: "flag" }, p.text)))),
      btn);
  }

  function render(st) {
    const s = st.session;
    const live = !!(s && !s.ended);
    const observations = (s && s.monitoring && s.monitoring.observations) || [];
    const list = live ? s.cues_due : [];
    const ids = new Set(list.map((c) => c.id));
    for (const [id, el] of els) if (!ids.has(id)) { el.remove(); els.delete(id); }
    for (const c of list) {
      if (els.has(c.id)) continue;
      const el = reminder(c);
      els.set(c.id, el);
      due.append(el);
    }
    none.hidden = list.length > 0;

    const shown = live ? s.alerts : [];
    const alertIds = new Set(shown.map((v) => v.id));
    for (const [id, el] of alertEls) if (!alertIds.has(id)) { el.remove(); alertEls.delete(id); }
    for (const v of shown) {
      if (alertEls.has(v.id)) continue;
      const el = alertCard(v, observations);
      alertEls.set(v.id, el);
      alerts.append(el);
    }

    observe.textContent = live && s.observe_until ? `Observation until ${fmtTimeOfDay(s.observe_until)}` : "";
    check.hidden = !(live && s.check_active);
    const doseLabel = ql("dose");
    doseLabel.textContent = s && s.doses.length ? "Since first dose" : "Since dose";

    // The lists change rarely: rebuilt only when they do.
    const acked = s ? [...s.cues_acknowledged].sort((a, b) => b.acknowledged_at - a.acknowledged_at) : [];
    const key = JSON.stringify([s && s.id, s && s.doses, s && s.vitals, acked]);
    if (key === listsKey) return;
    listsKey = key;
    const ds = s ? s.doses : [];
    dosesHead.hidden = ds.length === 0;
    doses.replaceChildren(...ds.map((d) => h("li", { "data-dose": String(d.n) },
      h("span", { class: "when" }, fmtTimeOfDay(d.given_at)),
      h("span", {}, [d.route, d.amount].filter(Boolean).join(" · ") || "dose"),
      d.by ? h("span", { class: "by" }, d.by) : null)));
    const vs = s ? [...s.vitals].reverse() : [];
    vitalsHead.hidden = vs.length === 0;
    vitals.replaceChildren(...vs.map((v) => h("li", { "data-vitals": v.id },
      h("span", { class: "when" }, fmtTimeOfDay(v.at)),
      ...vitalsParts(v, observations).map((p) => h("span", { class: p.flagged ? "val flag" : "val" }, p.text)),
      v.note ? h("span", { class: "done-note" }, v.note) : null,
      v.by ? h("span", { class: "by" }, v.by) : null)));
    doneHead.hidden = acked.length === 0;
    done.replaceChildren(...acked.map((c) => h("li", { "data-cue": c.id, class: c.skipped ? "skipped" : "" },
      h("span", { class: "tick" }, c.skipped ? "–" : "✓"), h("span", { class: "done-text" }, c.text),
      h("span", { class: "done-when" }, `${c.skipped ? "skipped" : "done"} at ${fmtClock(c.acknowledged_at - s.started_at)}`),
      c.note ? h("span", { class: "done-note" }, c.note) : null)));
  }

  /** Timers count on locally between pushes: `dt` seconds since the state arrived. */
  function tick(st, dt) {
    const s = st.session;
    if (!s) return;
    q("phase").textContent = fmtClock(s.time_in_phase_s + dt);
    const rem = q("remaining");
    const remLabel = ql("remaining");
    rem.classList.remove("dim");
    if (s.remaining_s !== null && s.remaining_s !== undefined) {
      rem.textContent = fmtClock(Math.ceil(Math.max(0, s.remaining_s - dt)));
      remLabel.textContent = "Remaining";
    } else if ((s.held || s.emergency) && s.countdown_s !== null && s.countdown_s !== undefined) {
      rem.textContent = fmtClock(Math.ceil(s.countdown_s));
      remLabel.textContent = "Remaining · on hold";
    } else if (s.phase.advance === "manual") {
      rem.classList.add("dim");
      if (s.phase.planned_s) {
        const left = s.phase.planned_s - (s.time_in_phase_s + dt);
        rem.textContent = left >= 0 ? `≈ ${fmtClock(Math.ceil(left))}` : `+${fmtClock(-left)}`;
        remLabel.textContent = left >= 0 ? "Planned · left" : "Past the plan";
      } else {
        rem.textContent = "—";
        remLabel.textContent = "Waits for you";
      }
    } else {
      rem.textContent = "—";
      remLabel.textContent = "Remaining";
    }
    const run = s.ended ? 0 : dt;
    const noDose = s.time_since_dose_s === null || s.time_since_dose_s === undefined;
    q("dose").textContent = noDose ? "not yet" : fmtClock(s.time_since_dose_s + run);
    q("dose").classList.toggle("dim", noDose);
    const last = s.doses.length > 1 && s.time_since_last_dose_s !== null && s.time_since_last_dose_s !== undefined;
    sinceLast.hidden = !last;
    if (last) sinceLast.textContent = `Since last dose ${fmtClock(s.time_since_last_dose_s + run)}`;
    for (const w of root.querySelectorAll(".cue-when")) {
      const ago = st.t + dt - Number(w.dataset.due);
      w.textContent = ago < 60 ? "due just now" : `due ${fmtClock(ago)} ago`;
    }
  }

  return { render, tick, root };
}
