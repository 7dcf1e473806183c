"""Reward scores in the app: stored on candidates, |Δr| on pairs, disagreements with the human majority,
and the "uncertain first" queue order."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from sqlalchemy.orm import Session, sessionmaker
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from app.accounts.models import Role
from app.assignment import service as assignment_service
from app.db import utcnow
from app.errors import Invalid
from app.projects.models import Candidate, Item
from app.training import service as training_service
from app.training.scorer import load_reward_model, score_texts
from app.training.worker import score_project
from tests.factories import make_judgement, make_pair_item, make_project, make_user
from tests.training.tiny import WORDS


def set_scores(db: Session, item: Item, a: float, b: float) -> None:
    training_service.store_scores(db, scores={item.candidate_a_id: a, item.candidate_b_id: b},
                                  model_label="test-rm")  # type: ignore[dict-item]


def test_scores_and_gaps_are_stored(db: Session) -> None:
    project = make_project(db)
    first, second = make_pair_item(db, project, "one"), make_pair_item(db, project, "two")
    set_scores(db, first, 1.5, -0.5)
    training_service.refresh_gaps(db, project_id=project.id)
    db.expire_all()
    assert db.get(Candidate, first.candidate_a_id).reward_score == 1.5  # type: ignore[union-attr]
    assert db.get(Candidate, first.candidate_a_id).reward_model == "test-rm"  # type: ignore[union-attr]
    assert db.get(Item, first.id).reward_gap == pytest.approx(2.0)  # type: ignore[union-attr]
    assert db.get(Item, second.id).reward_gap is None  # type: ignore[union-attr]
    assert training_service.score_summary(db, project_id=project.id) == {"scored": 2, "model": "test-rm"}


def test_score_inputs_render_prompt_and_response_as_the_export_does(db: Session) -> None:
    project = make_project(db)
    item = make_pair_item(db, project, "Name a colour.", a="Red.", b="Blue.")
    inputs = training_service.score_inputs(db, project_id=project.id, after_id=0, limit=10)
    assert [(i.candidate_id, i.prompt, i.response) for i in inputs] == [
        (item.candidate_a_id, "User: Name a colour.", "Assistant: Red."),
        (item.candidate_b_id, "User: Name a colour.", "Assistant: Blue."),
    ]
    after = training_service.score_inputs(db, project_id=project.id, after_id=item.candidate_a_id, limit=10)
    assert [i.candidate_id for i in after] == [item.candidate_b_id]


def test_disagreements_are_confident_pairs_against_the_majority(db: Session) -> None:
    project = make_project(db, overlap_k=3)
    voters = [make_user(db, Role.ANNOTATOR) for _ in range(3)]
    against = make_pair_item(db, project, "against")  # humans a (2:1), model b by 3 → sigmoid(3) ≈ 0.95
    unsure = make_pair_item(db, project, "unsure")  # humans a, model b by 0.5 → sigmoid ≈ 0.62: not sure
    agrees = make_pair_item(db, project, "agrees")  # humans a, model a
    tied = make_pair_item(db, project, "tied")  # humans 1:1 (and a tie vote): no majority
    for item, choices in ((against, "aab"), (unsure, "aaa"), (agrees, "aab"), (tied, "ab")):
        for voter, choice in zip(voters, choices, strict=False):
            make_judgement(db, item, voter, choice)
    make_judgement(db, tied, voters[2], "tie")
    set_scores(db, against, -1.0, 2.0)
    set_scores(db, unsure, 0.0, 0.5)
    set_scores(db, agrees, 3.0, 0.0)
    set_scores(db, tied, 5.0, 0.0)
    found = training_service.disagreements(db, project=project, min_confidence=0.8)
    assert [d.item_id for d in found] == [against.id]
    (row,) = found
    assert (row.votes_a, row.votes_b, row.human_choice, row.model_choice) == (2, 1, "a", "b")
    assert row.confidence == pytest.approx(1 / (1 + math.exp(-3.0)))
    assert row.prompt == "User: against"
    loose = training_service.disagreements(db, project=project, min_confidence=0.6)
    assert [d.item_id for d in loose] == [against.id, unsure.id]
    with pytest.raises(Invalid):
        training_service.disagreements(db, project=project, min_confidence=1.0)


def test_uncertain_first_serves_the_smallest_gap_first_and_unscored_last(db: Session) -> None:
    project = make_project(db, gold_rate=0.0)
    annotator = make_user(db, Role.ANNOTATOR)
    unscored, sure, unsure, middle = (make_pair_item(db, project, name) for name in ("u", "s", "x", "m"))
    set_scores(db, sure, 4.0, 0.0)
    set_scores(db, unsure, 0.1, 0.0)
    set_scores(db, middle, -1.0, 0.0)
    training_service.refresh_gaps(db, project_id=project.id)
    db.expire_all()
    first = assignment_service.claim_next_item(db, project=project, annotator=annotator, now=utcnow())
    assert first is not None and first.item_id == unscored.id  # the default order: oldest first
    training_service.set_uncertain_first(db, project=project, enabled=True, actor=None)
    order = []
    for _ in range(3):
        lease = assignment_service.claim_next_item(db, project=project, annotator=make_user(db), now=utcnow())
        assert lease is not None
        order.append(lease.item_id)
    assert order == [unsure.id, unsure.id, middle.id]  # overlap k = 2: two annotators get the same pair


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-rm")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer.from_pretrained(directory).save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(directory)
    return directory


def test_score_project_writes_what_the_model_says(
    db: Session, session_factory: sessionmaker[Session], tiny_reward_model: Path
) -> None:
    project = make_project(db)
    items = [make_pair_item(db, project, f"tell me about the {c} tea.", a="here is the good answer.",
                            b="the answer is bad.") for c in ("red", "blue", "green")]
    db.commit()  # the outer test transaction still rolls back: this only releases to a savepoint
    done = score_project(session_factory, project_id=project.id, model_dir=tiny_reward_model, label="tiny")
    assert done == 6
    model = load_reward_model(tiny_reward_model)
    expected = score_texts(model, ["User: tell me about the red tea."] * 2,
                           ["Assistant: here is the good answer.", "Assistant: the answer is bad."])
    db.expire_all()
    first = db.get(Item, items[0].id)
    assert first is not None and first.reward_gap == pytest.approx(abs(expected[0] - expected[1]), abs=1e-5)
    assert db.get(Candidate, items[0].candidate_a_id).reward_score == pytest.approx(  # type: ignore[union-attr]
        expected[0], abs=1e-5)


def test_a_directory_without_a_model_is_a_clear_error(session_factory: sessionmaker[Session],
                                                     tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds no reward model"):
        score_project(session_factory, project_id=1, model_dir=tmp_path, label="x")


def test_score_command_scores_and_turns_uncertain_first_on(
    committed: sessionmaker[Session], database_url: str, tiny_reward_model: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from app.cli import app
    from app.config import get_settings
    from app.projects.models import Project

    with committed() as session:
        project = make_project(session, name="scored")
        item = make_pair_item(session, project, "tell me about the red tea.")
        session.commit()
        project_id, item_id = project.id, item.id
    monkeypatch.setenv("PREFSTUDIO_DATABASE_URL", database_url)
    monkeypatch.setenv("PREFSTUDIO_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["score", "--model", str(tiny_reward_model), "--project", str(project_id),
                                     "--uncertain-first"])
        missing = runner.invoke(app, ["score", "--model", str(tmp_path), "--project", str(project_id)])
        nowhere = runner.invoke(app, ["score", "--model", str(tiny_reward_model), "--project", "999999"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"scored 2 candidates of project {project_id}" in result.output
    with committed() as session:
        scored = session.get(Item, item_id)
        assert scored is not None and scored.reward_gap is not None
        assert session.get(Project, project_id).uncertain_first is True  # type: ignore[union-attr]
    assert missing.exit_code == 1 and "holds no reward model" in missing.output
    assert "Traceback" not in missing.output
    assert nowhere.exit_code == 1 and "no project with id 999999" in nowhere.output


def test_score_job_with_no_model_fails_for_good(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    from app.jobs.runner import JobData, PermanentFailure
    from app.training.worker import handle_score

    job = JobData(id=1, kind="score_rm", payload={"project_id": 1, "model_dir": str(tmp_path), "label": "x"},
                  attempts=1, max_attempts=5, worker_id="w", lease_seconds=60)
    with pytest.raises(PermanentFailure, match="holds no reward model"):
        handle_score(session_factory, job)
