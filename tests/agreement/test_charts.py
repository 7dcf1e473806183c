"""Server-side SVG: the charts' geometry, drawn by templates/agreement/_chart.html with escaped labels,
accessible titles and presentation attributes only."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.agreement.charts import BandPoint, Chart, bar_chart, line_chart
from app.web.templating import templates

SVG = "{http://www.w3.org/2000/svg}"
EVIL = '<img src=x onerror="alert(1)">'


def draw(chart: Chart) -> str:
    return str(templates.env.get_template("agreement/_chart.html").module.chart(chart))  # type: ignore[attr-defined]


def test_line_chart_draws_a_band_a_line_and_points_and_splits_at_gaps() -> None:
    points = [BandPoint("d1", 0.5, 0.4, 0.6), BandPoint("d2", 0.7, 0.6, 0.8), BandPoint("d3", None),
              BandPoint("d4", 0.2, None, None), BandPoint("d5", 0.3, 0.1, 0.5)]
    svg = ET.fromstring(draw(line_chart(points, chart_id="c", title="Alpha", desc="per day")))
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "c-title c-desc"
    assert svg.find(f"{SVG}title").text == "Alpha"  # type: ignore[union-attr]
    assert len(svg.findall(f"{SVG}polygon")) == 2  # d1-d2, and d5 alone (d4 has no interval)
    assert len(svg.findall(f"{SVG}polyline")) == 2  # d1-d2 and d4-d5: the gap at d3 splits the line
    tips = [c.find(f"{SVG}title").text for c in svg.findall(f"{SVG}circle")]  # type: ignore[union-attr]
    assert tips == ["d1: 0.5 (95% interval 0.4 to 0.6)", "d2: 0.7 (95% interval 0.6 to 0.8)", "d4: 0.2",
                    "d5: 0.3 (95% interval 0.1 to 0.5)"]
    y = {c.find(f"{SVG}title").text[:2]: float(c.get("cy", "0")) for c in svg.findall(f"{SVG}circle")}  # type: ignore[index, union-attr]
    assert y["d2"] < y["d1"] < y["d5"] < y["d4"]  # higher values are drawn higher up


def test_labels_and_titles_are_escaped_and_no_style_is_used() -> None:
    chart = draw(line_chart([BandPoint(EVIL, 1.0, 0.9, 1.0)], chart_id=EVIL, title=EVIL, desc=EVIL))
    bars = draw(bar_chart([(EVIL, 3)], chart_id="b", title=EVIL, desc=EVIL))
    for markup in (chart, bars):
        assert "<img" not in markup and "&lt;img" in markup
        assert "style" not in markup
        ET.fromstring(markup)  # well-formed


def test_bar_chart_has_one_bar_per_count_scaled_to_the_largest() -> None:
    svg = ET.fromstring(draw(bar_chart([("Mon", 2), ("Tue", 4), ("Wed", 0)], chart_id="t", title="Per day",
                                       desc="3 days")))
    rects = svg.findall(f"{SVG}rect")
    assert [r.find(f"{SVG}title").text for r in rects] == ["Mon: 2", "Tue: 4", "Wed: 0"]  # type: ignore[union-attr]
    heights = [float(r.get("height", "0")) for r in rects]
    assert heights[1] == 2 * heights[0] and heights[2] == 0
