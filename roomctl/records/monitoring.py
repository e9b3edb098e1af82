"""The monitoring record of a session: date, the clinic's client reference (the session's
label), each dose, each vitals check with its values, skipped checks with their reasons, the
observation window, the reason for an early end, and the clinicians present. A record to copy
into the clinic's own forms (e.g. a REMS patient monitoring form), not a submission; roomctl
records, it never advises.

As a printable page (HTML with print CSS, self-contained, no script) and as CSV.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import time
from dataclasses import dataclass
from html import escape

from roomctl.events import VITALS_UNITS, EventKind
from roomctl.records.report import cue_text
from roomctl.store import StoredSession
from roomctl.timeline import DoseState, Status, VitalsState, evaluate

LABELS = {"systolic": "Systolic", "diastolic": "Diastolic", "heart_rate": "Heart rate", "spo2": "SpO2"}


@dataclass(frozen=True)
class MonitoringRecord:
    stored: StoredSession
    status: Status  # the session at its end (or now, while it runs)
    clinicians: tuple[str, ...]
    skipped: tuple[tuple[float, str, str], ...]  # (when, reminder, reason)
    ended_early_reason: str | None

    @property
    def doses(self) -> tuple[DoseState, ...]:
        return self.status.doses

    @property
    def vitals(self) -> tuple[VitalsState, ...]:
        return self.status.vitals


def monitoring_record(stored: StoredSession, now: float) -> MonitoringRecord:
    session = stored.session
    end = stored.ended_at if stored.ended_at is not None else now
    status = evaluate(session.preset, session.events, max(end, session.events[-1].at))
    names = dict.fromkeys(e.by.name or e.by.id for e in session.events if e.by is not None)
    skipped = tuple((c.acknowledged_at or c.due_at, c.text, c.note or "")
                    for c in status.cues_acknowledged if c.skipped)
    early = None
    ended = next((e for e in session.events if e.kind is EventKind.ENDED), None)
    if ended is not None and status.observe_until is not None and ended.at < status.observe_until:
        early = ended.reason
    return MonitoringRecord(stored, status, tuple(names), skipped, early)


def _clock(t: float | None) -> str:
    return "" if t is None else time.strftime("%H:%M", time.localtime(t))


def _value(key: str, value: int, record: MonitoringRecord) -> str:
    monitoring = record.stored.session.preset.monitoring
    obs = next((o for o in monitoring.observations if o.id == key), None) if monitoring else None
    if obs is not None and obs.kind == "yes_no":
        return "yes" if value else "no"
    return f"{value} {VITALS_UNITS.get(key, '')}".strip()


def _label(key: str, record: MonitoringRecord) -> str:
    monitoring = record.stored.session.preset.monitoring
    obs = next((o for o in monitoring.observations if o.id == key), None) if monitoring else None
    return obs.label if obs is not None else LABELS.get(key, key)


def monitoring_csv(record: MonitoringRecord) -> str:
    """One row per recorded fact: date, time, what, details, by."""
    s = record.stored
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["date", "time", "record", "details", "by"])
    day = time.strftime("%Y-%m-%d", time.localtime(s.started_at))
    w.writerow([day, _clock(s.started_at), "session", f"{s.session.preset.name}; client reference: "
                f"{s.session.label or '-'}; room {s.room}", ""])
    rows: list[tuple[float, str, str, str]] = []
    for d in record.doses:
        rows.append((d.given_at, f"dose {d.n}", "; ".join(x for x in (d.route, d.amount) if x), d.by or ""))
    for v in record.vitals:
        values = "; ".join(f"{_label(k, record)} {_value(k, n, record)}"
                           + (" (outside the clinic's range)" if k in v.flagged else "")
                           for k, n in v.values.items())
        what = cue_text(s.session.preset, v.cue) if v.cue else "at any time"
        rows.append((v.at, "vitals", f"{values}; {what}" + (f"; note: {v.note}" if v.note else ""), v.by or ""))
    for when, reminder, reason in record.skipped:
        rows.append((when, "check skipped", f"{reminder}; reason: {reason}", ""))
    for t, what, details, by in sorted(rows):
        w.writerow([time.strftime("%Y-%m-%d", time.localtime(t)), _clock(t), what, _cell(details), _cell(by)])
    if record.status.observe_until is not None:
        w.writerow([day, _clock(record.status.observe_until), "observation until", "", ""])
    if s.ended_at is not None:
        how = s.end_reason or ""
        if record.ended_early_reason:
            how = f"before the end of observation: {record.ended_early_reason}"
        w.writerow([time.strftime("%Y-%m-%d", time.localtime(s.ended_at)), _clock(s.ended_at), "session ended",
                    _cell(how), ""])
    w.writerow([day, "", "clinicians", _cell(", ".join(record.clinicians)), ""])
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1c1c1c; background: #fff; margin: 24px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 20px 0 6px; }
p.sub { margin: 0 0 12px; color: #444; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eee; font-weight: 600; }
.flag { font-weight: 700; text-decoration: underline; }
.note { color: #444; }
footer { margin-top: 24px; font-size: 12px; color: #555; }
@page { size: A4; margin: 16mm; }
@media print { body { margin: 0; } }
@media screen {  /* opened on a tablet in a dark room: dark, low glare; printed: black on white */
  body { color: #d6d3cc; background: #101216; }
  p.sub, .note, footer { color: #9a978f; }
  th, td { border-color: #3a3d44; } th { background: #1b1e24; }
  .flag { color: #e8b463; }
}
"""


# The page carries its style inline (saved or printed, it stays whole); served, it is allowed by
# its hash and nothing else runs or loads: no script at all.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (f"default-src 'none'; style-src '{STYLE_HASH}'; img-src 'self' data:; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def monitoring_html(record: MonitoringRecord) -> str:
    s = record.stored
    preset = s.session.preset
    day = time.strftime("%Y-%m-%d", time.localtime(s.started_at))
    h = escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Monitoring record {h(day)}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>Monitoring record</h1><p class='sub'>{h(day)} · {h(preset.name)} · room {h(s.room)} · "
             f"client reference: {h(s.session.label or '—')}</p>",
             "<table><tr><th>Session began</th><td>" + h(_clock(s.started_at)) + "</td>"
             "<th>Ended</th><td>" + h(_clock(s.ended_at) or "still running") + "</td></tr>"
             "<tr><th>Observation until</th><td>" + h(_clock(record.status.observe_until) or "—") + "</td>"
             "<th>Clinicians</th><td>" + h(", ".join(record.clinicians) or "—") + "</td></tr></table>"]
    if record.ended_early_reason:
        parts.append(f"<p><b>Ended before the end of observation:</b> {h(record.ended_early_reason)}</p>")
    parts.append("<h2>Doses</h2>")
    if record.doses:
        parts.append("<table><tr><th>#</th><th>Given</th><th>Route</th><th>Amount</th><th>By</th></tr>")
        for d in record.doses:
            parts.append(f"<tr><td>{d.n}</td><td>{h(_clock(d.given_at))}</td><td>{h(d.route or '')}</td>"
                         f"<td>{h(d.amount or '')}</td><td>{h(d.by or '')}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No dose recorded.</p>")
    parts.append("<h2>Vitals and observations</h2>")
    if record.vitals:
        keys = list(dict.fromkeys(k for v in record.vitals for k in v.values))
        parts.append("<table><tr><th>Time</th>" + "".join(f"<th>{h(_label(k, record))}</th>" for k in keys)
                     + "<th>Check</th><th>By</th></tr>")
        for v in record.vitals:
            cells = "".join(
                f"<td class='flag'>{h(_value(k, v.values[k], record))} ⚑</td>" if k in v.flagged
                else f"<td>{h(_value(k, v.values[k], record)) if k in v.values else ''}</td>" for k in keys)
            what = cue_text(preset, v.cue) if v.cue else "at any time"
            note = f"<br><span class='note'>{h(v.note)}</span>" if v.note else ""
            parts.append(f"<tr><td>{h(_clock(v.at))}</td>{cells}<td>{h(what)}{note}</td><td>{h(v.by or '')}</td></tr>")
        parts.append("</table><p class='note'>⚑ outside the clinic's configured range.</p>")
    else:
        parts.append("<p>No vitals recorded.</p>")
    if record.skipped:
        parts.append("<h2>Checks skipped</h2><table><tr><th>Time</th><th>Check</th><th>Reason</th></tr>")
        for when, reminder, reason in record.skipped:
            parts.append(f"<tr><td>{h(_clock(when))}</td><td>{h(reminder)}</td><td>{h(reason)}</td></tr>")
        parts.append("</table>")
    parts.append("<footer>Recorded by roomctl from the session's events. A record to copy into the "
                 "clinic's forms; it is not a submission and gives no medical advice.</footer></body></html>")
    return "".join(parts)
