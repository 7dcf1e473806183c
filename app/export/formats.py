"""Export formats: plain rows in, JSONL lines out (see docs/formats.md for every field).

Pure: no database. Every line of a format has the same keys with the same JSON types, so
`datasets.load_dataset("json", ...)` infers one schema for the whole file.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.errors import Invalid
from app.export.aggregate import Verdict

MEDIA_TYPE = "application/x-ndjson"
PSEUDONYM_CHARS = 16  # 64 bits of the HMAC: collisions are negligible within a project


class ExportFormat(enum.StrEnum):
    TRL = "trl"
    RAW = "raw"


def parse_format(value: str) -> ExportFormat:
    try:
        return ExportFormat(value)
    except ValueError:
        allowed = ", ".join(f.value for f in ExportFormat)
        raise Invalid(f"unknown export format {value!r}: use one of {allowed}", field="format") from None


@dataclass(frozen=True)
class PairRow:
    """A pairwise item with its texts; its votes are aggregated separately into a Verdict."""

    item_id: int
    prompt_id: int
    messages: Any  # the prompt's stored chat list
    text_a: str
    text_b: str


@dataclass(frozen=True)
class JudgementRow:
    judgement_id: int
    item_id: int
    prompt_id: int
    kind: str
    candidate_a_id: int
    candidate_b_id: int | None
    annotator: str  # pseudonym, never the user id or name
    swapped: bool
    choice: str | None
    strength: int | None
    ratings: dict[str, int]
    rationale: str
    flags: list[str]
    seconds: float | None
    created_at: datetime


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"


def content_text(content: Any) -> str:
    """Message content as one string: a string as is, text parts joined, anything else as JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str)
                                         for p in content):
        return "".join(p["text"] for p in content)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def chat_messages(messages: Any) -> list[dict[str, str]]:
    """Exactly {role, content} strings per message, whatever extra keys the stored prompt carries."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [{"role": str(m.get("role", "user")), "content": content_text(m.get("content"))}
            for m in messages or [] if isinstance(m, dict)]


def trl_line(row: PairRow, verdict: Verdict) -> str:
    """TRL's explicit-prompt conversational preference row, plus provenance."""
    chosen, rejected = (row.text_a, row.text_b) if verdict.winner == "a" else (row.text_b, row.text_a)
    return _dumps({
        "prompt": chat_messages(row.messages),
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "margin": round(float(verdict.margin), 4),
        "item_id": row.item_id,
        "prompt_id": row.prompt_id,
        "n_votes": verdict.n_votes,
        "agreement": round(float(verdict.agreement), 4),
    })


def raw_line(row: JudgementRow) -> str:
    """One judgement as stored: the choice in canonical order, and the side the annotator saw."""
    left = row.candidate_b_id if row.swapped and row.candidate_b_id is not None else row.candidate_a_id
    return _dumps({
        "judgement_id": row.judgement_id,
        "item_id": row.item_id,
        "prompt_id": row.prompt_id,
        "kind": row.kind,
        "candidate_a_id": row.candidate_a_id,
        "candidate_b_id": row.candidate_b_id,
        "annotator": row.annotator,
        "swapped": row.swapped,
        "left_candidate_id": left,
        "choice": row.choice,
        "strength": row.strength,
        "ratings": dict(sorted(row.ratings.items())),
        "rationale": row.rationale,
        "flags": [str(flag) for flag in row.flags],
        "seconds": None if row.seconds is None else float(row.seconds),
        "created_at": row.created_at.isoformat(),
    })


def pseudonym(*, secret: str, project_id: int, user_id: int) -> str:
    """A stable annotator id for one project: HMAC-SHA256 keyed by the server secret.

    The same user gets different ids in different projects, so exports cannot be joined on it.
    """
    message = f"prefstudio-annotator:{project_id}:{user_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def download_name(*, project_id: int, fmt: ExportFormat, now: datetime) -> str:
    """A filename safe in any Content-Disposition header: ASCII letters, digits, '-' and '.' only."""
    return f"project-{int(project_id)}-{fmt.value}-{now.strftime('%Y%m%dT%H%M')}.jsonl"
