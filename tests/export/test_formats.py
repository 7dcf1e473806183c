from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from app.errors import Invalid
from app.export.aggregate import Verdict
from app.export.formats import (
    ExportFormat,
    JudgementRow,
    PairRow,
    chat_messages,
    download_name,
    parse_format,
    pseudonym,
    raw_line,
    trl_line,
)

PAIR = PairRow(item_id=7, prompt_id=3, text_a="Hello!", text_b="Go away.",
               messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hi."}])


def verdict(winner: str) -> Verdict:
    return Verdict(winner=winner, winner_votes=2, n_votes=3, agreement=2 / 3, margin=2 / 3)


def test_trl_line_puts_the_winner_in_chosen_and_keeps_the_prompt_turns() -> None:
    line = trl_line(PAIR, verdict("b"))
    assert line.endswith("\n") and line.count("\n") == 1
    row = json.loads(line)
    assert row == {
        "prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hi."}],
        "chosen": [{"role": "assistant", "content": "Go away."}],
        "rejected": [{"role": "assistant", "content": "Hello!"}],
        "margin": 0.6667, "item_id": 7, "prompt_id": 3, "n_votes": 3, "agreement": 0.6667,
    }


def test_trl_margin_and_agreement_are_always_json_floats() -> None:
    whole = Verdict(winner="a", winner_votes=2, n_votes=2, agreement=1, margin=2)  # ints slipped in
    line = trl_line(PAIR, whole)
    assert '"margin": 2.0' in line and '"agreement": 1.0' in line


def test_messages_are_normalised_to_role_and_content_strings() -> None:
    stored = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
               "name": "x"}, {"role": "assistant", "content": None}]
    assert chat_messages(stored) == [{"role": "user", "content": "ab"}, {"role": "assistant", "content": ""}]
    assert chat_messages("just text") == [{"role": "user", "content": "just text"}]


def row(**fields: object) -> JudgementRow:
    base: dict[str, object] = dict(
        judgement_id=1, item_id=2, prompt_id=3, kind="pair", candidate_a_id=10, candidate_b_id=11,
        annotator="abc", swapped=False, choice="a", strength=2, ratings={}, rationale="", flags=[],
        seconds=4.5, created_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    base.update(fields)
    return JudgementRow(**base)  # type: ignore[arg-type]


def test_raw_line_names_the_left_candidate_from_the_swap() -> None:
    assert json.loads(raw_line(row(swapped=False)))["left_candidate_id"] == 10
    shown = json.loads(raw_line(row(swapped=True, choice="b")))
    assert (shown["left_candidate_id"], shown["choice"], shown["swapped"]) == (11, "b", True)
    assert shown["created_at"] == "2026-11-23T12:00:00+00:00"


def test_raw_single_item_has_null_b_and_sorted_ratings() -> None:
    single = json.loads(raw_line(row(kind="single", candidate_b_id=None, choice=None, strength=None,
                                     ratings={"helpfulness": 5, "correctness": 7}, swapped=True)))
    assert single["candidate_b_id"] is None and single["left_candidate_id"] == 10
    assert list(single["ratings"].items()) == [("correctness", 7), ("helpfulness", 5)]


def test_pseudonym_is_stable_per_project_and_keyed_by_the_secret() -> None:
    first = pseudonym(secret="s", project_id=1, user_id=5)
    assert first == pseudonym(secret="s", project_id=1, user_id=5)
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert first != pseudonym(secret="s", project_id=2, user_id=5)
    assert first != pseudonym(secret="t", project_id=1, user_id=5)
    assert first != pseudonym(secret="s", project_id=1, user_id=6)


def test_download_name_is_a_safe_timestamped_filename() -> None:
    name = download_name(project_id=3, fmt=ExportFormat.TRL, now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    assert name == "project-3-trl-20261123T1200.jsonl"


def test_unknown_format_is_invalid_on_the_format_field() -> None:
    assert parse_format("raw") is ExportFormat.RAW
    with pytest.raises(Invalid) as error:
        parse_format("csv")
    assert error.value.field == "format"
