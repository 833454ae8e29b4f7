"""Recent ingestion errors: the call-data items that were refused, kept for the operators.

The dialer gets every reason in its answer and the import page shows its bad rows; this short
history is what the operator console shows afterwards. It is bounded twice: at most
`PER_BATCH_KEPT` refusals of one request or file, and only the latest `KEPT` rows overall.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from app.extensions import db
from app.models import IngestionError

KEPT = 500
PER_BATCH_KEPT = 50


# A refused item's text is kept as sent, but for what the database cannot store: a NUL (which
# PostgreSQL refuses in text) and an unpaired surrogate (not UTF-8) become U+FFFD.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with every character the database cannot store replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


@dataclass(frozen=True)
class Refusal:
    """One refused item: where it was in its batch, its id there, and why."""

    position: int
    item_id: str
    message: str


def record_refusals(
    source: str, batch: str, refusals: Iterable[Refusal], api_key_prefix: str = ""
) -> int:
    """Add the first `PER_BATCH_KEPT` refusals and drop rows beyond the latest `KEPT`
    (flushed, not committed); returns how many were added."""
    rows = [
        {
            "source": source,
            "batch": storable(batch[:200]),
            "position": refusal.position,
            "item_id": storable(refusal.item_id[:100]),
            "api_key_prefix": api_key_prefix,
            "message": storable(refusal.message),
        }
        for refusal, _ in zip(refusals, range(PER_BATCH_KEPT), strict=False)
    ]
    if not rows:
        return 0
    db.session.execute(sa.insert(IngestionError), rows)
    newest = db.session.scalar(sa.select(sa.func.max(IngestionError.id)))
    if newest is not None and newest > KEPT:
        db.session.execute(sa.delete(IngestionError).where(IngestionError.id <= newest - KEPT))
    return len(rows)


def recent_refusals(limit: int = 50) -> list[IngestionError]:
    """The latest refused items, newest first."""
    return list(
        db.session.scalars(
            sa.select(IngestionError).order_by(IngestionError.id.desc()).limit(limit)
        )
    )
