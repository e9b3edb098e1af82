// Small helpers shared by the tablet's modules: the API call, element building, time formats.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let unauthorized = () => {};
/** Called when the server answers 401: the tablet must pair (again). */
export function onUnauthorized(fn) { unauthorized = fn; }

/** The API's error body as one readable line: {"detail": "..."} or FastAPI's list form. */
export function detailText(body, status) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => {
      const where = (d.loc || []).filter((x) => x !== "body").join(".");
      return where ? `${where}: ${d.msg}` : d.msg;
    }).join("; ");
  }
  if (typeof body === "string" && body) return body.slice(0, 200);
  return `the server answered ${status}`;
}

/** JSON over fetch to the roomctl host only; throws ApiError with the server's message. */
export async function api(path, { method = "GET", body, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      signal,
      credentials: "same-origin",
      // Every change is sent as JSON, with or without a body: the server refuses anything else.
      headers: method === "GET" ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "roomctl does not answer (connection lost)");
  }
  const type = res.headers.get("content-type") || "";
  let data = null;
  if (res.status !== 204) data = type.includes("json") ? await res.json().catch(() => null) : await res.text();
  if (res.status === 401 && path !== "/api/pair") unauthorized();
  if (!res.ok) throw new ApiError(res.status, detailText(data, res.status), data);
  return data;
}

const PROPS = new Set(["value", "checked", "disabled", "hidden", "selected", "textContent", "type", "min", "max", "step"]);

/**
 * h("button", {class: "x", onclick: f}, "text", child, ...). `style` takes an object of CSS
 * properties, set through the CSSOM: the page runs under a CSP that refuses style attributes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "style") for (const [prop, val] of Object.entries(v)) el.style.setProperty(prop, val);
    else if (k === "class") el.className = v;
    else if (k === "style") el.style.cssText = String(v); // CSSOM: a style attribute would break the CSP
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Seconds -> "m:ss" or "h:mm:ss". */
export function fmtClock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(total / 3600);
  const mm = Math.floor((total % 3600) / 60);
  const ss = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${pad(mm)}:${pad(ss)}` : `${mm}:${pad(ss)}`;
}

/** Epoch seconds -> the tablet's local time of day, "14:05" (as on a monitoring form). */
export function fmtTimeOfDay(epoch) {
  const d = new Date(epoch * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** Seconds -> "1 h 30 min", "15 min", "45 s": for totals and plans. */
export function fmtSpan(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const hh = Math.floor(s / 3600);
  const mm = Math.round((s % 3600) / 60);
  if (!hh) return `${mm} min`;
  return mm ? `${hh} h ${mm} min` : `${hh} h`;
}

/** A "details" disclosure: a plain summary, the technical words inside. */
export function details(summary, text) {
  return h("details", { class: "tech" }, h("summary", {}, summary), h("p", {}, text));
}

let toastTimer = null;
/** A gentle message at the bottom of the screen; never a sound. */
export function toast(text, bad = false) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.classList.toggle("bad", bad);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, bad ? 6000 : 3000);
}

export function debounce(fn, ms) {
  let timer = null;
  const call = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}
