// The Devices tab: paired tablets with name, last seen and address; rename; revoke; roles for
// a clinic admin. And, on the pairing screen, the certificate authority to install once.
import { api, h, toast } from "./util.js";

const $ = (id) => document.getElementById(id);
let me = null; // this device, from the list
let revoking = null;

/** When the list says how long ago: "just now", "5 min ago", "3 days ago". */
function ago(epoch) {
  if (!epoch) return "never";
  const s = Math.max(0, Date.now() / 1000 - epoch);
  if (s < 90) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function row(d) {
  const admin = me && me.role === "admin";
  const actions = h("div", { class: "dev-actions" });
  const li = h("li", { class: "dev", "data-device": d.id, "data-this": d.this ? "1" : "0" },
    h("div", { class: "dev-name" }, d.name, d.this ? " (this tablet)" : "",
      h("span", { class: "role", "data-role": d.role }, d.role)),
    h("div", { class: "dev-facts" }, `Last seen ${ago(d.last_seen)}`, d.address ? ` · from ${d.address}` : ""),
    actions);
  if (d.this || admin) {
    actions.append(h("button", { type: "button", "data-action": "rename", onclick: () => startRename(li, d) }, "Rename"));
  }
  if (admin && !d.this) {
    const to = d.role === "admin" ? "therapist" : "admin";
    actions.append(h("button", { type: "button", "data-action": "role", onclick: () => setRole(d, to) },
      to === "admin" ? "Make admin" : "Make therapist"));
  }
  if (d.this || admin) {
    actions.append(h("button", { type: "button", class: "quiet", "data-action": "revoke", onclick: () => askRevoke(d) },
      d.this ? "Forget this tablet…" : "Revoke…"));
  }
  return li;
}

function startRename(li, d) {
  const input = h("input", { type: "text", maxlength: 80, value: d.name, "aria-label": "New name", autocomplete: "off" });
  const form = h("form", { class: "dev-rename" }, input,
    h("button", { type: "submit", class: "primary" }, "Save"),
    h("button", { type: "button", onclick: () => refresh() }, "Cancel"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = input.value.trim();
    if (!name) return;
    try {
      await api(`/api/devices/${encodeURIComponent(d.id)}`, { method: "PATCH", body: { name } });
      toast(`Renamed to “${name}”.`);
    } catch (err) {
      $("dev-msg").textContent = err.message;
    }
    refresh();
  });
  li.append(form);
  input.focus();
}

async function setRole(d, role) {
  try {
    await api(`/api/devices/${encodeURIComponent(d.id)}`, { method: "PATCH", body: { role } });
    toast(`${d.name} is now ${role === "admin" ? "an admin" : "a therapist tablet"}.`);
  } catch (err) {
    $("dev-msg").textContent = err.message;
  }
  refresh();
}

function askRevoke(d) {
  revoking = d;
  $("dlg-revoke-title").textContent = d.this ? "Forget this tablet?" : `Revoke “${d.name}”?`;
  $("dlg-revoke-text").textContent = d.this
    ? "This tablet will need the PIN again to control the room."
    : "It is disconnected at once and needs the PIN again to control the room.";
  $("dlg-revoke").showModal();
}

async function revoke() {
  const d = revoking;
  $("dlg-revoke").close();
  if (!d) return;
  try {
    await api(`/api/devices/${encodeURIComponent(d.id)}`, { method: "DELETE" });
  } catch (err) {
    $("dev-msg").textContent = err.message;
    return;
  }
  if (d.this) { location.reload(); return; }
  toast(`${d.name} was revoked.`);
  refresh();
}

async function refresh() {
  let list;
  try {
    list = await api("/api/devices");
  } catch (err) {
    $("dev-msg").textContent = err.message;
    return;
  }
  $("dev-msg").textContent = "";
  me = list.find((d) => d.this) || null;
  $("dev-role-note").textContent = me && me.role === "admin"
    ? "This tablet is a clinic admin: it can revoke other tablets, change roles and delete records."
    : "Only a clinic admin can revoke other tablets, change roles or delete records.";
  $("dev-list").replaceChildren(...list.map(row));
}

/** The certificate authority, on the pairing screen and the Devices tab, when HTTPS uses one. */
async function showCertificate() {
  let info;
  try {
    info = await api("/api/tls");
  } catch {
    return;
  }
  const local = info && info.https && info.ca_url;
  for (const id of ["pair-ca", "dev-ca"]) $(id).hidden = !local;
  if (!local) return;
  $("pair-ca-fp").textContent = info.ca_fingerprint;
  $("dev-ca-fp").textContent = info.ca_fingerprint;
  $("pair-ca-link").href = info.ca_url;
}

export function init() {
  $("dlg-revoke-no").addEventListener("click", () => $("dlg-revoke").close());
  $("dlg-revoke-yes").addEventListener("click", revoke);
  showCertificate();
}

export function show() {
  refresh();
}
