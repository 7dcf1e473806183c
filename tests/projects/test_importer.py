"""The pure file reader: rows out, or every problem with its row number, field and message."""

from __future__ import annotations

import json
from typing import Any

from app.projects.import_rows import MAX_TEXT, RowError
from app.projects.importer import detect_format, parse_file, problem_report


def _jsonl(*rows: Any) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


def _problems(filename: str, content: bytes, max_rows: int = 1000) -> list[tuple[int | None, str]]:
    return [(e.row, e.field) for e in parse_file(filename, content, max_rows=max_rows).errors]


def test_jsonl_rows_become_chat_conversations_with_candidates_ids_and_metadata() -> None:
    parsed = parse_file(
        "p.jsonl",
        _jsonl(
            {"prompt": "Say hi."},
            {
                "messages": [
                    {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": "4"},
                    {"role": "user", "content": "and 3+3?"},
                ],
                "external_id": 7,
            },
            {
                "prompt": "Be brief.",
                "system": "You are terse.",
                "candidates": ["ok", "fine"],
                "external_id": "x-1",
                "metadata": {"topic": "style"},
                "source": "forum",
            },
        ),
        max_rows=10,
    )
    assert parsed.format == "jsonl" and parsed.errors == []
    first, chat, full = parsed.rows
    assert first.messages == [{"role": "user", "content": "Say hi."}] and first.candidates == []
    assert [t["role"] for t in chat.messages] == ["user", "assistant", "user"] and chat.external_id == "7"
    assert full.messages == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Be brief."},
    ]
    assert full.candidates == ["ok", "fine"] and full.external_id == "x-1"
    assert full.meta == {"source": "forum", "topic": "style"}


def test_jsonl_problems_name_the_line_and_the_field() -> None:
    content = _jsonl(
        {"prompt": "fine"},
        "{not json",
        {"prompt": ""},
        {"messages": [{"role": "robot", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        "",
        {"prompt": "x" * (MAX_TEXT + 1)},
        {"system": "no prompt here"},
        {"prompt": "a", "candidates": "not a list"},
        [1, 2],
        {"prompt": "ok", "metadata": [1]},
    )
    assert _problems("p.jsonl", content) == [
        (2, "json"),
        (3, "prompt"),
        (4, "messages[0].role"),
        (4, "messages"),
        (5, "messages"),
        (7, "prompt"),
        (8, "prompt"),
        (9, "candidates"),
        (10, "json"),
        (11, "metadata"),
    ]
    messages = {e.row: e.message for e in parse_file("p.jsonl", content, max_rows=100).errors}
    assert "not valid JSON" in messages[2] and messages[3] == "is empty"
    assert "limit is 20,000" in messages[7] and "missing" in messages[8]


def test_a_system_turn_must_come_first_and_not_twice() -> None:
    content = _jsonl(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "s"},
                {"role": "user", "content": "b"},
            ]
        },
        {"system": "s", "messages": [{"role": "system", "content": "t"}, {"role": "user", "content": "u"}]},
        {"prompt": "p", "messages": [{"role": "user", "content": "u"}]},
    )
    assert _problems("p.jsonl", content) == [(1, "messages[1].role"), (2, "system"), (3, "prompt")]


def test_an_external_id_repeated_in_the_file_is_reported_on_the_later_row() -> None:
    parsed = parse_file(
        "p.jsonl",
        _jsonl(
            {"prompt": "a", "external_id": "q1"},
            {"prompt": "b", "external_id": "q2"},
            {"prompt": "c", "external_id": "q1"},
        ),
        max_rows=10,
    )
    assert [(e.row, e.field) for e in parsed.errors] == [(3, "external_id")]
    assert "repeats row 1" in parsed.errors[0].message


def test_csv_rows_count_the_header_as_row_one() -> None:
    content = (
        b"external_id,prompt,system,candidate_1,candidate_2,topic\n"
        b"a,What is 2+2?,,4,four,math\n"
        b'b,"Write a poem,\nshort",Be kind.,,,poetry\n'
        b"c,,,,,empty\n"
    )
    parsed = parse_file("prompts.csv", content, max_rows=10)
    assert parsed.format == "csv"
    assert [(e.row, e.field) for e in parsed.errors] == [(4, "prompt")]
    math, poem = parsed.rows
    assert math.candidates == ["4", "four"] and math.meta == {"topic": "math"} and math.external_id == "a"
    assert poem.messages == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Write a poem,\nshort"},
    ]
    assert poem.candidates == []


def test_csv_json_columns_messages_candidates_and_metadata() -> None:
    messages = json.dumps([{"role": "user", "content": "hi"}]).replace('"', '""')
    content = (
        "messages,candidates,metadata,lang\n"
        f'"{messages}","[""hello"", ""hey""]","{{""level"": 2}}",en\n'
        '"[broken",,,en\n'
    ).encode()
    parsed = parse_file("c.csv", content, max_rows=10)
    assert [(e.row, e.field) for e in parsed.errors] == [(3, "messages")]
    (row,) = parsed.rows
    assert row.messages == [{"role": "user", "content": "hi"}] and row.candidates == ["hello", "hey"]
    assert row.meta == {"lang": "en", "level": 2}


def test_the_format_comes_from_the_extension_else_from_the_content() -> None:
    assert detect_format("a.JSONL", "prompt\nx") == "jsonl"
    assert detect_format("a.json-lines", "") == "jsonl"
    assert detect_format("a.csv", '{"prompt": 1}') == "csv"
    assert detect_format("upload", '  {"prompt": "x"}') == "jsonl"
    assert detect_format("upload", "prompt\nhello") == "csv"
    assert [
        r.messages[0]["content"] for r in parse_file("upload.txt", b"prompt\nhello", max_rows=5).rows
    ] == ["hello"]


def test_semicolon_separated_csv_with_a_byte_order_mark() -> None:
    parsed = parse_file("p.csv", "\ufeffprompt;external_id\nBonjour;1\n".encode(), max_rows=5)
    assert parsed.errors == [] and parsed.rows[0].external_id == "1"


def test_too_many_rows_is_one_file_problem() -> None:
    parsed = parse_file("p.jsonl", _jsonl(*({"prompt": f"p{i}"} for i in range(6))), max_rows=5)
    assert [(e.row, e.field) for e in parsed.errors] == [(None, "file")]
    assert "limit is 5" in parsed.errors[0].message and parsed.rows == []


def test_an_empty_file_and_a_non_utf8_file_are_file_problems() -> None:
    assert _problems("p.jsonl", b"\n\n") == [(None, "file")]
    assert _problems("p.csv", "prompt\nné\n".encode("latin-1")) == [(None, "file")]
    assert "line 2" in parse_file("p.csv", "prompt\nné\n".encode("latin-1"), max_rows=5).errors[0].message


def test_csv_with_extra_cells_or_repeated_columns_is_reported() -> None:
    assert _problems("p.csv", b"prompt,lang\nhi,en,surprise\n") == [(2, "csv")]
    assert _problems("p.csv", b"prompt,Prompt\nhi,hi\n") == [(1, "header")]
    assert _problems("p.csv", b'prompt,candidates,candidate_1\nhi,"[""a""]",b\n') == [(2, "candidates")]


def test_too_many_candidates_and_empty_candidates_are_reported() -> None:
    content = _jsonl(
        {"prompt": "a", "candidates": [str(i) for i in range(17)]},
        {"prompt": "b", "candidates": ["fine", " "]},
    )
    assert _problems("p.jsonl", content) == [(1, "candidates"), (2, "candidates[1]")]


def test_the_report_counts_rows_and_lists_at_most_a_thousand_problems() -> None:
    errors = [RowError(row, "prompt", "is empty") for row in range(1, 1202)]
    report = problem_report(errors, "jsonl")
    assert report.message == "1201 rows have problems; nothing was imported" and report.field == "file"
    assert len(report.details) == 1001 and report.details[0] == {
        "row": 1,
        "field": "prompt",
        "message": "is empty",
    }
    assert report.details[-1]["message"] == "... and 201 more problems not listed"
    assert problem_report([RowError(None, "file", "has no rows")], "csv").message == (
        "the file has problems; nothing was imported"
    )
    one = problem_report([RowError(3, "a", "x"), RowError(3, "b", "y")], "csv").message
    assert one == "1 row has problems (CSV rows are counted with the header as row 1); nothing was imported"
