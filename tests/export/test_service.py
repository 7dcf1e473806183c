from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import Text, cast, event, literal, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.db import utcnow
from app.errors import Invalid
from app.export import service as export_service
from app.export.formats import StoredJson, chat_json, chat_messages
from app.export.schemas import ExportOptions
from app.projects.models import Mode, Prompt
from tests.export.conftest import Voted, expected_trl
from tests.factories import make_judgement, make_pair_item, make_project, make_single_item
from tests.factories import make_user_without_password as make_user


def export(db: Session, project_id: int, fmt: str, **options: object) -> list[dict[str, object]]:
    lines = list(export_service.stream_export(db, project_id=project_id, fmt=fmt, **options))  # type: ignore[arg-type]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    return [json.loads(line) for line in lines]


def test_trl_has_exactly_the_majority_pairs_in_item_order(db: Session, voted: Voted) -> None:
    assert export(db, voted.project.id, "trl") == expected_trl(voted)


def test_trl_is_the_same_read_one_row_at_a_time(db: Session, voted: Voted) -> None:
    assert export(db, voted.project.id, "trl", chunk_size=1) == expected_trl(voted)


def test_trl_ignore_policy_keeps_pairs_whose_only_preference_votes_agree(db: Session, voted: Voted) -> None:
    make_judgement(db, voted.items["ties"], voted.annotators[2], "a", 2)  # tie, tie, a
    ids = [row["item_id"] for row in export(db, voted.project.id, "trl", tie_policy="ignore")]
    assert voted.items["ties"].id in ids
    assert voted.items["ties"].id not in [row["item_id"] for row in export(db, voted.project.id, "trl")]


def test_trl_leaves_out_likert_judgements_and_other_projects(db: Session, voted: Voted) -> None:
    likert = make_project(db, mode=Mode.LIKERT)
    single = make_single_item(db, likert)
    make_judgement(db, single, voted.annotators[0], ratings={"helpfulness": 6})
    assert export(db, likert.id, "trl") == []
    assert len(export(db, voted.project.id, "trl")) == 2


def test_raw_has_one_line_per_judgement_with_every_field(db: Session, voted: Voted) -> None:
    rows = export(db, voted.project.id, "raw", secret="test-secret")
    assert len(rows) == 10
    swapped = voted.items["swapped"]
    first = next(r for r in rows if r["item_id"] == swapped.id)
    assert first == {
        "judgement_id": first["judgement_id"], "item_id": swapped.id, "prompt_id": swapped.prompt_id,
        "kind": "pair", "candidate_a_id": swapped.candidate_a_id, "candidate_b_id": swapped.candidate_b_id,
        "annotator": first["annotator"], "swapped": True, "left_candidate_id": swapped.candidate_b_id,
        "choice": "b", "strength": 3, "ratings": {}, "rationale": "", "flags": [], "seconds": None,
        "guideline_version": None, "created_at": first["created_at"],
    }
    assert datetime.fromisoformat(str(first["created_at"])).tzinfo is not None
    item_order = [int(str(r["item_id"])) for r in rows]
    assert item_order == sorted(item_order)


def test_raw_annotator_is_a_pseudonym_stable_across_exports_and_distinct_across_projects(
        db: Session, voted: Voted) -> None:
    user = voted.annotators[0]
    other = make_project(db, members=[user])
    make_judgement(db, make_pair_item(db, other), user, "a", 1)
    first = export(db, voted.project.id, "raw", secret="s3cret")
    again = export(db, voted.project.id, "raw", secret="s3cret")
    assert [r["annotator"] for r in first] == [r["annotator"] for r in again]
    assert len({r["annotator"] for r in first}) == 3
    dumped = json.dumps(first)
    assert all(u.username not in dumped for u in voted.annotators)
    in_first = {r["annotator"] for r in first if r["item_id"] == voted.items["both_bad"].id}  # user's only
    (in_other,) = export(db, other.id, "raw", secret="s3cret")
    assert len(in_first) == 1 and in_other["annotator"] not in in_first


def test_raw_carries_ratings_rationale_flags_and_seconds(db: Session) -> None:
    annotator = make_user(db)
    project = make_project(db, mode=Mode.LIKERT, members=[annotator])
    item = make_single_item(db, project, body="An answer.")
    make_judgement(db, item, annotator, ratings={"helpfulness": 6, "correctness": 2}, rationale="Too *short*",
                   flags=["unsafe"], seconds=12.5)
    (row,) = export(db, project.id, "raw")
    assert row["kind"] == "single" and row["candidate_b_id"] is None and row["choice"] is None
    assert row["ratings"] == {"correctness": 2, "helpfulness": 6}
    assert (row["rationale"], row["flags"], row["seconds"]) == ("Too *short*", ["unsafe"], 12.5)


def test_empty_project_exports_zero_lines(db: Session) -> None:
    project = make_project(db)
    make_pair_item(db, project)
    assert export(db, project.id, "trl") == []
    assert export(db, project.id, "raw") == []


def test_unknown_format_is_refused_before_any_query(db: Session) -> None:
    with pytest.raises(Invalid) as error:
        export_service.stream_export(db, project_id=1, fmt="parquet")
    assert error.value.field == "format"


@pytest.mark.parametrize(("fmt", "total"), [("raw", 10), ("trl", 2)])
def test_rows_are_read_through_a_server_side_cursor(db: Session, voted: Voted, fmt: str, total: int) -> None:
    lines = export_service.stream_export(db, project_id=voted.project.id, fmt=fmt, chunk_size=1)
    next(lines)
    # Half-way through, the rows still wait on the server, in a cursor the export holds open.
    assert db.scalar(text("SELECT count(*) FROM pg_cursors")) == 1
    assert len(list(lines)) == total - 1
    assert db.scalar(text("SELECT count(*) FROM pg_cursors")) == 0


def plan(db: Session, voted: Voted, **options: object) -> export_service.Plan:
    return export_service.plan_export(db, project_id=voted.project.id,
                                      options=ExportOptions.model_validate(options))


def test_record_export_writes_an_audit_event_with_every_option_and_the_count(db: Session,
                                                                               voted: Voted) -> None:
    event = export_service.record_export(db, plan=plan(db, voted, format="kto", min_agreement=0.5),
                                         actor=voted.researcher, channel="api")
    stored = db.scalars(select(AuditEvent).where(AuditEvent.id == event.id)).one()
    assert (stored.action, stored.project_id) == ("export", voted.project.id)
    assert stored.actor_id == voted.researcher.id
    after = stored.after or {}
    assert {k: after[k] for k in ("format", "channel", "judgements", "aggregation", "tie_policy")} == {
        "format": "kto", "channel": "api", "judgements": 10, "aggregation": "majority", "tie_policy": "drop"}
    assert after["filters"]["min_agreement"] == 0.5 and after["filters"]["include_gold"] is False
    from_cli = export_service.record_export(db, plan=plan(db, voted, format="raw"), actor=None, channel="cli")
    assert from_cli.actor_id is None


def test_summary_counts_judgements_and_voted_pairs(db: Session, voted: Voted) -> None:
    summary = export_service.export_summary(db, project_id=voted.project.id)
    assert (summary.judgements, summary.voted_pairs) == (10, 5)


def test_a_run_reads_in_its_own_session_and_blocks_hold_whole_lines(
        db: Session, voted: Voted, session_factory: sessionmaker[Session]) -> None:
    lines = list(export_service.stream_export(db, project_id=voted.project.id, fmt="raw", secret="k"))
    run = export_service.start(plan(db, voted, format="raw"), factory=session_factory, secret="k",
                               now=utcnow())
    assert list(run.lines()) == lines
    blocks = list(export_service.blocks(iter(lines), block_chars=len(lines[0]) * 3))
    assert 1 < len(blocks) < len(lines)
    assert all(block.endswith("\n") for block in blocks) and "".join(blocks) == "".join(lines)
    assert list(export_service.blocks(iter(lines), block_chars=10**6)) == ["".join(lines)]


def test_the_stream_of_its_own_reads_in_a_read_only_transaction(
        db: Session, voted: Voted, session_factory: sessionmaker[Session]) -> None:
    run = export_service.start(plan(db, voted), factory=session_factory, secret="k", now=utcnow())
    lines = run.lines()
    next(lines)
    assert db.scalar(text("SHOW transaction_read_only")) == "on"
    assert len(list(lines)) == 1
    assert db.scalar(text("SHOW transaction_read_only")) == "off"  # over: writes work again
    make_judgement(db, voted.items["unvoted"], voted.annotators[0], "a", 1)


STORED_CHATS: list[object] = [
    [{"role": "system", "content": 'Be "kind" \\ </script> <!-- é 漢字 😀 \u2028'},
     {"role": "user", "content": "line\nbreak\r\n\t\x01\x1f\b\f end"}],
    [], "a plain string", [{"role": "user", "content": [{"type": "text", "text": "part "}], "name": "x"}],
    [{"content": None}, {"role": "assistant", "content": 12.5}],
]


def test_jsonb_text_is_spliced_as_json_dumps_would_write_it(db: Session) -> None:
    """Postgres writes jsonb text with json.dumps's separators and escapes: a chat of role and content
    strings goes into a line as stored; anything else is decoded and normalised."""
    for chat in STORED_CHATS:
        stored = db.scalar(select(cast(literal(chat, JSONB), Text)))
        assert isinstance(stored, str)
        spliced = chat_json(StoredJson(stored))
        assert spliced == json.dumps(chat_messages(chat), ensure_ascii=False)
        assert (spliced is stored) == (chat is STORED_CHATS[0] or chat == [])


def test_a_run_on_its_own_connection_streams_the_same_lines_and_closes_its_cursor(
        committed: sessionmaker[Session]) -> None:
    with committed() as db:
        u1, u2 = (make_user(db) for _ in range(2))
        project = make_project(db, members=[u1, u2])
        for n, chat in enumerate(STORED_CHATS):
            item = make_pair_item(db, project, text=f"Q{n}", a=f'A "{n}"\n', b=f"B {n} 😀")
            prompt = db.get(Prompt, item.prompt_id)
            assert prompt is not None
            prompt.messages = chat
            make_judgement(db, item, u1, "ab"[n % 2], 2)
            make_judgement(db, item, u2, "ab"[n % 2], None)
        db.commit()
        project_id = project.id
    declared: list[str] = []
    engine = committed.kw["bind"]

    def seen(*args: object) -> None:
        declared.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", seen)
    for fmt in ("trl", "trl-implicit", "kto", "hh"):
        with committed() as db:
            shared = list(export_service.stream_export(db, project_id=project_id, fmt=fmt, secret="k",
                                                       chunk_size=2))
            plan = export_service.plan_export(db, project_id=project_id, options=ExportOptions(format=fmt))
        run = export_service.start(plan, factory=committed, secret="k", now=utcnow())
        run.chunk_size = 2
        assert list(run.lines()) == shared and len(shared) == len(STORED_CHATS) * (2 if fmt == "kto" else 1)
        assert run.card()["counts"]["lines"] == len(shared)
    event.remove(engine, "before_cursor_execute", seen)
    # Only the run on a connection of its own streamed its pairs through a cursor it declared itself.
    assert sum(statement.startswith("DECLARE export_rows_") for statement in declared) == 4
    # Abandoned halfway, the stream lets its connection go back to the pool in a usable state.
    with committed() as db:
        plan = export_service.plan_export(db, project_id=project_id, options=ExportOptions())
    run = export_service.start(plan, factory=committed, secret="k", now=utcnow())
    run.chunk_size = 1
    lines = run.lines()
    first = json.loads(next(lines))
    assert first["prompt"] == chat_messages(STORED_CHATS[0])
    lines.close()
    with committed() as db:
        assert len(list(export_service.stream_export(db, project_id=project_id, secret="k"))) == 5
