// A slider a therapist cannot move by accident: only a deliberate sideways drag that begins on
// its handle changes the value. A tap on the track does nothing (it says how to use it), a
// swipe that starts vertically is left to the page, and the handle never jumps to the finger:
// it moves by as much as the finger moves. Keys move it in small steps.
//
// The browser's own <input type=range> jumps to any tap on its track and takes over every
// touch on it (touch-action: none), which is how a tap took a room from 15 % to 100 %.

const GRAB_PX = 34; // a touch this close to the handle's centre (sideways) takes the handle
const START_PX = 8; // a drag starts after this much sideways movement ...
const SIDEWAYS = 1.3; // ... and only when it is clearly more sideways than up or down
const HINT_MS = 1800;

/**
 * Make `el` a slider. `send(value)` is called while dragging (throttled to one call per
 * `everyMs`, never two at once, the last value always sent) and on release.
 */
export function makeSlider(el, { min, max, step, keyStep = step, format, send, everyMs = 100 }) {
  el.setAttribute("role", "slider");
  el.tabIndex = 0;
  el.setAttribute("aria-valuemin", String(min));
  el.setAttribute("aria-valuemax", String(max));
  const track = document.createElement("span");
  track.className = "rs-track";
  const fill = document.createElement("span");
  fill.className = "rs-fill";
  const thumb = document.createElement("span");
  thumb.className = "rs-thumb";
  track.append(fill);
  el.replaceChildren(track, thumb);
  const out = document.getElementById(el.getAttribute("aria-labelledby").replace(/-label$/, "-out"));

  let value = min;
  let inactiveText = null; // e.g. the warmth slider while the light is a colour
  let gesture = null; // {id, x0, y0, v0, dragging}
  let busyUntil = 0; // after a change, the room's echo is awaited before following pushes again
  let hintTimer = null;

  const clamp = (v) => Math.min(max, Math.max(min, Math.round((v - min) / step) * step + min));
  const frac = () => (value - min) / (max - min);

  function show() {
    el.style.setProperty("--f", frac().toFixed(4));
    el.classList.toggle("inactive", inactiveText !== null);
    el.setAttribute("aria-valuenow", String(value));
    el.setAttribute("aria-valuetext", inactiveText ?? format(value));
    if (!hintTimer) out.textContent = inactiveText ?? format(value);
  }

  // Sending: live while dragging, one request at a time and never two within `everyMs`; the
  // newest value always goes out last.
  let pending = null;
  let inflight = false;
  let lastSent = -Infinity;
  let timer = null;
  function pump() {
    timer = null;
    if (inflight || pending === null) return;
    const wait = lastSent + everyMs - performance.now();
    if (wait > 0) { timer = setTimeout(pump, wait); return; }
    const v = pending;
    pending = null;
    inflight = true;
    lastSent = performance.now();
    Promise.resolve(send(v)).catch(() => {}).finally(() => { inflight = false; pump(); });
  }
  function changed() {
    busyUntil = performance.now() + 2000;
    pending = value;
    if (!timer) pump();
  }

  function hint(text) {
    clearTimeout(hintTimer);
    out.textContent = text;
    out.classList.add("hinting");
    hintTimer = setTimeout(() => { hintTimer = null; out.classList.remove("hinting"); show(); }, HINT_MS);
  }

  function usableWidth() {
    const r = el.getBoundingClientRect();
    return Math.max(1, r.width - thumb.offsetWidth);
  }
  function thumbCentre() {
    const r = thumb.getBoundingClientRect();
    return r.left + r.width / 2;
  }
  const disabled = () => !!el.closest("fieldset:disabled") || el.classList.contains("off");

  el.addEventListener("pointerdown", (e) => {
    if (disabled() || (e.pointerType === "mouse" && e.button !== 0)) return;
    if (Math.abs(e.clientX - thumbCentre()) > GRAB_PX) {
      hint("Drag the handle");
      return;
    }
    gesture = { id: e.pointerId, x0: e.clientX, y0: e.clientY, v0: value, dragging: false };
  });
  el.addEventListener("pointermove", (e) => {
    const g = gesture;
    if (!g || e.pointerId !== g.id) return;
    const dx = e.clientX - g.x0;
    const dy = e.clientY - g.y0;
    if (!g.dragging) {
      if (Math.abs(dy) > START_PX && Math.abs(dy) * SIDEWAYS > Math.abs(dx)) { gesture = null; return; } // a scroll
      if (Math.abs(dx) < START_PX || Math.abs(dx) < Math.abs(dy) * SIDEWAYS) return;
      g.dragging = true; // the handle stays under the finger: it moves by as much as the finger did
      el.setPointerCapture(e.pointerId);
      el.classList.add("dragging");
      return;
    }
    e.preventDefault();
    const v = clamp(g.v0 + (dx / usableWidth()) * (max - min));
    if (v !== value || inactiveText !== null) {
      value = v;
      inactiveText = null;
      show();
      changed();
    }
  });
  const finish = (e) => {
    const g = gesture;
    if (!g || e.pointerId !== g.id) return;
    gesture = null;
    el.classList.remove("dragging");
    if (g.dragging && value !== g.v0) changed();
  };
  el.addEventListener("pointerup", finish);
  el.addEventListener("pointercancel", finish);
  // Taking the capture from the handle (a touch's implicit target) fires this on the handle: not an end.
  el.addEventListener("lostpointercapture", (e) => { if (e.target === el) finish(e); });
  el.addEventListener("keydown", (e) => {
    if (disabled()) return;
    const by = { ArrowRight: keyStep, ArrowUp: keyStep, ArrowLeft: -keyStep, ArrowDown: -keyStep,
      PageUp: keyStep * 5, PageDown: -keyStep * 5 }[e.key];
    if (by === undefined) return;
    e.preventDefault();
    value = clamp(value + by);
    inactiveText = null;
    show();
    changed();
  });

  show();
  return {
    /** What the room says; ignored while the therapist is changing it. */
    set(v, inactive = null) {
      if (gesture?.dragging || performance.now() < busyUntil) return;
      value = clamp(v);
      inactiveText = inactive;
      show();
    },
    get value() { return value; },
    get busy() { return !!gesture?.dragging; },
  };
}
