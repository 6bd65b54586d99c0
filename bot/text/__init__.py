"""Text work every channel shares: cutting on word boundaries, and fitting a rendered post
into a limit by shortening what it shows. Channels call these with their own measure
(Telegram's UTF-16 visible length, X's weighted length); nothing here knows a service."""

from .fit import ELLIPSIS, SQUEEZE, cut_to, excerpt, last_resort_title, said_fallback, shrink

__all__ = ["ELLIPSIS", "SQUEEZE", "cut_to", "excerpt", "last_resort_title", "said_fallback", "shrink"]
