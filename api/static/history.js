// Past sessions on the tablet: the list, a session's report (the dark timeline picture),
// exports (CSV, JSON), the monitoring record to print, the therapist's label, deleting a record
// after a confirmation, and the audit list: who exported, printed, labelled or deleted a record.
import { api, fmtSpan, h, toast } from "./util.js";

const $ = (id) => document.getElementById(id);
const PAGE = 30;

let ctx = null;
let sessions = [];
let selected = null;
let more = false;

export function init(context) {
  ctx = context;
  $("history-more").addEventListener("click", () => load(sessions.length));
  $("dlg-forget-no").addEventListener("click", () => $("dlg-forget").close());
  $("dlg-forget-yes").addEventListener("click", forget);
}

export function show() { load(0); }

function when(epoch) {
  const d = new Date(epoch * 1000);
  return `${d.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })}, ` +
    d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

async function load(offset) {
  let page;
  try {
    page = await api(`/api/sessions?room=${encodeURIComponent(ctx.room())}&limit=${PAGE}&offset=${offset}`);
  } catch (err) {
    $("history-list").replaceChildren(h("li", { class: "warn" },
      err.status === 409 ? "This roomctl keeps no session record." : err.message));
    return;
  }
  sessions = offset ? [...sessions, ...page] : page;
  more = page.length === PAGE;
  renderList();
  if (selected && !sessions.some((s) => s.id === selected)) selected = null;
  if (!selected && sessions.length) select(sessions[0].id);
  else if (selected) renderDetail();
  else $("history-detail").replaceChildren(h("p", { class: "muted" }, "No sessions yet in this room."));
}

function renderList() {
  $("history-list").replaceChildren(...sessions.map((s) => h("li", {}, h("button", {
    type: "button", "data-session": s.id, "aria-current": s.id === selected ? "true" : "false",
    onclick: () => select(s.id),
  }, h("b", {}, when(s.started_at)),
  h("span", { class: "meta" }, `${s.preset_name}${s.label ? ` · ${s.label}` : ""}`),
  h("span", { class: "meta" }, s.ended_at ? fmtSpan(s.duration_s ?? s.ended_at - s.started_at) : "running now")))));
  $("history-more").hidden = !more;
}

function select(id) {
  selected = id;
  renderList();
  renderDetail();
}

function renderDetail() {
  const s = sessions.find((x) => x.id === selected);
  if (!s) return;
  const base = `/api/sessions/${encodeURIComponent(s.id)}`;
  const label = h("input", { type: "text", maxlength: 80, value: s.label || "", autocomplete: "off",
    "aria-label": "Label", placeholder: "e.g. initials or a time (no client names)" });
  const saveLabel = h("button", { type: "button", class: "small-btn", onclick: async () => {
    try {
      const out = await api(base, { method: "PATCH", body: { label: label.value.trim() || null } });
      Object.assign(s, out);
      renderList();
      loadAudit(s.id);
      toast("Label saved.");
    } catch (err) {
      toast(err.message, true);
    }
  } }, "Save label");
  const report = h("img", { class: "report", alt: `Report of the session: phases, light, music, reminders`,
    src: `${base}/report.svg?v=${s.event_count}` });
  const running = !s.ended_at;
  $("history-detail").replaceChildren(
    h("h2", {}, running ? "Running now" : "Session"),
    h("h1", {}, `${s.preset_name}`),
    h("p", { class: "muted" }, `${when(s.started_at)} · ${running ? "not ended yet"
      : `${fmtSpan(s.duration_s ?? s.ended_at - s.started_at)}${s.end_reason === "completed" ? ", ran to its end" : ""}`}`),
    h("div", { class: "report-box" }, report),
    h("p", { class: "small muted" }, "Amber: brightness · teal: volume · red band: Lights up · diamonds: reminders done · marks below: your changes"),
    h("div", { class: "detail-actions" },
      h("a", { class: "button", href: `${base}/export.csv`, download: `session-${s.id}.csv` }, "Export table (CSV)"),
      h("a", { class: "button", href: `${base}/export.json`, download: `session-${s.id}.json` }, "Export record (JSON)"),
      h("a", { class: "button", href: `${base}/monitoring.html`, target: "_blank", rel: "noopener" }, "Monitoring record (print)"),
      h("a", { class: "button", href: `${base}/monitoring.csv`, download: `monitoring-${s.id}.csv` }, "Monitoring record (CSV)"),
      h("button", { type: "button", class: "quiet", onclick: () => askForget(s), disabled: running }, "Delete…")),
    h("div", { class: "label-row" }, label, saveLabel),
    h("h3", {}, "Who exported or changed this record"),
    h("ul", { id: "history-audit", class: "audit-list small" }, h("li", { class: "muted" }, "…")),
    h("details", { id: "history-deleted", class: "audit-deleted small" },
      h("summary", {}, "Deleted records"), h("ul", { class: "audit-list" })));
  // An export is on the list once the service has handed it out: look again shortly after.
  for (const a of $("history-detail").querySelectorAll(".detail-actions a")) {
    a.addEventListener("click", () => setTimeout(() => loadAudit(s.id), 800));
  }
  $("history-deleted").addEventListener("toggle", () => { if ($("history-deleted").open) loadDeleted(); });
  loadAudit(s.id);
}

const ACTIONS = {
  "export.json": () => "Record exported (JSON)",
  "export.csv": () => "Table exported (CSV)",
  "monitoring.html": () => "Monitoring record opened to print",
  "monitoring.csv": () => "Monitoring record exported (CSV)",
  label: (e) => `Label set: ${e.detail}`,
  deleted: (e) => `Record deleted: ${e.detail}`,
  purged: (e) => `Deleted after the keeping time: ${e.detail}`,
};

function auditLine(e) {
  const what = (ACTIONS[e.action] || (() => e.action))(e);
  return h("li", { "data-action": e.action }, h("b", {}, when(e.at)), " ", what,
    h("span", { class: "muted" }, ` · ${e.device_name || (e.action === "purged" ? "roomctl (automatic)" : "a device")}`));
}

async function loadAudit(id) {
  let lines;
  try {
    lines = await api(`/api/sessions/${encodeURIComponent(id)}/audit`);
  } catch (err) {
    lines = null;
    if (selected === id && $("history-audit")) $("history-audit").replaceChildren(h("li", { class: "warn" }, err.message));
  }
  if (!lines || selected !== id || !$("history-audit")) return;
  $("history-audit").replaceChildren(...(lines.length ? lines.map(auditLine)
    : [h("li", { class: "muted" }, "Not exported, printed or changed yet.")]));
}

async function loadDeleted() {
  const list = $("history-deleted").querySelector("ul");
  try {
    const lines = (await api("/api/sessions/audit?limit=500")).filter((e) => e.action === "deleted" || e.action === "purged");
    list.replaceChildren(...(lines.length ? lines.map(auditLine) : [h("li", { class: "muted" }, "No record has been deleted.")]));
  } catch (err) {
    list.replaceChildren(h("li", { class: "warn" }, err.message));
  }
}

function askForget(s) {
  $("dlg-forget-text").textContent = `${s.preset_name}, ${when(s.started_at)}${s.label ? ` (${s.label})` : ""}: ` +
    "the whole record of this session is deleted, with its report. This cannot be undone.";
  $("dlg-forget").dataset.id = s.id;
  $("dlg-forget").showModal();
}

async function forget() {
  const id = $("dlg-forget").dataset.id;
  $("dlg-forget").close();
  try {
    await api(`/api/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
    toast("The record is deleted.");
    selected = null;
    await load(0);
  } catch (err) {
    toast(err.message, true);
  }
}
