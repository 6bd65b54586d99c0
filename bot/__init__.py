"""Tamtam: a newsletter and social distribution bot for news publishers.

Data flows one way: sources → ingest → store (articles) → editions → render →
outbox → dispatch → transports. Each arrow is one module; see docs/architecture.md.
"""

__version__ = "0.1.0"
