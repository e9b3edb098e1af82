// Presets for clinics: the list, each preset's timeline chart, the editor with live validation,
// duplicate, import and export.
import { api, debounce, fmtSpan, h, toast } from "./util.js";
import { drawChart } from "./chart.js";
import { fieldWord, KIND_CHOICES } from "./words.js";

const $ = (id) => document.getElementById(id);

let ctx = null;
let list = [];
let selected = null;
let detailChart = null; // the chart data shown in the detail, for redraws
let editChart = null;
let editing = null; // {id, isNew, model, dirty, idTouched}
let validateSeq = 0;

export function init(context) {
  ctx = context;
  $("btn-new-preset").addEventListener("click", newPreset);
  $("import-file").addEventListener("change", importFile);
  $("ed-add-phase").addEventListener("click", addPhase);
  $("ed-save").addEventListener("click", save);
  $("ed-cancel").addEventListener("click", closeEditor);
  $("ed-name").addEventListener("input", () => {
    editing.model.name = $("ed-name").value;
    if (editing.isNew && !editing.idTouched) $("ed-id").value = slug($("ed-name").value);
    changed();
  });
  $("ed-desc").addEventListener("input", () => { editing.model.description = $("ed-desc").value; changed(); });
  $("ed-id").addEventListener("input", () => { editing.idTouched = true; changed(); });
  $("dlg-delete-no").addEventListener("click", () => $("dlg-delete").close());
  $("dlg-delete-yes").addEventListener("click", deleteSelected);
  window.addEventListener("resize", debounce(redraw, 200));
}

export function setList(presets) {
  list = presets;
  renderList();
  if (selected && !editing) {
    if (list.some((p) => p.id === selected)) showDetail(selected);
    else { selected = null; $("preset-detail").replaceChildren(h("p", { class: "muted" }, "Choose a preset to see its timeline.")); }
  }
}

export function show() {
  if (!selected && !editing && list.length) showDetail(list[0].id);
  redraw();
}

export function redraw() {
  if (detailChart && !$("preset-detail").hidden) {
    const box = $("preset-detail").querySelector(".chart-box");
    if (box) drawChart(box, detailChart);
  }
  if (editChart && editing) drawChart($("ed-chart"), editChart);
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60) || "preset";
}

// ── list and detail ──────────────────────────────────────────────────────────

function renderList() {
  const item = (p) => h("li", {}, h("button", {
    type: "button", "data-preset": p.id, "aria-current": p.id === selected ? "true" : "false",
    onclick: () => {
      if (editing && editing.dirty) { toast("Save or close the preset you are editing first."); return; }
      showDetail(p.id);
    },
  }, h("b", {}, p.name || p.id),
  h("span", { class: "meta" }, p.valid ? `${p.phases} phases · about ${fmtSpan(p.planned_s)} · ${p.id}` : p.id),
  p.valid ? null : h("span", { class: "bad" }, `${p.problems.length} problem${p.problems.length === 1 ? "" : "s"}`)));
  const clinic = list.filter((p) => p.source === "clinic");
  $("list-clinic").replaceChildren(...(clinic.length ? clinic.map(item)
    : [h("li", { class: "muted small" }, "None yet: duplicate one that came with roomctl, import a file or start a new one.")]));
  $("list-bundled").replaceChildren(...list.filter((p) => p.source !== "clinic").map(item));
}

async function showDetail(id) {
  selected = id;
  editing = null;
  $("editor").hidden = true;
  const box = $("preset-detail");
  box.hidden = false;
  renderList();
  const p = list.find((x) => x.id === id);
  if (!p) return;
  const chartBox = h("div", { class: "chart-box" });
  const actions = h("div", { class: "detail-actions" });
  if (p.source === "clinic" && p.valid) actions.append(h("button", { type: "button", class: "primary", onclick: () => editExisting(id) }, "Edit"));
  if (p.valid) {
    actions.append(h("button", { type: "button", onclick: () => duplicate(id) }, p.source === "clinic" ? "Duplicate" : "Duplicate to edit"));
    actions.append(h("button", { type: "button", onclick: () => ctx.use(id) }, "Use for a session"));
  }
  actions.append(h("a", { class: "button", href: `/api/presets/${encodeURIComponent(id)}/yaml`, download: `${id}.yaml` }, "Save as a file"));
  if (p.source === "clinic") actions.append(h("button", { type: "button", class: "quiet", onclick: () => askDelete(p) }, "Delete…"));
  box.replaceChildren(...[
    h("h2", {}, p.source === "clinic" ? "The clinic's preset" : "Came with roomctl (cannot be changed)"),
    h("h1", {}, p.name || p.id),
    p.description ? h("p", { class: "muted" }, p.description) : null,
    p.valid ? null : h("div", { class: "problems" }, "This file has problems:",
      h("ul", {}, ...p.problems.map((x) => h("li", {}, x.text)))),
    chartBox, actions].filter(Boolean));
  detailChart = null;
  if (!p.valid) return;
  try {
    const chart = await api(`/api/presets/${encodeURIComponent(id)}/chart?points=240`);
    if (selected !== id || editing) return;
    detailChart = chart;
    drawChart(chartBox, chart);
  } catch (err) {
    chartBox.replaceChildren(h("p", { class: "warn" }, err.message));
  }
}

async function duplicate(id) {
  try {
    const out = await api(`/api/presets/${encodeURIComponent(id)}/duplicate`, { method: "POST", body: {} });
    toast(`Copied to the clinic's presets as “${out.id}”.`);
    await ctx.refresh();
    selected = out.id;
    openEditor(out.id, out.preset, false);
  } catch (err) {
    toast(err.message, true);
  }
}

function askDelete(p) {
  $("dlg-delete-text").textContent = `“${p.name || p.id}” (${p.id}.yaml) leaves the clinic's presets. Past session records keep their copy.`;
  $("dlg-delete").dataset.id = p.id;
  $("dlg-delete").showModal();
}

async function deleteSelected() {
  const id = $("dlg-delete").dataset.id;
  $("dlg-delete").close();
  try {
    await api(`/api/presets/${encodeURIComponent(id)}`, { method: "DELETE" });
    toast(`Deleted “${id}”.`);
    selected = null;
    $("preset-detail").replaceChildren(h("p", { class: "muted" }, "Choose a preset to see its timeline."));
    await ctx.refresh();
  } catch (err) {
    toast(err.message, true);
  }
}

async function importFile() {
  const input = $("import-file");
  const file = input.files && input.files[0];
  input.value = "";
  if (!file) return;
  const msg = $("import-msg");
  msg.replaceChildren();
  try {
    const text = await file.text();
    const id = slug(file.name.replace(/\.ya?ml$/i, ""));
    const taken = list.some((p) => p.id === id);
    const out = await api("/api/presets/import", { method: "POST", body: { yaml: text, ...(taken ? {} : { id }) } });
    toast(`Imported as “${out.id}”.`);
    await ctx.refresh();
    showDetail(out.id);
  } catch (err) {
    const problems = err.body && err.body.problems;
    msg.replaceChildren(`${file.name}: `, problems ? h("ul", {}, ...problems.map((p) => h("li", {}, p.text))) : err.message);
  }
}

// ── editor ───────────────────────────────────────────────────────────────────

function newPreset() {
  if (editing && editing.dirty) { toast("Save or close the preset you are editing first."); return; }
  openEditor(null, {
    name: "New preset",
    description: "",
    phases: [
      { id: "preparation", kind: "preparation", advance: "manual", planned: "10m",
        lights: { brightness: 60, color_temp: 2700, transition: "30s" }, music: { playlist: "arrival", volume: 35 } },
      { id: "dosing", kind: "dosing", duration: "10m",
        lights: { brightness: 35, color_temp: 2400, transition: "1m" }, music: { playlist: "dosing", volume: 40 } },
      { id: "journey", kind: "journey", duration: "45m",
        lights: { brightness: 12, color: "#ff8a3d", transition: "5m" }, music: { playlist: "journey", volume: 45 },
        cues: [{ since_dose: "30m", text: "Check blood pressure" }] },
      { id: "return", kind: "return", duration: "15m",
        lights: { brightness: 45, color_temp: 2700, transition: "10m" }, music: { playlist: "return", volume: 35 } },
    ],
  }, true);
}

async function editExisting(id) {
  try {
    const out = await api(`/api/presets/${encodeURIComponent(id)}`);
    openEditor(id, out.preset, false);
  } catch (err) {
    toast(err.message, true);
  }
}

function openEditor(id, preset, isNew) {
  editing = { id, isNew, model: structuredClone(preset), dirty: false, idTouched: false };
  editing.model.description = editing.model.description || "";
  $("preset-detail").hidden = true;
  $("editor").hidden = false;
  $("ed-title").textContent = isNew ? "New preset" : `Edit “${preset.name}”`;
  $("ed-id-field").hidden = !isNew;
  $("ed-id").value = isNew ? slug(preset.name) : id;
  $("ed-name").value = editing.model.name || "";
  $("ed-desc").value = editing.model.description;
  $("ed-status").textContent = isNew ? "Not saved yet" : `Saved as ${id}.yaml`;
  editChart = null;
  $("ed-chart").replaceChildren();
  renderPhases();
  renderList();
  validateNow();
  $("editor").scrollIntoView({ block: "start" });
}

function closeEditor() {
  const btn = $("ed-cancel");
  if (editing && editing.dirty && btn.dataset.armed !== "1") {
    btn.dataset.armed = "1";
    btn.textContent = "Discard changes?";
    setTimeout(() => { btn.dataset.armed = ""; btn.textContent = "Close"; }, 4000);
    return;
  }
  btn.dataset.armed = "";
  btn.textContent = "Close";
  const back = editing && !editing.isNew ? editing.id : selected;
  editing = null;
  editChart = null;
  $("editor").hidden = true;
  $("preset-detail").hidden = false;
  if (back && list.some((p) => p.id === back)) showDetail(back);
  else $("preset-detail").replaceChildren(h("p", { class: "muted" }, "Choose a preset to see its timeline."));
}

function changed() {
  editing.dirty = true;
  $("ed-status").textContent = "Unsaved changes";
  scheduleValidate();
}

const scheduleValidate = debounce(() => validateNow(), 300);

function body() {
  const m = editing.model;
  return { name: m.name, description: m.description || "", phases: m.phases };
}

async function validateNow() {
  if (!editing) return;
  const mine = ++validateSeq;
  const data = body();
  let out;
  try {
    out = await api("/api/presets/validate", { method: "POST", body: data });
  } catch (err) {
    if (mine === validateSeq) $("ed-problems").replaceChildren(`Cannot check the preset: ${err.message}`);
    return;
  }
  if (mine !== validateSeq || !editing) return;
  const idProblem = editing.isNew && !/^[a-z0-9][a-z0-9-]{0,59}$/.test($("ed-id").value.trim())
    ? [{ phase: null, field: "id", message: "use lower-case letters, digits and - (it becomes the file name)" }] : [];
  showProblems([...idProblem, ...out.problems]);
  if (!out.ok) { $("ed-chart").style.opacity = "0.35"; return; }
  try {
    const chart = await api("/api/presets/chart?points=200", { method: "POST", body: data });
    if (mine !== validateSeq || !editing) return;
    editChart = chart;
    $("ed-chart").style.opacity = "1";
    drawChart($("ed-chart"), chart);
  } catch {
    // the problems list says why
  }
}

function problemText(p) {
  const unnamed = p.phase && /^#(\d+)$/.exec(p.phase); // a phase without an id is named by its place
  const phase = unnamed ? `Phase ${unnamed[1]}` : p.phase ? `Phase '${p.phase}'` : "Preset";
  return `${phase}${p.field ? ` · ${fieldWord(p.field)}` : ""}: ${p.message}`;
}

function phaseIndexes(name) {
  const phases = editing.model.phases || [];
  const m = /^#(\d+)$/.exec(name);
  if (m && !phases.some((p) => p.id === name)) return [Number(m[1]) - 1];
  return phases.map((p, i) => (p.id === name ? i : -1)).filter((i) => i >= 0);
}

function showProblems(problems) {
  const root = $("editor");
  for (const el of root.querySelectorAll(".fmsg:not(.phase-msg)")) el.remove();
  for (const el of root.querySelectorAll(".phase-msg")) el.replaceChildren();
  for (const el of root.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of root.querySelectorAll(".has-problem")) el.classList.remove("has-problem");
  const summary = $("ed-problems");
  if (!problems.length) {
    summary.replaceChildren();
    if (editing) $("ed-status").textContent = editing.dirty ? "Unsaved changes · no problems" : $("ed-status").textContent;
    return;
  }
  summary.replaceChildren(`${problems.length} problem${problems.length === 1 ? "" : "s"} to fix before saving:`,
    h("ul", {}, ...problems.map((p) => h("li", {}, problemText(p)))));
  const phaseEls = $("ed-phases").children;
  for (const p of problems) {
    const text = problemText(p);
    if (p.phase) {
      for (const i of phaseIndexes(p.phase)) {
        const el = phaseEls[i];
        if (!el) continue;
        el.classList.add("has-problem");
        place(el, p.field, text, el.querySelector(".phase-msg"));
      }
    } else {
      place($("editor").querySelector(".ed-top"), p.field, text, null);
    }
  }
}

/** Put a message beside the input for `field` (or its nearest enclosing section). */
function place(scope, field, text, fallback) {
  let f = field || "";
  let target = null;
  while (f && !target) {
    target = scope.querySelector(`[data-field="${CSS.escape(f)}"]`);
    const shorter = f.replace(/(\.[^.[]+|\[\d+\])$/, "");
    if (shorter === f) break;
    f = shorter;
  }
  const msg = h("div", { class: "fmsg", "data-problem": field || "" }, text);
  if (!target) {
    if (fallback) fallback.append(h("div", {}, text));
    else if (scope.classList.contains("ed-top")) scope.append(msg);
    return;
  }
  if (!/^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) {
    target.append(msg);
    return;
  }
  target.setAttribute("aria-invalid", "true");
  // The message goes right under the row that holds the field, as wide as the row.
  const cell = target.closest("label") || target;
  const row = cell.parentElement;
  if (row.classList.contains("ed-top")) { row.append(msg); return; }
  if (!row.classList.contains("ed-grid") && !row.classList.contains("ed-cue")) { cell.append(msg); return; }
  let after = row;
  while (after.nextElementSibling && after.nextElementSibling.classList.contains("fmsg")) after = after.nextElementSibling;
  after.after(msg);
}

// ── phase forms ──────────────────────────────────────────────────────────────

function field(label, input, cls = "") {
  return h("label", { class: `field ${cls}` }, label, input);
}

function textInput(obj, key, path, { placeholder, onset, maxlength = 80 } = {}) {
  return h("input", {
    type: "text", value: obj[key] ?? "", "data-field": path, placeholder, maxlength, autocomplete: "off", spellcheck: "false",
    oninput: (e) => {
      const v = e.target.value.trim();
      if (v === "") delete obj[key]; else obj[key] = v;
      if (onset) onset(v);
      changed();
    },
  });
}

function numberInput(obj, key, path, { min, max, step = 1, unit = "" } = {}) {
  const value = obj[key] === undefined ? "" : String(parseFloat(obj[key]));
  return h("input", {
    type: "number", inputmode: "decimal", value, min, max, step, "data-field": path, "aria-label": unit || path,
    oninput: (e) => {
      const raw = e.target.value;
      if (raw === "" || Number.isNaN(Number(raw))) delete obj[key]; else obj[key] = Number(raw);
      changed();
    },
  });
}

function select(obj, key, path, options, onchange) {
  const el = h("select", { "data-field": path, onchange: (e) => { obj[key] = e.target.value; if (onchange) onchange(); changed(); } },
    ...options.map(([v, label]) => h("option", { value: v }, label)));
  el.value = obj[key] ?? options[0][0];
  return el;
}

function renderPhases() {
  const phases = editing.model.phases = editing.model.phases || [];
  $("ed-phases").replaceChildren(...phases.map((p, i) => phaseForm(p, i, phases.length)));
}

function structural(fn) {
  return () => { fn(); renderPhases(); changed(); };
}

function phaseForm(p, i, n) {
  const phases = editing.model.phases;
  const title = h("b", {}, `${i + 1}. ${p.title || p.id || "(no id)"}`);
  const retitle = () => { title.textContent = `${i + 1}. ${p.title || p.id || "(no id)"}`; };
  const manual = p.advance === "manual";
  const head = h("div", { class: "ed-phase-head" }, title,
    h("button", { type: "button", title: "Move up", "aria-label": `Move phase ${i + 1} up`, disabled: i === 0,
      onclick: structural(() => { [phases[i - 1], phases[i]] = [phases[i], phases[i - 1]]; }) }, "↑"),
    h("button", { type: "button", title: "Move down", "aria-label": `Move phase ${i + 1} down`, disabled: i === n - 1,
      onclick: structural(() => { [phases[i + 1], phases[i]] = [phases[i], phases[i + 1]]; }) }, "↓"),
    h("button", { type: "button", title: "Remove", "aria-label": `Remove phase ${i + 1}`, disabled: n === 1,
      onclick: structural(() => { phases.splice(i, 1); }) }, "✕"));

  const timingKey = manual ? "planned" : "duration";
  const grid = h("div", { class: "ed-grid" },
    field("Short name", textInput(p, "id", "id", { onset: retitle, maxlength: 40 })),
    field("Type", select(p, "kind", "kind", KIND_CHOICES)),
    field("Title", textInput(p, "title", "title", { onset: retitle, placeholder: "from the short name" })),
    field("Moves on", select(p, "advance", "advance", [["auto", "by itself"], ["manual", "on Next"]], () => {
      const from = p.advance === "manual" ? "duration" : "planned";
      const to = p.advance === "manual" ? "planned" : "duration";
      if (p[from] !== undefined && p[to] === undefined) p[to] = p[from];
      delete p[from];
      renderPhases();
    })),
    field(manual ? "Planned time" : "Duration", textInput(p, timingKey, timingKey, { placeholder: "e.g. 15m, 1h30m" })));

  const lights = p.lights;
  const lightsBox = h("div", { class: "ed-sub", "data-field": "lights" },
    h("div", { class: "ed-sub-head" }, h("label", {}, h("input", { type: "checkbox", checked: !!lights,
      onchange: structural(() => {
        if (p.lights) delete p.lights; else p.lights = { brightness: 40, color_temp: 2700, transition: "10s" };
      }) }), "Lights")));
  if (lights) {
    const mode = lights.color !== undefined ? "color" : "color_temp";
    const colourInput = mode === "color"
      ? h("input", { type: "color", value: /^#[0-9a-f]{6}$/i.test(lights.color) ? lights.color : "#ff8a3d", "data-field": "lights.color",
        oninput: (e) => { lights.color = e.target.value; changed(); } })
      : numberInput(lights, "color_temp", "lights.color_temp", { min: 2000, max: 6500, step: 50, unit: "Kelvin" });
    lightsBox.append(h("div", { class: "ed-grid" },
      field("Brightness %", numberInput(lights, "brightness", "lights.brightness", { min: 0, max: 100, unit: "percent" })),
      field("Light", h("select", { "data-field": "lights.mode", onchange: structural(() => {
        if (lights.color !== undefined) { delete lights.color; lights.color_temp = 2700; } else { delete lights.color_temp; lights.color = "#ff8a3d"; }
      }) }, h("option", { value: "color_temp", selected: mode === "color_temp" }, "White"),
      h("option", { value: "color", selected: mode === "color" }, "A colour"))),
      field(mode === "color" ? "Colour" : "Warmth (K)", colourInput),
      field("Light fade", textInput(lights, "transition", "lights.transition", { placeholder: "10s" }))));
  }

  const music = p.music;
  const musicBox = h("div", { class: "ed-sub", "data-field": "music" },
    h("div", { class: "ed-sub-head" }, h("label", {}, h("input", { type: "checkbox", checked: !!music,
      onchange: structural(() => {
        if (p.music) delete p.music; else p.music = { playlist: p.kind, volume: 40 };
      }) }), "Music")));
  if (music) {
    musicBox.append(h("div", { class: "ed-grid" },
      field("Playlist", textInput(music, "playlist", "music.playlist", { placeholder: "silence" })),
      field("Volume %", numberInput(music, "volume", "music.volume", { min: 0, max: 100, unit: "percent" })),
      field("Music fade in", textInput(music, "fade_in", "music.fade_in", { placeholder: "10s" })),
      field("Crossfade", textInput(music, "crossfade", "music.crossfade", { placeholder: "8s" }))));
  }

  const cues = p.cues = p.cues || [];
  const cuesBox = h("div", { class: "ed-sub stack", "data-field": "cues" },
    h("div", { class: "ed-sub-head" }, h("span", {}, "Reminders ", h("span", { class: "faint" }, "(on the tablet only, never a sound)")),
      h("button", { type: "button", class: "small-btn", onclick: structural(() => { cues.push({ at: "5m", text: "Check in" }); }) },
        "Add reminder")));
  const cueRows = h("div", { class: "ed-cues" });
  cuesBox.append(cueRows);
  cues.forEach((c, ci) => {
    const anchor = c.since_dose !== undefined ? "since_dose" : "at";
    cueRows.append(h("div", { class: "ed-cue", "data-field": `cues[${ci}]` },
      h("select", { "aria-label": "Counted from", onchange: structural(() => {
        const other = anchor === "at" ? "since_dose" : "at";
        c[other] = c[anchor];
        delete c[anchor];
      }) }, h("option", { value: "at", selected: anchor === "at" }, "from phase start"),
      h("option", { value: "since_dose", selected: anchor === "since_dose" }, "from the dose")),
      h("label", {}, textInput(c, anchor, `cues[${ci}].${anchor}`, { placeholder: "5m" })),
      h("label", {}, textInput(c, "text", `cues[${ci}].text`, { placeholder: "Check blood pressure", maxlength: 200 })),
      h("button", { type: "button", "aria-label": `Remove reminder ${ci + 1}`, onclick: structural(() => { cues.splice(ci, 1); }) }, "✕")));
  });

  return h("div", { class: "ed-phase", "data-index": i },
    head, h("div", { class: "fmsg phase-msg" }), grid, lightsBox, musicBox, cuesBox);
}

function addPhase() {
  const phases = editing.model.phases;
  const used = new Set(phases.map((p) => p.id));
  let n = phases.length + 1;
  while (used.has(`phase-${n}`)) n += 1;
  phases.push({ id: `phase-${n}`, kind: "custom", duration: "10m", lights: { brightness: 40, color_temp: 2700 } });
  renderPhases();
  changed();
  $("ed-phases").lastElementChild.scrollIntoView({ block: "center" });
}

async function save() {
  if (!editing) return;
  const data = body();
  const btn = $("ed-save");
  btn.disabled = true;
  try {
    let out;
    if (editing.isNew) {
      const id = $("ed-id").value.trim();
      out = await api(`/api/presets?id=${encodeURIComponent(id)}`, { method: "POST", body: data });
      editing.isNew = false;
      $("ed-id-field").hidden = true;
    } else {
      out = await api(`/api/presets/${encodeURIComponent(editing.id)}`, { method: "PUT", body: data });
    }
    editing.id = out.id;
    editing.dirty = false;
    selected = out.id;
    $("ed-title").textContent = `Edit “${data.name}”`;
    $("ed-status").textContent = `Saved as ${out.id}.yaml`;
    showProblems([]);
    toast(`Saved “${data.name}”.`);
    await ctx.refresh();
  } catch (err) {
    if (err.body && Array.isArray(err.body.problems)) showProblems(err.body.problems);
    toast(err.message, true);
  } finally {
    btn.disabled = false;
  }
}
