"""One import row, checked field by field (pure): a PromptRow, or every problem the row has."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 20_000
MAX_CANDIDATES = 16
MAX_EXTERNAL_ID = 200
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class RowError:
    """A problem: `row` is the line (JSONL) or the record, header = row 1 (CSV); None: the whole file."""

    row: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class PromptRow:
    row: int
    messages: list[dict[str, str]]
    candidates: list[str] = field(default_factory=list)
    external_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class _Checker:
    def __init__(self, row: int) -> None:
        self.row = row
        self.errors: list[RowError] = []

    def fail(self, name: str, message: str) -> None:
        self.errors.append(RowError(self.row, name, message))

    def text(self, value: Any, name: str) -> str | None:
        if value is None:
            self.fail(name, "is missing")
        elif not isinstance(value, str):
            self.fail(name, f"must be a string, not {type(value).__name__}")
        elif not value.strip():
            self.fail(name, "is empty")
        elif len(value) > MAX_TEXT:
            self.fail(name, f"is {len(value):,} characters long; the limit is {MAX_TEXT:,}")
        else:
            return value
        return None

    def messages(self, value: Any) -> list[dict[str, str]]:
        if not isinstance(value, list) or not value:
            self.fail("messages", "must be a non-empty list of {role, content} turns")
            return []
        turns = []
        for index, turn in enumerate(value):
            name = f"messages[{index}]"
            if not isinstance(turn, dict):
                self.fail(name, "must be an object with role and content")
                continue
            role = turn.get("role")
            if role not in ROLES:
                self.fail(f"{name}.role", f"must be system, user or assistant, not {role!r}")
            elif role == "system" and index > 0:
                self.fail(f"{name}.role", "a system turn may only come first")
            content = self.text(turn.get("content"), f"{name}.content")
            turns.append({"role": str(role), "content": content or ""})
        if turns and turns[-1]["role"] != "user":
            self.fail("messages", "the conversation must end with a user turn")
        return turns

    def conversation(self, fields: dict[str, Any]) -> list[dict[str, str]]:
        prompt, messages, system = fields.get("prompt"), fields.get("messages"), fields.get("system")
        if prompt is not None and messages is not None:
            self.fail("prompt", "give either prompt or messages, not both")
            return []
        if prompt is None and messages is None:
            self.fail("prompt", "is missing: give prompt (a string) or messages (a chat list)")
            return []
        turns = self.messages(messages) if messages is not None else [
            {"role": "user", "content": self.text(prompt, "prompt") or ""}]
        if system is not None:
            text = self.text(system, "system")
            if turns and turns[0]["role"] == "system":
                self.fail("system", "the messages already start with a system turn")
            turns = [{"role": "system", "content": text or ""}, *turns]
        return turns

    def candidates(self, value: Any) -> list[str]:
        """`value`: None, a list of (field name, text) pairs, or anything else (an error)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail("candidates", "must be a list of strings")
            return []
        if len(value) > MAX_CANDIDATES:
            self.fail("candidates", f"has {len(value)} candidates; the limit is {MAX_CANDIDATES}")
        return [self.text(text, name) or "" for name, text in value]

    def external_id(self, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail("external_id", "must be a string or an integer")
            return None
        text = str(value).strip()
        if not text:
            self.fail("external_id", "is empty")
        elif len(text) > MAX_EXTERNAL_ID:
            self.fail("external_id", f"is longer than {MAX_EXTERNAL_ID} characters")
        return text or None

    def metadata(self, value: Any, extras: dict[str, Any]) -> dict[str, Any]:
        if value is not None and not isinstance(value, dict):
            self.fail("metadata", "must be an object")
            return {}
        meta = {**extras, **(value or {})}
        if len(json.dumps(meta, ensure_ascii=False)) > MAX_TEXT:
            self.fail("metadata", f"is longer than {MAX_TEXT:,} characters as JSON")
        return meta


def check_row(row: int, fields: dict[str, Any], extras: dict[str, Any]) -> PromptRow | list[RowError]:
    """`fields`: the known keys (prompt, messages, system, candidates as (name, text) pairs, external_id,
    metadata), None or absent when not given; `extras`: other columns or keys, kept as metadata."""
    checker = _Checker(row)
    messages = checker.conversation(fields)
    candidates = checker.candidates(fields.get("candidates"))
    external_id = checker.external_id(fields.get("external_id"))
    meta = checker.metadata(fields.get("metadata"), extras)
    if checker.errors:
        return checker.errors
    return PromptRow(row=row, messages=messages, candidates=candidates, external_id=external_id, meta=meta)
