"""Line diffs of two texts (pure, difflib): unified hunks, or side-by-side rows. Plain data out; templates
escape the text and style rows by `kind`."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

LineKind = Literal["context", "added", "removed", "hunk"]
RowKind = Literal["equal", "changed", "added", "removed"]
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class Line:
    """A line of a unified diff: `old`/`new` are 1-based line numbers (None where the line is absent)."""

    kind: LineKind
    text: str
    old: int | None = None
    new: int | None = None


@dataclass(frozen=True)
class Row:
    """A side-by-side row: the old line on the left, the new on the right (None: no line on that side)."""

    kind: RowKind
    left: str | None
    right: str | None
    left_no: int | None
    right_no: int | None


@dataclass(frozen=True)
class Stats:
    added: int
    removed: int

    @property
    def unchanged(self) -> bool:
        return self.added == 0 and self.removed == 0


def _lines(text: str) -> list[str]:
    """Lines without their ends; a final newline ends the last line rather than starting an empty one."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def unified(old: str, new: str, *, context: int = 3) -> list[Line]:
    """Hunks with `context` unchanged lines around each change; [] when the texts are equal."""
    lines: list[Line] = []
    old_no = new_no = 0
    raw = difflib.unified_diff(_lines(old), _lines(new), n=context, lineterm="")
    for text in list(raw)[2:]:  # the first two are the ---/+++ file headers
        if text.startswith("@@"):
            match = _HUNK.match(text)
            assert match is not None  # difflib writes every hunk header in this form
            old_no, new_no = int(match.group(1)), int(match.group(2))
            # A hunk of an empty side starts at 0; the first line it shows is still line 1 of the other.
            old_no, new_no = max(old_no, 1), max(new_no, 1)
            lines.append(Line("hunk", text))
        elif text.startswith("-"):
            lines.append(Line("removed", text[1:], old=old_no))
            old_no += 1
        elif text.startswith("+"):
            lines.append(Line("added", text[1:], new=new_no))
            new_no += 1
        else:
            lines.append(Line("context", text[1:], old=old_no, new=new_no))
            old_no, new_no = old_no + 1, new_no + 1
    return lines


def side_by_side(old: str, new: str) -> list[Row]:
    """Every line of both texts, aligned: replaced blocks pair their lines up, the longer side padded."""
    a, b = _lines(old), _lines(new)
    rows: list[Row] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [Row("equal", a[i], b[j], i + 1, j + 1) for i, j in zip(range(i1, i2), range(j1, j2),
                                                                                strict=True)]
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            left = a[i] if i < i2 else None
            right = b[j] if j < j2 else None
            kind: RowKind = "changed" if left is not None and right is not None else (
                "removed" if right is None else "added")
            rows.append(Row(kind, left, right, i + 1 if left is not None else None,
                            j + 1 if right is not None else None))
    return rows


def stats(old: str, new: str) -> Stats:
    """Lines added and removed (a changed line counts once each way)."""
    added = removed = 0
    matcher = difflib.SequenceMatcher(a=_lines(old), b=_lines(new), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return Stats(added=added, removed=removed)
