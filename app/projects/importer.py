"""Reading an uploaded prompt file, JSONL or CSV (pure: bytes in, rows and problems out).

Row numbers in problems: JSONL counts lines (1-based, blank lines count but are skipped); CSV counts
records with the header as row 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.errors import Invalid
from app.projects.import_rows import PromptRow, RowError, check_row

KNOWN = ("prompt", "messages", "system", "candidates", "external_id", "metadata")
CANDIDATE_COLUMN = re.compile(r"candidate_(\d+)$")
MAX_REPORTED_PROBLEMS = 1000
JSONL_SUFFIXES = (".jsonl", ".json-lines", ".jsonlines", ".ndjson")


@dataclass
class ParsedFile:
    format: str
    rows: list[PromptRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        return len({e.row for e in self.errors})


def detect_format(filename: str, text: str) -> str:
    name = filename.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def decode(content: bytes) -> str | RowError:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[:exc.start].count(b"\n") + 1
        return RowError(None, "file", f"is not UTF-8 text (first bad byte on line {line})")


def parse_file(filename: str, content: bytes, *, max_rows: int) -> ParsedFile:
    text = decode(content)
    if isinstance(text, RowError):
        return ParsedFile("unknown", errors=[text])
    fmt = detect_format(filename, text)
    parsed = ParsedFile(fmt)
    records = list(jsonl_records(text) if fmt == "jsonl" else csv_records(text))
    if len(records) > max_rows:
        message = f"has {len(records):,} rows; the limit is {max_rows:,} (settings.max_import_rows)"
        parsed.errors.append(RowError(None, "file", message))
        return parsed
    if not records:
        parsed.errors.append(RowError(None, "file", "has no rows"))
    first_row_of: dict[str, int] = {}
    for record in records:
        if isinstance(record, RowError):
            parsed.errors.append(record)
            continue
        row, fields, extras = record
        checked = check_row(row, fields, extras)
        if isinstance(checked, list):
            parsed.errors.extend(checked)
            continue
        if checked.external_id is not None:
            first = first_row_of.setdefault(checked.external_id, row)
            if first != row:
                message = f"{checked.external_id!r} repeats row {first}"
                parsed.errors.append(RowError(row, "external_id", message))
                continue
        parsed.rows.append(checked)
    return parsed


def problem_report(errors: list[RowError], fmt: str) -> Invalid:
    """The all-or-nothing refusal: every problem by row (the first MAX_REPORTED_PROBLEMS of them)."""
    rows = {e.row for e in errors if e.row is not None}
    message = "the file has problems"
    if rows:
        message = f"{len(rows)} row{'s have' if len(rows) != 1 else ' has'} problems"
    if fmt == "csv" and rows:
        message += " (CSV rows are counted with the header as row 1)"
    message += "; nothing was imported"
    details = [e.as_dict() for e in sorted(errors, key=lambda e: (e.row or 0))[:MAX_REPORTED_PROBLEMS]]
    if len(errors) > MAX_REPORTED_PROBLEMS:
        details.append({"row": None, "field": "",
                        "message": f"... and {len(errors) - MAX_REPORTED_PROBLEMS} more problems not listed"})
    return Invalid(message, field="file", details=details)


Record = tuple[int, dict[str, Any], dict[str, Any]] | RowError


def jsonl_records(text: str) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RowError(number, "json", f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(value, dict):
            yield RowError(number, "json", "each line must be a JSON object")
            continue
        fields = {key: value[key] for key in KNOWN if value.get(key) is not None}
        if isinstance(fields.get("candidates"), list):
            fields["candidates"] = [(f"candidates[{i}]", c) for i, c in enumerate(fields["candidates"])]
        yield number, fields, {k: v for k, v in value.items() if k not in KNOWN}


def _delimiter(text: str) -> str:
    """The header's most frequent of comma, semicolon and tab (comma when it has none)."""
    header = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=header.count)


def csv_records(text: str) -> Iterator[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield RowError(1, "csv", f"not valid CSV: {exc}")
        return
    lowered = [name.lower() for name in header]
    repeated = sorted({name for name in lowered if name and lowered.count(name) > 1})
    if repeated:
        yield RowError(1, "header", f"repeated column names: {', '.join(repeated)}")
        return
    row = 1
    try:
        for cells in reader:
            row += 1
            if any(cell.strip() for cell in cells):
                yield csv_record(row, header, cells)
    except csv.Error as exc:
        yield RowError(row + 1, "csv", f"not valid CSV: {exc}")


def _json_cell(row: int, name: str, cell: str, kind: type) -> Any:
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as exc:
        return RowError(row, name, f"not valid JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(value, kind):
        return RowError(row, name, f"must be a JSON {'list' if kind is list else 'object'}")
    return value


def csv_record(row: int, header: list[str], cells: list[str]) -> Record:
    if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header):]):
        return RowError(row, "csv", f"has {len(cells)} cells but the header has {len(header)} columns")
    fields: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    numbered: list[tuple[int, str, str]] = []
    for name, cell in zip(header, cells, strict=False):
        key = name.lower()
        match = CANDIDATE_COLUMN.match(key)
        if not name or not cell.strip():
            continue
        if match:
            numbered.append((int(match.group(1)), name, cell))
        elif key in ("messages", "candidates", "metadata"):
            value = _json_cell(row, key, cell, dict if key == "metadata" else list)
            if isinstance(value, RowError):
                return value
            fields[key] = value
        elif key in KNOWN:
            fields[key] = cell
        else:
            extras[name] = cell
    if numbered and "candidates" in fields:
        return RowError(row, "candidates", "use a candidates column or candidate_1..N columns, not both")
    if "candidates" in fields:
        fields["candidates"] = [(f"candidates[{i}]", c) for i, c in enumerate(fields["candidates"])]
    elif numbered:
        fields["candidates"] = [(name, cell) for _, name, cell in sorted(numbered)]
    return row, fields, extras
