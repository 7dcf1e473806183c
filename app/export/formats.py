"""Export formats: plain rows in, JSONL lines out (see docs/formats.md for every field).

Pure: no database. Every line of a format has the same keys with the same JSON types, so
`datasets.load_dataset("json", ...)` infers one schema for the whole file.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import re
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


class StoredJson:
    """A JSON value as the database's text (a jsonb column cast to text), decoded only when a line needs it.

    Postgres writes jsonb text with json.dumps's separators and escapes (", ", ": ", the same backslash
    escapes, other characters as they are, like ensure_ascii=False), so text already in the exported shape
    goes into a line as it is (see chat_json).
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"StoredJson({self.text!r})"

    def decoded(self) -> Any:
        return json.loads(self.text)


_JSON_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_CHAT_MESSAGE = rf'\{{"role": {_JSON_STRING}, "content": {_JSON_STRING}\}}'
# A list of exactly {"role": string, "content": string} objects, as jsonb writes it.
CHAT_JSON = re.compile(rf"\[(?:{_CHAT_MESSAGE}(?:, {_CHAT_MESSAGE})*)?\]")

_string = json.encoder.encode_basestring  # a str exactly as json.dumps(..., ensure_ascii=False) writes it


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), DECIMALS)


def _rounded(value: float | None) -> str:
    """json.dumps(_round(value), allow_nan=False)."""
    if value is None:
        return "null"
    rounded = round(float(value), DECIMALS)
    if not math.isfinite(rounded):
        raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    return float.__repr__(rounded)


def _integer(value: int | None) -> str:
    """An id or a count (int or None) as json.dumps writes it; a numpy integer is a TypeError, as there."""
    return "null" if value is None else int.__repr__(value)


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
    if isinstance(messages, StoredJson):
        messages = messages.decoded()
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [{"role": str(m.get("role", "user")), "content": content_text(m.get("content"))}
            for m in messages or [] if isinstance(m, dict)]


def prompt_text(messages: Any) -> str:
    """The standard (plain string) prompt: "Role: content" paragraphs ending in "Assistant: ", so that
    prompt + response (what TRL trains on) reads as a transcript."""
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in chat_messages(messages)]
    return "\n\n".join([*turns, "Assistant: "])


def chat_json(messages: Any) -> str:
    """json.dumps(chat_messages(messages), ensure_ascii=False): the stored text itself, not decoded and
    encoded again, when it is already a list of exactly {role, content} strings (jsonb puts "role", the
    shorter key, first)."""
    if isinstance(messages, StoredJson):
        if CHAT_JSON.fullmatch(messages.text):
            return messages.text
        messages = messages.decoded()
    return json.dumps(chat_messages(messages), ensure_ascii=False)


def _prompt(messages: Any, style: Style) -> Any:
    return chat_messages(messages) if style is Style.CONVERSATIONAL else prompt_text(messages)


def _response(text: str, style: Style) -> Any:
    return [{"role": "assistant", "content": text}] if style is Style.CONVERSATIONAL else text


# Pair lines are written piece by piece, not through a dict and json.dumps: each value encoded exactly as
# json.dumps(..., ensure_ascii=False, allow_nan=False) would (tests/export/test_formats.py compares them),
# and the prompt's stored JSON spliced in as it is (chat_json).


def _provenance(pref: Preference) -> str:
    """`, "item_id": …, "source": …}` and the newline: the keys after the pair, as in the docs."""
    return (f', "item_id": {_integer(pref.item_id)}, "prompt_id": {_integer(pref.prompt_id)}, '
            f'"chosen_id": {_integer(pref.chosen_id)}, "rejected_id": {_integer(pref.rejected_id)}, '
            f'"n_votes": {_integer(pref.n_votes)}, "agreement": {_rounded(pref.agreement)}, '
            f'"confidence": {_rounded(pref.confidence)}, "source": {_string(pref.source)}}}\n')


def _margin(pref: Preference, shape: Shape) -> str:
    return f', "margin": {_rounded(float(pref.margin))}' if shape.margin else ""


def _reply(text: str) -> str:
    """json.dumps([{"role": "assistant", "content": text}])."""
    return f'[{{"role": "assistant", "content": {_string(text)}}}]'


def _prompt_json(messages: Any, style: Style) -> str:
    return chat_json(messages) if style is Style.CONVERSATIONAL else _string(prompt_text(messages))


def _response_json(text: str, style: Style) -> str:
    return _reply(text) if style is Style.CONVERSATIONAL else _string(text)


def trl_line(pref: Preference, shape: Shape = Shape()) -> str:
    """TRL's explicit-prompt preference row (conversational or standard), plus provenance."""
    return (f'{{"prompt": {_prompt_json(pref.messages, shape.style)}, '
            f'"chosen": {_response_json(pref.chosen, shape.style)}, '
            f'"rejected": {_response_json(pref.rejected, shape.style)}'
            f'{_margin(pref, shape)}{_provenance(pref)}')


def trl_implicit_line(pref: Preference, shape: Shape = Shape()) -> str:
    """TRL's implicit-prompt row: `chosen` and `rejected` are whole conversations ending in the response."""
    chat = chat_json(pref.messages)
    turns = "[" if chat == "[]" else chat[:-1] + ", "  # the prompt's list, open for one more turn
    return (f'{{"chosen": {turns}{_reply(pref.chosen)[1:]}, "rejected": {turns}{_reply(pref.rejected)[1:]}'
            f'{_margin(pref, shape)}{_provenance(pref)}')


def kto_lines(pref: Preference, shape: Shape = Shape()) -> str:
    """TRL's unpaired preference rows: the chosen response labelled true, then the rejected one false."""
    prompt = _prompt_json(pref.messages, shape.style)
    common = (f'"n_votes": {_integer(pref.n_votes)}, "agreement": {_rounded(pref.agreement)}, '
              f'"confidence": {_rounded(pref.confidence)}, "source": {_string(pref.source)}}}\n')
    where = f'"item_id": {_integer(pref.item_id)}, "prompt_id": {_integer(pref.prompt_id)}'
    return "".join(
        f'{{"prompt": {prompt}, "completion": {_response_json(text, shape.style)}, "label": {label}, '
        f'{where}, "candidate_id": {_integer(candidate_id)}, {common}'
        for candidate_id, text, label in ((pref.chosen_id, pref.chosen, "true"),
                                          (pref.rejected_id, pref.rejected, "false")))


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
    opening = hh_transcript(pref.messages) + "\n\nAssistant: "
    return (f'{{"chosen": {_string(opening + pref.chosen)}, "rejected": {_string(opening + pref.rejected)}'
            f'{_margin(pref, shape)}{_provenance(pref)}')


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
