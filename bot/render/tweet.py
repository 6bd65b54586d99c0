"""X's weighted length, by the twitter-text rules (the library, not a re-implementation).

X counts most Latin text as 1 per character, CJK and emoji as 2, and every URL as 23
whatever its length; the limit is 280 weighted characters.
"""

from __future__ import annotations

from twitter_text import parse_tweet

MAX_WEIGHTED = 280


def weighted_length(text: str) -> int:
    """The length X will count for ``text``."""
    return parse_tweet(text).weightedLength


def fits(text: str, limit: int = MAX_WEIGHTED) -> bool:
    """True when X would accept ``text`` on length (non-empty, at most ``limit`` weighted)."""
    return bool(text.strip()) and weighted_length(text) <= limit
