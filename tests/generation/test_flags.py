from __future__ import annotations

import pytest

from app.generation.flags import flag


@pytest.mark.parametrize(("text", "tokens", "expected"), [
    ("", 0, ["empty"]),
    ("  \n\t ", 3, ["whitespace"]),
    ("A short, plain answer.", 5, []),
    ("cut off mid", 64, ["long"]),
    ("I am sure. " * 12, 40, ["repetitive"]),
    ("的的的的的的的的的的的的的的的的的的的的的的的的的的的的的的的的的的", 20, ["repetitive"]),
    ("loop loop loop loop " * 20, 64, ["long", "repetitive"]),
    ("Paris is the capital of France. It lies on the Seine, has about two million inhabitants and is "
     "known for the Louvre, the Eiffel Tower and its cafes.", 40, []),
])
def test_flags(text: str, tokens: int, expected: list[str]) -> None:
    assert flag(text, tokens=tokens, max_new_tokens=64) == expected


def test_no_budget_means_never_long() -> None:
    assert flag("fine", tokens=10_000, max_new_tokens=0) == []
