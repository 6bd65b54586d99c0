"""Jinja filters every template may use: dates in the reader's language and timezone, excerpts.
Channels add their own (Telegram's ``tg``, say) through their kind's ``filters``.

Dates are formatted with Babel in the *site's* timezone (Africa/Bamako by default): an
article published at 23:30 UTC on 1 December is dated « 1 décembre » in Bamako (UTC+0)
but « 2 décembre » in Paris, and the reader expects their own calendar. The locale and
timezone come from the template context (``locale``, ``tz``), which the renderer fills
from the channel, so a template never has to pass them.
"""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from jinja2 import pass_context
from jinja2.runtime import Context

from ..text import excerpt
from .strings import STRINGS


def _locale_tz(ctx: Context) -> tuple[str, tzinfo]:
    locale = ctx.get("locale") or "fr"
    tz = ctx.get("tz") or ZoneInfo("Africa/Bamako")
    return locale, tz


def _local(dt: datetime | date, tz: tzinfo) -> datetime | date:
    if isinstance(dt, datetime):
        if dt.tzinfo is None:
            raise ValueError(f"{dt.isoformat()} has no timezone; Tamtam keeps every time in aware UTC")
        return dt.astimezone(tz)
    if isinstance(dt, date):
        return dt
    raise TypeError(f"expected a date or datetime, got {type(dt).__name__} {dt!r}")


def format_date(value: datetime | date, format: str = "long", locale: str = "fr",
                tz: tzinfo | None = None) -> str:
    """« 2 décembre 2024 » (fr, long), "December 2, 2024" (en). ``format`` is a Babel
    name (short, medium, long, full) or a CLDR pattern such as ``"d MMM"``."""
    local = _local(value, tz or ZoneInfo("UTC"))
    day = local.date() if isinstance(local, datetime) else local
    return babel_dates.format_date(day, format=format, locale=locale)


def format_time(value: datetime | time, format: str = "short", locale: str = "fr",
                tz: tzinfo | None = None) -> str:
    """« 07:00 » (fr), "7:00 AM" (en)."""
    if isinstance(value, datetime):
        value = _local(value, tz or ZoneInfo("UTC")).time()  # type: ignore[union-attr]
    return babel_dates.format_time(value, format=format, locale=locale)


def format_datetime(value: datetime, format: str = "long", locale: str = "fr",
                    tz: tzinfo | None = None) -> str:
    """« 2 décembre 2024 à 07:00 ». Named formats join the date in that format with the
    short time (Babel's own long datetime adds seconds and a zone name, which readers do
    not need); anything else is a CLDR pattern."""
    if format in ("short", "medium", "long", "full"):
        joiner = str(STRINGS.get(locale, STRINGS["en"])["at"])
        return joiner.format(date=format_date(value, format, locale, tz),
                             time=format_time(value, "short", locale, tz))
    local = _local(value, tz or ZoneInfo("UTC"))
    return babel_dates.format_datetime(local, format=format, locale=locale)




@pass_context
def _format_date(ctx: Context, value: Any, format: str = "long") -> str:
    locale, tz = _locale_tz(ctx)
    return format_date(value, format, locale, tz)


@pass_context
def _format_time(ctx: Context, value: Any, format: str = "short") -> str:
    locale, tz = _locale_tz(ctx)
    return format_time(value, format, locale, tz)


@pass_context
def _format_datetime(ctx: Context, value: Any, format: str = "long") -> str:
    locale, tz = _locale_tz(ctx)
    return format_datetime(value, format, locale, tz)



FILTERS = {
    "format_date": _format_date,
    "format_time": _format_time,
    "format_datetime": _format_datetime,
    "excerpt": excerpt,
}
