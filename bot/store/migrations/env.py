"""Alembic environment. Tamtam runs migrations itself (``Store.migrate``), passing an open
connection in ``config.attributes["connection"]``; the ``alembic`` command line works too
with ``-x url=…``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from bot.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
