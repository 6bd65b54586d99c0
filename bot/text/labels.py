"""Category and topic labels as an admin or a reader means them: 'Économie ' and 'economie'
are the same topic."""

from __future__ import annotations

import unicodedata


def fold(label: str) -> str:
    """Case, accents and surrounding spaces folded away."""
    text = unicodedata.normalize("NFKD", label.strip().casefold())
    return "".join(c for c in text if not unicodedata.combining(c))
