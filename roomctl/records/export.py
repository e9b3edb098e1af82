"""A recorded session as JSON (the whole record) and as CSV (one row per event)."""

from __future__ import annotations

import csv
import io
from typing import Any

from roomctl import units
from roomctl.records.report import describe_event
from roomctl.room import Safety
from roomctl.store import StoredSession
from roomctl.timeline import evaluate, evaluate_many

EXPORT_FORMAT = "roomctl.session/1"
CSV_FIELDS = ("session_time", "wall_time", "kind", "phase", "details", "note")


def session_json(stored: StoredSession) -> dict[str, Any]:
    """The whole record of a session as JSON-ready data."""
    s = stored.session
    return {
        "format": EXPORT_FORMAT,
        "id": s.id,
        "room": stored.room,
        "label": s.label,
        "started_at": stored.started_at,
        "started_at_iso": units.format_iso(stored.started_at),
        "ended_at": stored.ended_at,
        "ended_at_iso": None if stored.ended_at is None else units.format_iso(stored.ended_at),
        "end_reason": stored.end_reason,
        "preset": s.preset.model_dump(mode="json"),
        "events": [e.model_dump(mode="json", exclude_none=True) for e in s.events],
    }


def session_csv(stored: StoredSession) -> str:
    """One row per event: session time (H:MM:SS), wall time (ISO 8601 with offset: what the
    wall clock said, even when it had been stepped), kind, the phase at that moment, details,
    note."""
    preset, events = stored.session.preset, stored.session.events
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    statuses = evaluate_many(preset, events, [e.at for e in events], Safety())
    for i, event in enumerate(events):
        status = statuses[i]
        if i + 1 < len(events) and events[i + 1].at == event.at:
            # Later events at the same instant must not show (rare: a virtual clock).
            status = evaluate(preset, events[: i + 1], event.at, Safety())
        writer.writerow([
            units.format_clock(event.at - stored.started_at),
            units.format_iso(event.wall if event.wall is not None else event.at),  # as the clock said
            event.kind.value,
            _cell(status.phase.display_title),
            _cell(describe_event(event, preset)),
            _cell(event.note or ""),
        ])
    return out.getvalue()


def _cell(text: str) -> str:
    """Keep spreadsheet programs from running text as a formula (notes are free text)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
