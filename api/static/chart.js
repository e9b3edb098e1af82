// A preset's whole timeline as SVG, from /api/presets/{id}/chart (or POST /api/presets/chart):
// phase bands, the brightness curve, a band of the light's colour, the volume curve, reminders.
import { fmtSpan, h } from "./util.js";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function tickStep(total) {
  for (const step of [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]) if (total / step <= 8) return step;
  return 14400;
}

function tickLabel(t) {
  if (t === 0) return "0";
  if (t % 3600 === 0) return `${t / 3600} h`;
  if (t >= 3600) return `${Math.floor(t / 3600)} h ${Math.round((t % 3600) / 60)}`;
  if (t % 60 === 0) return `${t / 60} min`;
  return `${t} s`;
}

function tickClock(t) {
  const m = Math.floor(t / 60);
  const sec = Math.round(t % 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : sec ? `${m}:${String(sec).padStart(2, "0")}` : `${m} min`;
}

/** Draw `chart` into `box` (replacing what was there), as wide as the box. */
export function drawChart(box, chart) {
  const W = Math.max(320, Math.round(box.clientWidth || 800));
  const H = 250;
  const L = 34; const R = 10;
  const bandY = 0; const bandH = 34;
  const plotY = 44; const plotH = 140;
  const colourY = plotY + plotH + 8; const colourH = 14;
  const axisY = colourY + colourH + 18;
  const total = chart.total_s || 1;
  const x = (t) => L + (t / total) * (W - L - R);
  const y = (pct) => plotY + plotH - (pct / 100) * plotH;

  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": `Timeline, ${fmtSpan(total)}: brightness, colour, volume and reminders per phase` });

  chart.phases.forEach((p, i) => {
    const x0 = x(p.start_s); const x1 = x(p.end_s);
    const g = s("g", { "data-phase": p.id });
    g.append(s("rect", { class: `ch-band${i % 2 ? " alt" : ""}${p.advance === "manual" ? " manual" : ""}`, x: x0, y: bandY, width: Math.max(1, x1 - x0 - 2),
      height: bandH, rx: 6 }));
    g.append(s("title", {}, `${p.title} (${p.advance === "manual" ? "waits for you, planned" : "moves on by itself"}) ` +
      `${fmtSpan(p.end_s - p.start_s)}`));
    const clipId = `clip-${Math.random().toString(36).slice(2)}-${i}`;
    const clip = s("clipPath", { id: clipId }, s("rect", { x: x0, y: bandY, width: Math.max(1, x1 - x0 - 8), height: bandH }));
    g.append(clip);
    g.append(s("text", { class: "ch-band-label", x: x0 + 7, y: bandY + 22, "clip-path": `url(#${clipId})` },
      p.title));
    svg.append(g);
    svg.append(s("line", { class: "ch-grid", x1: x0, x2: x0, y1: plotY, y2: colourY + colourH }));
  });

  for (const pct of [0, 50, 100]) {
    svg.append(s("line", { class: "ch-grid", x1: L, x2: W - R, y1: y(pct), y2: y(pct), "stroke-opacity": pct === 0 ? 1 : 0.5 }));
    svg.append(s("text", { class: "ch-axis", x: L - 6, y: y(pct) + 4, "text-anchor": "end" }, `${pct}`));
  }

  const pts = chart.samples;
  if (pts.length) {
    const bri = pts.map((p) => `${x(p.t_s).toFixed(1)},${y(p.brightness).toFixed(1)}`).join(" ");
    svg.append(s("polygon", { class: "ch-bri-area",
      points: `${x(pts[0].t_s)},${y(0)} ${bri} ${x(pts[pts.length - 1].t_s)},${y(0)}` }));
    svg.append(s("polyline", { class: "ch-bri", points: bri, "data-series": "brightness" }));
    svg.append(s("polyline", { class: "ch-vol", "data-series": "volume",
      points: pts.map((p) => `${x(p.t_s).toFixed(1)},${y(p.volume).toFixed(1)}`).join(" ") }));
    const colours = s("g", { "data-series": "colour" });
    for (let i = 0; i < pts.length - 1; i++) {
      const x0 = x(pts[i].t_s); const x1 = x(pts[i + 1].t_s);
      if (x1 - x0 <= 0) continue;
      colours.append(s("rect", { x: x0.toFixed(1), y: colourY, width: (x1 - x0 + 0.6).toFixed(1), height: colourH,
        fill: pts[i].rgb, "fill-opacity": (0.35 + 0.65 * pts[i].brightness / 100).toFixed(2) }));
    }
    svg.append(colours);
  }

  for (const c of chart.cues) {
    const cx = x(c.t_s);
    const g = s("g", { class: "ch-cue-mark", "data-cue": c.id });
    g.append(s("line", { class: "ch-cue", x1: cx, x2: cx, y1: plotY - 4, y2: plotY + plotH }));
    g.append(s("path", { class: "ch-cue-dot", d: `M${cx - 6},${plotY - 9} L${cx + 6},${plotY - 9} L${cx},${plotY - 1} Z` }));
    g.append(s("title", {}, `${fmtSpan(c.t_s)}: ${c.text}`));
    svg.append(g);
  }

  const step = tickStep(total);
  for (let t = 0; t <= total + 0.001; t += step) {
    const anchor = t === 0 ? "start" : x(t) > W - R - 30 ? "end" : "middle";
    svg.append(s("text", { class: "ch-axis", x: x(t), y: axisY, "text-anchor": anchor }, tickLabel(t)));
  }

  const legend = h("div", { class: "chart-legend" },
    h("span", {}, h("i", { class: "lg-bri" }), "brightness"),
    h("span", {}, h("i", { class: "lg-vol" }), "volume (dashed)"),
    h("span", {}, h("i", { class: "lg-col" }), "light colour"),
    h("span", {}, "▼ reminder"),
    h("span", {}, "dashed outline: a phase that waits for you, drawn at its planned length"),
    h("span", { class: "muted" }, `total ${fmtSpan(total)}`));
  // Reminders in words as well: a tablet has no hover to show a marker's text.
  const cues = chart.cues.length ? h("ol", { class: "chart-cues", "aria-label": "Reminders" },
    ...chart.cues.map((c) => h("li", { "data-cue": c.id }, h("b", {}, `▼ ${tickClock(c.t_s)}`), " ", c.text))) : null;
  box.replaceChildren(...[svg, legend, cues].filter(Boolean));
  box.dataset.total = String(total);
  return svg;
}
