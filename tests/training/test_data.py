from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.training.data import (
    ExportFormatError,
    PreferencePair,
    parse_row,
    read_pairs,
    render,
    split_by_prompt,
)

USER = {"role": "user", "content": "Name a colour."}


def message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def write_lines(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_conversational_row_renders_role_labelled_lines() -> None:
    row = {
        "prompt": [USER],
        "chosen": [message("assistant", "Blue.")],
        "rejected": [message("assistant", "No.")],
        "margin": 2,
        "score_chosen": 5,
    }
    assert parse_row(row, line=1) == PreferencePair(
        prompt="User: Name a colour.", chosen="Assistant: Blue.", rejected="Assistant: No.", margin=2.0
    )


def test_standard_string_row_keeps_text_and_margin_is_optional() -> None:
    row = {"prompt": "2+2?", "chosen": "4", "rejected": "5"}
    assert parse_row(row, line=1) == PreferencePair("2+2?", "4", "5", None)


def test_implicit_conversation_takes_the_shared_beginning_as_prompt() -> None:
    system = message("system", "Be brief.")
    row = {
        "chosen": [system, USER, message("assistant", "Red.")],
        "rejected": [system, USER, message("assistant", "I refuse.")],
    }
    pair = parse_row(row, line=1)
    assert pair.prompt == "System: Be brief.\nUser: Name a colour."
    assert (pair.chosen, pair.rejected) == ("Assistant: Red.", "Assistant: I refuse.")


def test_implicit_string_row_cuts_the_prompt_at_a_word_boundary() -> None:
    row = {"chosen": "Human: hi\n\nAssistant: hello there", "rejected": "Human: hi\n\nAssistant: help"}
    pair = parse_row(row, line=1)
    assert pair.prompt == "Human: hi\n\nAssistant: "
    assert (pair.chosen, pair.rejected) == ("hello there", "help")


def test_content_given_as_text_parts_is_joined() -> None:
    parts = [{"type": "text", "text": "Blue"}, {"type": "text", "text": "."}]
    assert (
        render([message("user", "hi"), {"role": "assistant", "content": parts}])
        == "User: hi\nAssistant: Blue."
    )


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        ('{"prompt": "p", "rejected": "r"}', "chosen"),
        ('{"prompt": "p", "chosen": "c"}', "rejected"),
        ('{"prompt": "p", "chosen": "c", "rejected": 3}', "rejected"),
        ('{"prompt": [{"role": "user", "content": "p"}], "chosen": "c", "rejected": "r"}', "prompt"),
        ('{"prompt": [], "chosen": [{"role": "assistant"}], "rejected": []}', "chosen"),
        ('{"prompt": [], "chosen": [], "rejected": [{"content": "x"}]}', "rejected"),
        ('{"prompt": "p", "chosen": "c", "rejected": "r", "margin": "big"}', "margin"),
        ('{"prompt": "p", "chosen": "c", "rejected": "r", "margin": true}', "margin"),
    ],
)
def test_bad_row_names_its_line_and_field(tmp_path: Path, bad_line: str, field: str | None) -> None:
    good = json.dumps({"prompt": "p", "chosen": "c", "rejected": "r"})
    path = write_lines(tmp_path / "export.jsonl", [good, "", bad_line, good])
    with pytest.raises(ExportFormatError) as caught:
        read_pairs(path)
    assert caught.value.line == 3
    assert caught.value.field == field
    assert str(caught.value).startswith("line 3")
    if field is not None:
        assert f"field '{field}'" in str(caught.value)


def test_empty_export_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match="no preference pairs"):
        read_pairs(write_lines(tmp_path / "export.jsonl", ["", "  "]))


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    rows = [json.dumps({"prompt": f"p{i}", "chosen": "c", "rejected": "r", "margin": 0.5}) for i in range(3)]
    pairs = read_pairs(write_lines(tmp_path / "export.jsonl", [rows[0], "", rows[1], rows[2], ""]))
    assert [pair.prompt for pair in pairs] == ["p0", "p1", "p2"]


def pairs_over(prompts: int, per_prompt: int) -> list[PreferencePair]:
    return [
        PreferencePair(f"prompt {p}", f"good {k}", f"bad {k}")
        for p in range(prompts)
        for k in range(per_prompt)
    ]


def test_split_never_puts_a_prompt_on_both_sides() -> None:
    split = split_by_prompt(pairs_over(prompts=30, per_prompt=3), eval_fraction=0.2, seed=7)
    train_prompts = {pair.prompt for pair in split.train}
    eval_prompts = {pair.prompt for pair in split.eval}
    assert not train_prompts & eval_prompts
    assert (len(eval_prompts), split.eval_prompts, split.train_prompts) == (6, 6, 24)
    assert len(split.train) + len(split.eval) == 90


def test_split_is_deterministic_for_a_seed_and_changes_with_it() -> None:
    pairs = pairs_over(prompts=40, per_prompt=2)
    first = split_by_prompt(pairs, 0.25, seed=1)
    assert split_by_prompt(list(reversed(pairs)), 0.25, seed=1).eval_prompts == first.eval_prompts
    assert {p.prompt for p in split_by_prompt(list(reversed(pairs)), 0.25, seed=1).eval} == {
        p.prompt for p in first.eval
    }
    assert {p.prompt for p in split_by_prompt(pairs, 0.25, seed=2).eval} != {p.prompt for p in first.eval}


def test_split_keeps_at_least_one_prompt_on_each_side() -> None:
    two = split_by_prompt(pairs_over(prompts=2, per_prompt=1), eval_fraction=0.1, seed=0)
    assert (two.train_prompts, two.eval_prompts) == (1, 1)
    lonely = split_by_prompt(pairs_over(prompts=1, per_prompt=4), eval_fraction=0.5, seed=0)
    assert (len(lonely.train), len(lonely.eval)) == (4, 0)
    none_held = split_by_prompt(pairs_over(prompts=5, per_prompt=1), eval_fraction=0.0, seed=0)
    assert none_held.eval == []


def test_split_rejects_a_fraction_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="eval_fraction"):
        split_by_prompt(pairs_over(prompts=3, per_prompt=1), eval_fraction=1.0, seed=0)
