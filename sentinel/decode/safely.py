"""Decoding that never raises: a decoder bug becomes a stored, counted failure, not a lost line."""

from __future__ import annotations

import logging

from sentinel.decode.engine import Decoder, Outcome
from sentinel.events.ecs_reference import ECS_VERSION
from sentinel.events.ids import event_id
from sentinel.events.model import Event, iso
from sentinel.events.paths import display_path
from sentinel.events.records import RawRecord

log = logging.getLogger(__name__)


def decode_safely(decoder: Decoder, rec: RawRecord, now: float) -> tuple[Event, Outcome]:
    """Decode; a decoder bug becomes an unparsed event rather than a crash or a lost line."""
    try:
        return decoder.decode(rec, now)
    except Exception as exc:
        path = display_path(rec.path)[0]
        log.error("decoder %s failed on %s at byte %d: %s", decoder.name, path, rec.offset, type(exc).__name__)
        eid = event_id(rec.source, rec.stream, rec.offset)
        text = rec.data.decode("utf-8", "replace")
        fields = {"ecs.version": ECS_VERSION, "event.id": eid, "event.kind": "pipeline_error", "event.original": text,
                  "message": text, "@timestamp": iso(now), "event.ingested": iso(now), "log.file.path": path,
                  "sentinel.log.offset": rec.offset, "sentinel.source": rec.source,
                  "tags": ["unparsed", "decoder_error"], "sentinel.parse_error": f"decoder error: {type(exc).__name__}"}
        return Event(eid, now, rec.source, fields, False), "unparsed"
