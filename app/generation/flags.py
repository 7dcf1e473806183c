"""Flags on generated text that should not reach annotators by default. Pure: text in, flag names out."""

from __future__ import annotations

import re

EMPTY, WHITESPACE, LONG, REPETITIVE = "empty", "whitespace", "long", "repetitive"
ALL = (EMPTY, WHITESPACE, LONG, REPETITIVE)
NGRAM = 4
MIN_WORDS = 16  # shorter answers are too short to call repetitive
DISTINCT_SHARE = 0.5  # fewer distinct word 4-grams than this share of all 4-grams: a loop
# the same run of 8+ characters four times in a row (scripts without spaces, token soup)
REPEATED_RUN = re.compile(r"(.{8,}?)\1{3,}", re.DOTALL)


def flag(text: str, *, tokens: int, max_new_tokens: int) -> list[str]:
    """The flags of one output. `long`: it used the whole token budget, so it was cut off."""
    if text == "":
        return [EMPTY]
    if not text.strip():
        return [WHITESPACE]
    found = []
    if max_new_tokens and tokens >= max_new_tokens:
        found.append(LONG)
    if is_repetitive(text):
        found.append(REPETITIVE)
    return found


def is_repetitive(text: str) -> bool:
    words = text.lower().split()
    if len(words) >= MIN_WORDS:
        grams = [tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)]
        if len(set(grams)) < DISTINCT_SHARE * len(grams):
            return True
    return REPEATED_RUN.search(text) is not None
