"""The arena's chart: each config's score as a point on its 95% interval, drawn by agreement's SVG macro."""

from __future__ import annotations

from app.agreement.charts import BOTTOM, HEIGHT, LEFT, RIGHT, WIDTH, Chart, Frame, Mark, Text
from app.arena.schemas import ArenaOut


def score_chart(data: ArenaOut) -> Chart:
    values = [v for r in data.ranking for v in (r.score, r.low, r.high) if v is not None]
    low, high = min([*values, 950.0]) - 10, max([*values, 1050.0]) + 10
    frame = Frame(WIDTH, HEIGHT, low, high)
    slot = (WIDTH - LEFT - RIGHT) / max(len(data.ranking), 1)
    ticks = [low + (high - low) * i / 4 for i in range(5)]
    grid = [frame.y(t) for t in ticks]
    texts = [Text(LEFT - 6, y + 4, f"{t:.0f}", "end") for y, t in zip(grid, ticks, strict=True)]
    points, bars = [], []
    for i, r in enumerate(data.ranking):
        x = round(LEFT + (i + 0.5) * slot, 1)
        texts.append(Text(x, HEIGHT - BOTTOM + 18, r.key))
        interval = "" if r.low is None else f" (95% interval {r.low:.0f} to {r.high:.0f})"
        tip = f"{r.key}: {r.score:.0f}{interval}, {r.games} games"
        points.append(Mark(x, frame.y(r.score), tip))
        if r.low is not None and r.high is not None:
            bars.append(Mark(x - 1.5, frame.y(r.high), tip, 3.0, round(frame.y(r.low) - frame.y(r.high), 1)))
    return Chart("chart-arena", "Bradley-Terry score per config",
                 f"{len(data.ranking)} configs from {data.judgements} judgements; the bar is the 95% "
                 "bootstrap interval", WIDTH, HEIGHT, grid, texts, bars=bars, points=points)
