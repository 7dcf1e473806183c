from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from app.errors import Invalid
from app.export.formats import (
    CHAT_JSON,
    ExportFormat,
    JudgementRow,
    Preference,
    RatedResponse,
    Shape,
    StoredJson,
    Style,
    chat_json,
    chat_messages,
    download_name,
    hh_line,
    hh_transcript,
    kto_lines,
    parse_format,
    prompt_text,
    pseudonym,
    ratings_line,
    raw_line,
    trl_implicit_line,
    trl_line,
)

CHAT = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Say hi."}]
PREF = Preference(item_id=7, prompt_id=3, messages=CHAT, chosen_id=11, chosen="Go away.", rejected_id=10,
                  rejected="Hello!", n_votes=3, agreement=2 / 3, confidence=2 / 3, margin=2 / 3)
PROVENANCE = {"item_id": 7, "prompt_id": 3, "chosen_id": 11, "rejected_id": 10, "n_votes": 3,
              "agreement": 0.6667, "confidence": 0.6667, "source": "votes"}


def one(line: str) -> dict[str, object]:
    assert line.endswith("\n") and line.count("\n") == 1
    return dict(json.loads(line))


def test_trl_line_puts_the_winner_in_chosen_and_keeps_the_prompt_turns() -> None:
    assert one(trl_line(PREF)) == {
        "prompt": CHAT,
        "chosen": [{"role": "assistant", "content": "Go away."}],
        "rejected": [{"role": "assistant", "content": "Hello!"}],
        "margin": 0.6667, **PROVENANCE,
    }


def test_trl_standard_style_writes_strings_and_margin_can_be_left_out() -> None:
    row = one(trl_line(PREF, Shape(Style.STANDARD, margin=False)))
    assert row == {"prompt": "System: Be kind.\n\nUser: Say hi.\n\nAssistant: ", "chosen": "Go away.",
                   "rejected": "Hello!", **PROVENANCE}


def test_trl_margin_and_agreement_are_always_json_floats() -> None:
    whole = Preference(**{**vars(PREF), "agreement": 1, "confidence": 1, "margin": 2})  # ints slipped in
    line = trl_line(whole)
    assert '"margin": 2.0' in line and '"agreement": 1.0' in line and '"confidence": 1.0' in line


def test_a_pair_no_item_compared_has_null_item_and_agreement() -> None:
    implied = Preference(**{**vars(PREF), "item_id": None, "agreement": None, "n_votes": 0})
    row = one(trl_line(implied))
    assert (row["item_id"], row["agreement"], row["n_votes"]) == (None, None, 0)


def test_trl_implicit_rows_are_whole_conversations() -> None:
    row = one(trl_implicit_line(PREF))
    assert row == {"chosen": [*CHAT, {"role": "assistant", "content": "Go away."}],
                   "rejected": [*CHAT, {"role": "assistant", "content": "Hello!"}],
                   "margin": 0.6667, **PROVENANCE}
    assert "margin" not in one(trl_implicit_line(PREF, Shape(margin=False)))


def test_kto_writes_the_chosen_response_true_then_the_rejected_false() -> None:
    text = kto_lines(PREF)
    assert text.count("\n") == 2
    chosen, rejected = (json.loads(line) for line in text.splitlines())
    assert chosen == {"prompt": CHAT, "completion": [{"role": "assistant", "content": "Go away."}],
                      "label": True, "item_id": 7, "prompt_id": 3, "candidate_id": 11, "n_votes": 3,
                      "agreement": 0.6667, "confidence": 0.6667, "source": "votes"}
    assert (rejected["label"], rejected["candidate_id"], rejected["completion"]) == (
        False, 10, [{"role": "assistant", "content": "Hello!"}])
    standard = json.loads(kto_lines(PREF, Shape(Style.STANDARD)).splitlines()[0])
    assert standard["completion"] == "Go away."


def test_hh_transcripts_fold_the_system_turn_into_the_first_human_turn() -> None:
    chat = [*CHAT, {"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Again?"}]
    row = one(hh_line(Preference(**{**vars(PREF), "messages": chat})))
    transcript = "\n\nHuman: Be kind.\n\nSay hi.\n\nAssistant: Hi.\n\nHuman: Again?"
    assert row["chosen"] == transcript + "\n\nAssistant: Go away."
    assert row["rejected"] == transcript + "\n\nAssistant: Hello!"
    assert {k: row[k] for k in PROVENANCE} == PROVENANCE and row["margin"] == 0.6667


def test_ratings_line_has_each_attribute_mean_and_every_annotator_value() -> None:
    rated = RatedResponse(candidate_id=5, item_id=6, prompt_id=3, messages=CHAT, response="Hi.", model="m",
                          attributes=["helpfulness", "safety"],
                          ratings=[("p1", {"helpfulness": 6, "safety": 7}), ("p2", {"helpfulness": 3})])
    assert one(ratings_line(rated)) == {
        "prompt": CHAT, "response": [{"role": "assistant", "content": "Hi."}], "candidate_id": 5,
        "item_id": 6, "prompt_id": 3, "model": "m", "n_annotators": 2,
        "mean": {"helpfulness": 4.5, "safety": 7.0},
        "ratings": [{"annotator": "p1", "values": {"helpfulness": 6, "safety": 7}},
                    {"annotator": "p2", "values": {"helpfulness": 3, "safety": None}}]}
    unrated = RatedResponse(**{**vars(rated), "ratings": [("p1", {"helpfulness": 2})]})
    assert one(ratings_line(unrated, Shape(Style.STANDARD)))["mean"] == {"helpfulness": 2.0, "safety": None}


def test_prompt_text_is_a_transcript_awaiting_the_assistant() -> None:
    assert prompt_text("plain") == "User: plain\n\nAssistant: "
    assert prompt_text([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"},
                        {"role": "user", "content": "Q2"}]) == \
        "User: Q\n\nAssistant: A\n\nUser: Q2\n\nAssistant: "


def test_messages_are_normalised_to_role_and_content_strings() -> None:
    stored = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
               "name": "x"}, {"role": "assistant", "content": None}]
    assert chat_messages(stored) == [{"role": "user", "content": "ab"}, {"role": "assistant", "content": ""}]
    assert chat_messages("just text") == [{"role": "user", "content": "just text"}]


def row(**fields: object) -> JudgementRow:
    base: dict[str, object] = dict(
        judgement_id=1, item_id=2, prompt_id=3, kind="pair", candidate_a_id=10, candidate_b_id=11,
        annotator="abc", swapped=False, choice="a", strength=2, ratings={}, rationale="", flags=[],
        seconds=4.5, guideline_version=2, created_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    base.update(fields)
    return JudgementRow(**base)  # type: ignore[arg-type]


def test_raw_line_names_the_left_candidate_from_the_swap() -> None:
    assert json.loads(raw_line(row(swapped=False)))["left_candidate_id"] == 10
    shown = json.loads(raw_line(row(swapped=True, choice="b")))
    assert (shown["left_candidate_id"], shown["choice"], shown["swapped"]) == (11, "b", True)
    assert shown["created_at"] == "2026-11-23T12:00:00+00:00"
    assert shown["guideline_version"] == 2


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


# The pair writers build each line piece by piece (and splice the stored prompt JSON in as it is): they must
# give exactly json.dumps of the documented object, for any text.
TRICKY = ['He said "hi" \\ back', "line\nbreak\r\ttab \b\f \x01\x1f", "</script><!-- é 漢字 😀 \u2028",
          "", "'single' & <b>"]


def reference_line(fmt: str, pref: Preference, shape: Shape) -> str:
    """The documented object of a pair line, through json.dumps: what the writers must equal byte for byte."""
    chat = chat_messages(pref.messages.decoded() if isinstance(pref.messages, StoredJson) else pref.messages)

    def prompt() -> object:
        return chat if shape.style is Style.CONVERSATIONAL else prompt_text(chat)

    def response(text: str) -> object:
        return [{"role": "assistant", "content": text}] if shape.style is Style.CONVERSATIONAL else text

    def dumps(row: dict[str, object]) -> str:
        return json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(float(value), 4)

    margin = {"margin": round(float(pref.margin), 4)} if shape.margin else {}
    tail = {"item_id": pref.item_id, "prompt_id": pref.prompt_id, "chosen_id": pref.chosen_id,
            "rejected_id": pref.rejected_id, "n_votes": pref.n_votes, "agreement": rounded(pref.agreement),
            "confidence": rounded(pref.confidence), "source": pref.source}
    if fmt == "trl":
        return dumps({"prompt": prompt(), "chosen": response(pref.chosen),
                      "rejected": response(pref.rejected), **margin, **tail})
    if fmt == "trl-implicit":
        return dumps({"chosen": [*chat, {"role": "assistant", "content": pref.chosen}],
                      "rejected": [*chat, {"role": "assistant", "content": pref.rejected}], **margin, **tail})
    if fmt == "hh":
        transcript = hh_transcript(chat)
        return dumps({"chosen": f"{transcript}\n\nAssistant: {pref.chosen}",
                      "rejected": f"{transcript}\n\nAssistant: {pref.rejected}", **margin, **tail})
    return "".join(dumps({"prompt": prompt(), "completion": response(text), "label": label,
                          "item_id": pref.item_id, "prompt_id": pref.prompt_id, "candidate_id": candidate,
                          "n_votes": pref.n_votes, "agreement": rounded(pref.agreement),
                          "confidence": rounded(pref.confidence), "source": pref.source})
                   for candidate, text, label in ((pref.chosen_id, pref.chosen, True),
                                                  (pref.rejected_id, pref.rejected, False)))


def stored_prompts() -> list[object]:
    chats: list[object] = [[{"role": "system", "content": text}, {"role": "user", "content": text[::-1]}]
                           for text in TRICKY]
    chats += [[], "a plain string prompt", [{"role": "user", "content": [{"type": "text", "text": "a"}],
                                             "name": "x"}, {"content": None}, "not a message", {"role": 1}],
              [{"role": "user", "content": "x", "extra": 1}], [{"role": "user", "content": 2.5}]]
    return chats


@pytest.mark.parametrize("fmt", ["trl", "trl-implicit", "kto", "hh"])
def test_pair_lines_equal_json_dumps_of_the_documented_object(fmt: str) -> None:
    writer = {"trl": trl_line, "trl-implicit": trl_implicit_line, "kto": kto_lines, "hh": hh_line}[fmt]
    for n, chat in enumerate(stored_prompts()):
        for messages in (chat, StoredJson(json.dumps(chat, ensure_ascii=False))):
            for style in Style:
                for margin in (True, False):
                    text = TRICKY[n % len(TRICKY)]
                    pref = Preference(**{**vars(PREF), "messages": messages, "chosen": text,
                                         "rejected": TRICKY[(n + 1) % len(TRICKY)], "margin": -1 / 3,
                                         "agreement": [None, 1, 0.5][n % 3], "item_id": [None, 7][n % 2],
                                         "source": ["votes", "edit"][n % 2]})
                    shape = Shape(style, margin)
                    assert writer(pref, shape) == reference_line(fmt, pref, shape), (fmt, chat, style)


def test_stored_chat_json_is_spliced_only_when_it_is_exactly_role_and_content_strings() -> None:
    canonical = '[{"role": "system", "content": "a \\"q\\" \\\\ \\n é"}, {"role": "user", "content": "b"}]'
    assert CHAT_JSON.fullmatch(canonical) and chat_json(StoredJson(canonical)) == canonical
    assert chat_json(StoredJson("[]")) == "[]"
    for other in ('[{"name": "x", "role": "user", "content": "b"}]', '[{"role": "user", "content": 1}]',
                  '[{"role": "user", "content": "a", "name": "x"}]', '"plain"', '[{"content": "c"}]',
                  '[{"role": "user", "content": "a\\", \\"x\\": \\"y"}]'):
        decoded = json.loads(other)
        assert chat_json(StoredJson(other)) == json.dumps(chat_messages(decoded), ensure_ascii=False)
    # A quote inside a content string does not end it: the string is matched as JSON escapes it.
    assert chat_json(StoredJson('[{"role": "user", "content": "a\\", \\"x\\": \\"y"}]')) == \
        '[{"role": "user", "content": "a\\", \\"x\\": \\"y"}]'


def test_pair_lines_refuse_what_json_dumps_refuses() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        trl_line(Preference(**{**vars(PREF), "margin": float("nan")}))
    with pytest.raises(ValueError, match="JSON compliant"):
        kto_lines(Preference(**{**vars(PREF), "confidence": float("inf")}))
