"""Ingestion: fetch a source (HTTP or local file) and turn its feed into Articles.

The pipeline calls :func:`fetch_source`; :func:`parse_feed` is the pure part, usable on
bytes from anywhere. Every failure reaches the caller as ``SourceError``.
"""

from __future__ import annotations

from .fetch import DEFAULT_USER_AGENT, FetchResult, fetch_source
from .parse import parse_feed

__all__ = ["DEFAULT_USER_AGENT", "FetchResult", "fetch_source", "parse_feed"]
