"""Export formats: plain rows in, JSONL lines out (see docs/formats.md for every field).

Pure: no database. Every line of a format has the same keys with the same JSON types, so
`datasets.load_dataset("json", ...)` infers one schema for the whole file.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.errors import Invalid

MEDIA_TYPE = "application/x-ndjson"
PSEUDONYM_CHARS = 16  # 64 bits of the HMAC: collisions are negligible within a project
DECIMALS = 4


class ExportFormat(enum.StrEnum):
    TRL = "trl"
    TRL_IMPLICIT = "trl-implicit"
    KTO = "kto"
    HH = "hh"
    RATINGS = "ratings"
    RAW = "raw"


PAIR_FORMATS = frozenset({ExportFormat.TRL, ExportFormat.TRL_IMPLICIT, ExportFormat.KTO, ExportFormat.HH})


class Style(enum.StrEnum):
    """How `trl`, `kto` and `ratings` write a prompt and a response: chat messages or plain strings."""

    CONVERSATIONAL = "conversational"
    STANDARD = "standard"


def parse_format(value: str) -> ExportFormat:
    try:
        return ExportFormat(value)
    except ValueError:
        allowed = ", ".join(f.value for f in ExportFormat)
        raise Invalid(f"unknown export format {value!r}: use one of {allowed}", field="format") from None


@dataclass(frozen=True)
class Shape:
    style: Style = Style.CONVERSATIONAL
    margin: bool = True  # write the `margin` key (trl, trl-implicit, hh)


@dataclass(frozen=True)
class Preference:
    """One exported pair: chosen ≻ rejected on a prompt, with how the aggregation reached it."""

    item_id: int | None  # None: a pair Bradley-Terry implies that no item compared directly
    prompt_id: int
    messages: Any  # the prompt's stored chat list
    chosen_id: int
    chosen: str
    rejected_id: int
    rejected: str
    n_votes: int
    agreement: float | None
    confidence: float
    margin: float
    source: str = "votes"  # "edit": an annotator's rewrite (chosen) of a response (rejected)


@dataclass(frozen=True)
class RatedResponse:
    """One response with the Likert ratings of every (kept) annotator: (pseudonym, {attribute: value})."""

    candidate_id: int
    item_id: int
    prompt_id: int
    messages: Any
    response: str
    model: str
    attributes: Sequence[str]
    ratings: Sequence[tuple[str, dict[str, int]]]


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
    guideline_version: int | None
    created_at: datetime


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), DECIMALS)


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


def prompt_text(messages: Any) -> str:
    """The standard (plain string) prompt: "Role: content" paragraphs ending in "Assistant: ", so that
    prompt + response (what TRL trains on) reads as a transcript."""
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in chat_messages(messages)]
    return "\n\n".join([*turns, "Assistant: "])


def _prompt(messages: Any, style: Style) -> Any:
    return chat_messages(messages) if style is Style.CONVERSATIONAL else prompt_text(messages)


def _response(text: str, style: Style) -> Any:
    return [{"role": "assistant", "content": text}] if style is Style.CONVERSATIONAL else text


def _provenance(pref: Preference) -> dict[str, Any]:
    return {"item_id": pref.item_id, "prompt_id": pref.prompt_id, "chosen_id": pref.chosen_id,
            "rejected_id": pref.rejected_id, "n_votes": pref.n_votes, "agreement": _round(pref.agreement),
            "confidence": _round(pref.confidence), "source": pref.source}


def _margin(pref: Preference, shape: Shape) -> dict[str, float]:
    return {"margin": round(float(pref.margin), DECIMALS)} if shape.margin else {}


def trl_line(pref: Preference, shape: Shape = Shape()) -> str:
    """TRL's explicit-prompt preference row (conversational or standard), plus provenance."""
    return _dumps({"prompt": _prompt(pref.messages, shape.style),
                   "chosen": _response(pref.chosen, shape.style),
                   "rejected": _response(pref.rejected, shape.style),
                   **_margin(pref, shape), **_provenance(pref)})


def trl_implicit_line(pref: Preference, shape: Shape = Shape()) -> str:
    """TRL's implicit-prompt row: `chosen` and `rejected` are whole conversations ending in the response."""
    chat = chat_messages(pref.messages)
    return _dumps({"chosen": [*chat, {"role": "assistant", "content": pref.chosen}],
                   "rejected": [*chat, {"role": "assistant", "content": pref.rejected}],
                   **_margin(pref, shape), **_provenance(pref)})


def kto_lines(pref: Preference, shape: Shape = Shape()) -> str:
    """TRL's unpaired preference rows: the chosen response labelled true, then the rejected one false."""
    lines = []
    for candidate_id, text, label in ((pref.chosen_id, pref.chosen, True),
                                      (pref.rejected_id, pref.rejected, False)):
        lines.append(_dumps({"prompt": _prompt(pref.messages, shape.style),
                             "completion": _response(text, shape.style), "label": label,
                             "item_id": pref.item_id, "prompt_id": pref.prompt_id,
                             "candidate_id": candidate_id, "n_votes": pref.n_votes,
                             "agreement": _round(pref.agreement), "confidence": _round(pref.confidence),
                             "source": pref.source}))
    return "".join(lines)


def hh_transcript(messages: Any) -> str:
    """Anthropic HH-RLHF style: "\\n\\nHuman: …\\n\\nAssistant: …" turns; a system turn opens the first
    Human turn, separated from it by a blank line."""
    parts: list[str] = []
    pending_system: list[str] = []
    for message in chat_messages(messages):
        role, content = message["role"], message["content"]
        if role == "system":
            pending_system.append(content)
        elif role == "assistant":
            parts.append(f"\n\nAssistant: {content}")
        else:
            parts.append("\n\nHuman: " + "\n\n".join([*pending_system, content]))
            pending_system = []
    return "".join(parts)


def hh_line(pref: Preference, shape: Shape = Shape()) -> str:
    transcript = hh_transcript(pref.messages)
    return _dumps({"chosen": f"{transcript}\n\nAssistant: {pref.chosen}",
                   "rejected": f"{transcript}\n\nAssistant: {pref.rejected}",
                   **_margin(pref, shape), **_provenance(pref)})


PAIR_WRITERS = {ExportFormat.TRL: trl_line, ExportFormat.TRL_IMPLICIT: trl_implicit_line,
                ExportFormat.KTO: kto_lines, ExportFormat.HH: hh_line}


def ratings_line(row: RatedResponse, shape: Shape = Shape()) -> str:
    """One response, the mean of each attribute over its annotators, and each annotator's values."""
    means: dict[str, float | None] = {}
    for attribute in row.attributes:
        values = [given[attribute] for _, given in row.ratings if attribute in given]
        means[attribute] = _round(sum(values) / len(values)) if values else None
    return _dumps({
        "prompt": _prompt(row.messages, shape.style), "response": _response(row.response, shape.style),
        "candidate_id": row.candidate_id, "item_id": row.item_id, "prompt_id": row.prompt_id,
        "model": row.model, "n_annotators": len(row.ratings), "mean": means,
        "ratings": [{"annotator": who, "values": {a: given.get(a) for a in row.attributes}}
                    for who, given in row.ratings],
    })


def raw_line(row: JudgementRow) -> str:
    """One judgement as stored: the choice in canonical order, and the side the annotator saw."""
    left = row.candidate_b_id if row.swapped and row.candidate_b_id is not None else row.candidate_a_id
    return _dumps({
        "judgement_id": row.judgement_id, "item_id": row.item_id, "prompt_id": row.prompt_id,
        "kind": row.kind, "candidate_a_id": row.candidate_a_id, "candidate_b_id": row.candidate_b_id,
        "annotator": row.annotator, "swapped": row.swapped, "left_candidate_id": left,
        "choice": row.choice, "strength": row.strength, "ratings": dict(sorted(row.ratings.items())),
        "rationale": row.rationale, "flags": [str(flag) for flag in row.flags],
        "seconds": None if row.seconds is None else float(row.seconds),
        "guideline_version": row.guideline_version, "created_at": row.created_at.isoformat(),
    })


def pseudonym(*, secret: str, project_id: int, user_id: int) -> str:
    """A stable annotator id for one project: HMAC-SHA256 keyed by the server secret.

    The same user gets different ids in different projects, so exports cannot be joined on it.
    """
    message = f"prefstudio-annotator:{project_id}:{user_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def download_name(*, project_id: int, fmt: ExportFormat, now: datetime, suffix: str = "jsonl") -> str:
    """A filename safe in any Content-Disposition header: ASCII letters, digits, '-' and '.' only."""
    return f"project-{int(project_id)}-{fmt.value}-{now.strftime('%Y%m%dT%H%M')}.{suffix}"
