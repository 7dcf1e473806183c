from __future__ import annotations

from app.guidelines import diff

OLD = "# Rules\nkeep this\nold rule\nend\n"
NEW = "# Rules\nkeep this\nnew rule\nadded rule\nend\n"


def test_unified_marks_removed_and_added_lines_with_their_numbers() -> None:
    lines = diff.unified(OLD, NEW)
    assert [(line.kind, line.text, line.old, line.new) for line in lines] == [
        ("hunk", "@@ -1,4 +1,5 @@", None, None),
        ("context", "# Rules", 1, 1),
        ("context", "keep this", 2, 2),
        ("removed", "old rule", 3, None),
        ("added", "new rule", None, 3),
        ("added", "added rule", None, 4),
        ("context", "end", 4, 5),
    ]


def test_unified_keeps_only_the_context_around_a_change() -> None:
    old = "\n".join(f"line {n}" for n in range(1, 21))
    new = old.replace("line 10", "line ten")
    lines = diff.unified(old, new, context=2)
    assert [line.text for line in lines if line.kind == "context"] == [
        "line 8",
        "line 9",
        "line 11",
        "line 12",
    ]
    assert lines[0].text == "@@ -8,5 +8,5 @@"


def test_equal_texts_have_no_diff_and_a_final_newline_does_not_count() -> None:
    assert diff.unified(OLD, OLD) == []
    assert diff.unified("a\nb", "a\nb\n") == []
    assert diff.stats(OLD, OLD).unchanged
    assert all(row.kind == "equal" for row in diff.side_by_side(OLD, OLD))


def test_side_by_side_pairs_changed_lines_and_pads_the_shorter_side() -> None:
    rows = diff.side_by_side(OLD, NEW)
    assert [(r.kind, r.left, r.right, r.left_no, r.right_no) for r in rows] == [
        ("equal", "# Rules", "# Rules", 1, 1),
        ("equal", "keep this", "keep this", 2, 2),
        ("changed", "old rule", "new rule", 3, 3),
        ("added", None, "added rule", None, 4),
        ("equal", "end", "end", 4, 5),
    ]
    removed = diff.side_by_side("a\nb\nc", "a\nc")
    assert [(r.kind, r.left, r.right) for r in removed] == [
        ("equal", "a", "a"),
        ("removed", "b", None),
        ("equal", "c", "c"),
    ]


def test_from_nothing_everything_is_added() -> None:
    lines = diff.unified("", "one\ntwo")
    assert [(line.kind, line.text, line.new) for line in lines[1:]] == [
        ("added", "one", 1),
        ("added", "two", 2),
    ]
    assert diff.stats("", "one\ntwo") == diff.Stats(added=2, removed=0)


def test_stats_count_a_changed_line_both_ways_and_windows_line_ends_are_not_changes() -> None:
    assert diff.stats(OLD, NEW) == diff.Stats(added=2, removed=1)
    assert diff.stats("a\r\nb\r\n", "a\nb\n").unchanged


def test_diff_text_is_returned_raw_for_the_template_to_escape() -> None:
    lines = diff.unified("safe", "<script>alert(1)</script>")
    assert lines[-1].text == "<script>alert(1)</script>" and lines[-1].kind == "added"
