"""Arena: generation configs ranked against each other from the pairwise judgements between them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from app.annotation.models import Choice, Judgement
from app.arena import bradley_terry as bt
from app.arena.schemas import ArenaOut, ConfigRank
from app.generation import configs as configs_service
from app.projects.models import Candidate, CandidateSource, Item, ItemPurpose, Project

BOOTSTRAP_SAMPLES = 200
SCORE = {Choice.A: 1.0, Choice.B: 0.0, Choice.TIE: 0.5, Choice.BOTH_BAD: 0.5}  # both bad: a tie


def comparisons(session: Session, *, project_id: int) -> list[tuple[str, str, float]]:
    """(config of candidate a, config of candidate b, a's score) for each pairwise judgement between two
    model candidates of different configs on a regular item; repeats left out."""
    a, b = aliased(Candidate), aliased(Candidate)
    query = (select(a.config_key, b.config_key, Judgement.choice)
             .join(Item, Item.id == Judgement.item_id)
             .join(a, a.id == Item.candidate_a_id).join(b, b.id == Item.candidate_b_id)
             .where(Judgement.project_id == project_id, Judgement.is_repeat.is_(False),
                    Judgement.choice.is_not(None), Item.purpose == ItemPurpose.REGULAR,
                    a.source == CandidateSource.MODEL, b.source == CandidateSource.MODEL,
                    a.config_key != b.config_key))
    return [(key_a, key_b, SCORE[Choice(str(choice))]) for key_a, key_b, choice in session.execute(query)]


def arena(session: Session, *, project: Project, samples: int = BOOTSTRAP_SAMPLES) -> ArenaOut:
    """The configs ranked best first (the project's configs, plus any key judged since removed)."""
    games = comparisons(session, project_id=project.id)
    models = {c.key: c.model for c in configs_service.list_configs(session, project=project)}
    keys = list(models) + sorted({k for g in games for k in g[:2]} - models.keys())
    index = {key: i for i, key in enumerate(keys)}
    ranking = bt.rank(len(keys), [(index[x], index[y], s) for x, y, s in games], samples=samples,
                      seed=project.id)
    order = sorted(range(len(keys)), key=lambda i: -ranking.scores[i])
    ranks = [ConfigRank(key=keys[i], model=models.get(keys[i], ""), score=round(ranking.scores[i], 1),
                        low=_round(ranking.low[i]), high=_round(ranking.high[i]),
                        games=sum(ranking.games[i]),
                        points=sum(r * g for r, g in zip(ranking.win_rate[i], ranking.games[i], strict=True)
                                   if r is not None))
             for i in order]
    return ArenaOut(project_id=project.id, judgements=len(games), ranking=ranks,
                    keys=[keys[i] for i in order],
                    win_rate=[[_round(ranking.win_rate[i][j], 3) for j in order] for i in order],
                    games=[[ranking.games[i][j] for j in order] for i in order])


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
