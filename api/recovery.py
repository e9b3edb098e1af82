"""At start-up: continue every session the record says never ended."""

from __future__ import annotations

import logging

from api.deps import Engine

log = logging.getLogger(__name__)


async def recover_sessions(eng: Engine) -> list[str]:
    recovered = []
    for stored in reversed(eng.store.unfinished()):  # newest first
        ctl = eng.service.rooms.get(stored.room)
        if ctl is None:
            log.error("session %s belongs to room '%s', which is not in the config; left as it is",
                      stored.session.id, stored.room)
            continue
        if ctl.runner.running:
            log.error("room %s has two unfinished sessions; continuing only the newest", stored.room)
            continue
        status = await ctl.runner.recover(stored.session)
        log.warning("room %s: recovered session %s in phase '%s' (%d events)", stored.room,
                    stored.session.id, status.phase.id, len(stored.session.events))
        recovered.append(stored.session.id)
    return recovered
