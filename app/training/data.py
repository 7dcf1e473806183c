"""Preference pairs from a TRL JSONL export: read, validate, render as text, split by prompt.

Pure Python: no torch, no transformers, so the web process may import it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


class ExportFormatError(ValueError):
    """A row of the export cannot be read as a preference pair; names the line and the field."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None) -> None:
        where = f"line {line}" if line is not None else "export"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
        self.line = line
        self.field = field


@dataclass(frozen=True)
class PreferencePair:
    """One comparison as plain text: the encoder reads (prompt, chosen) and (prompt, rejected)."""

    prompt: str
    chosen: str
    rejected: str
    margin: float | None = None


@dataclass(frozen=True)
class Split:
    train: list[PreferencePair]
    eval: list[PreferencePair]

    @property
    def eval_prompts(self) -> int:
        return len({pair.prompt for pair in self.eval})

    @property
    def train_prompts(self) -> int:
        return len({pair.prompt for pair in self.train})


def read_pairs(path: Path) -> list[PreferencePair]:
    """Every row of the export file; raises ExportFormatError on the first bad row or an empty file."""
    with path.open(encoding="utf-8") as lines:
        pairs = list(parse_lines(lines))
    if not pairs:
        raise ExportFormatError(f"{path} holds no preference pairs")
    return pairs


def parse_lines(lines: Iterator[str] | Sequence[str]) -> Iterator[PreferencePair]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ExportFormatError(f"not valid JSON ({error.msg})", line=number) from error
        yield parse_row(row, line=number)


def parse_row(row: Any, *, line: int) -> PreferencePair:
    """A TRL row: explicit prompt (strings or messages) or implicit prompt (full conversations)."""
    if not isinstance(row, dict):
        raise ExportFormatError("expected a JSON object", line=line)
    for key in ("chosen", "rejected"):
        if key not in row:
            raise ExportFormatError("missing", line=line, field=key)
    conversational = isinstance(row["chosen"], list)
    for key in ("prompt", "chosen", "rejected"):
        if key in row:
            _check_part(row[key], conversational=conversational, line=line, field=key)
    margin = _margin(row.get("margin"), line=line)
    if "prompt" in row:
        prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    else:
        prompt, chosen, rejected = split_implicit_prompt(row["chosen"], row["rejected"])
    return PreferencePair(render(prompt), render(chosen), render(rejected), margin)


def _check_part(value: Any, *, conversational: bool, line: int, field: str) -> None:
    if not conversational:
        if not isinstance(value, str):
            raise ExportFormatError("expected a string, like 'chosen'", line=line, field=field)
        return
    if not isinstance(value, list):
        raise ExportFormatError("expected a list of messages, like 'chosen'", line=line, field=field)
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ExportFormatError(f"message {index} needs a string 'role'", line=line, field=field)
        if _content_text(message.get("content")) is None:
            raise ExportFormatError(f"message {index} needs text 'content'", line=line, field=field)


def _margin(value: Any, *, line: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ExportFormatError("expected a finite number or null", line=line, field="margin")
    return float(value)


def _content_text(content: Any) -> str | None:
    """Message content as text: a string, or a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and isinstance(part.get("text"), str) for part in content
    ):
        return "".join(part["text"] for part in content)
    return None


def split_implicit_prompt(chosen: Any, rejected: Any) -> tuple[Any, Any, Any]:
    """(prompt, chosen, rejected) from two full conversations: the prompt is their shared beginning."""
    if isinstance(chosen, list):
        shared = 0
        while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
            shared += 1
        return chosen[:shared], chosen[shared:], rejected[shared:]
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    cut = max(chosen.rfind("\n", 0, shared), chosen.rfind(" ", 0, shared)) + 1  # keep words whole
    return chosen[:cut], chosen[cut:], rejected[cut:]


def render(part: str | list[dict[str, Any]]) -> str:
    """A string as is; messages as "User: ...\\nAssistant: ..." lines for an encoder."""
    if isinstance(part, str):
        return part
    lines = []
    for message in part:
        role = str(message["role"])
        label = ROLE_LABELS.get(role, role.capitalize())
        lines.append(f"{label}: {_content_text(message['content'])}")
    return "\n".join(lines)


def split_by_prompt(pairs: Sequence[PreferencePair], eval_fraction: float, seed: int) -> Split:
    """Held-out pairs whose prompts never appear in training; the same seed gives the same split.

    About eval_fraction of the distinct prompts go to eval (at least one when there are two or more
    prompts and the fraction is positive; never all of them).
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    prompts = sorted({pair.prompt for pair in pairs})
    random.Random(seed).shuffle(prompts)
    n_eval = round(eval_fraction * len(prompts))
    if eval_fraction > 0 and len(prompts) >= 2:
        n_eval = min(max(n_eval, 1), len(prompts) - 1)
    held_out = set(prompts[:n_eval])
    return Split(
        train=[pair for pair in pairs if pair.prompt not in held_out],
        eval=[pair for pair in pairs if pair.prompt in held_out],
    )
