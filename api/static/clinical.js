// The clinical information of a running session: time in phase, what remains, the dose clock,
// reminders due (acknowledged with one tap and an optional note) and those already done.
// The session screen and the Lights-up view each show one (`clinicalView`), so the therapist
// never loses the dose clock or a due reminder while the lights are up.
//
// Sections go in order inside the view; further clinical information (doses, vitals) belongs
// in the `clin-extra` slot between the timers and the reminders.
import { fmtClock, h } from "./util.js";

export function clinicalView(root, { onAck }) {
  const timer = (label, key) => h("div", { class: `timer t-${key}` },
    h("span", { class: "label", "data-label": key }, label), h("span", { class: "big-time", "data-t": key }, "—"));
  const timers = h("div", { class: "clin-timers" },
    timer("In phase", "phase"), timer("Remaining", "remaining"), timer("Since dose", "dose"));
  const extra = h("div", { class: "clin-extra", "data-slot": "clinical-extra" });
  const due = h("div", { class: "cues-due" });
  const done = h("ul", { class: "cues-done" });
  const none = h("p", { class: "cues-none faint" }, "No reminder due.");
  const cues = h("div", { class: "clin-cues" }, h("h3", {}, "Reminders"), due, none, done);
  root.replaceChildren(timers, extra, cues);
  const els = new Map(); // due reminder id -> element
  const q = (key) => root.querySelector(`[data-t="${key}"]`);
  const ql = (key) => root.querySelector(`[data-label="${key}"]`);

  function render(st) {
    const s = st.session;
    const list = s && !s.ended ? s.cues_due : [];
    const ids = new Set(list.map((c) => c.id));
    for (const [id, el] of els) if (!ids.has(id)) { el.remove(); els.delete(id); }
    for (const c of list) {
      if (els.has(c.id)) continue;
      const note = h("input", { type: "text", maxlength: 500, placeholder: "Note (optional), e.g. BP 128/82",
        "aria-label": "Note", autocomplete: "off" });
      const btn = h("button", { type: "button", class: "primary", "data-cue": c.id }, "Done");
      const ack = async () => {
        btn.disabled = true;
        try {
          const text = note.value.trim();
          await onAck(c.id, text || null);
        } catch {
          btn.disabled = false;
        }
      };
      btn.addEventListener("click", ack);
      note.addEventListener("keydown", (e) => { if (e.key === "Enter") ack(); });
      const el = h("div", { class: "cue", "data-cue": c.id, role: "group", "aria-label": "Reminder" },
        h("div", { class: "cue-words" }, h("div", { class: "cue-text" }, c.text),
          h("span", { class: "cue-when", "data-due": String(c.due_at) })), btn, note);
      els.set(c.id, el);
      due.append(el);
    }
    none.hidden = list.length > 0;
    const acked = s ? [...s.cues_acknowledged].sort((a, b) => b.acknowledged_at - a.acknowledged_at) : [];
    done.replaceChildren(...acked.map((c) => h("li", { "data-cue": c.id },
      h("span", { class: "tick" }, "✓"), h("span", { class: "done-text" }, c.text),
      h("span", { class: "done-when" }, `done at ${fmtClock(c.acknowledged_at - s.started_at)}`),
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
    const noDose = s.time_since_dose_s === null || s.time_since_dose_s === undefined;
    q("dose").textContent = noDose ? "not yet" : fmtClock(s.time_since_dose_s + (s.ended ? 0 : dt));
    q("dose").classList.toggle("dim", noDose);
    for (const w of root.querySelectorAll(".cue-when")) {
      const ago = st.t + dt - Number(w.dataset.due);
      w.textContent = ago < 60 ? "due just now" : `due ${fmtClock(ago)} ago`;
    }
  }

  return { render, tick, root };
}
