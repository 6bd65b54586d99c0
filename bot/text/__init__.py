"""Text work every channel shares: cutting on sentence and word boundaries, fitting a
rendered post into a limit by shortening what it shows, French typography on the feed's
own text, and article links without the feed's tracking. Channels call these with their
own measure (Telegram's UTF-16 visible length, X's weighted length); nothing here knows a
service."""

from .fit import ELLIPSIS, SQUEEZE, cut_to, excerpt, last_resort_title, said_fallback, shrink, squeeze
from .labels import fold
from .links import TRACKING_PARAMS, TRACKING_PREFIXES, is_tracking, link
from .typography import NBSP, NNBSP, french, french_html, sentence_spacing, typeset, typography

__all__ = ["ELLIPSIS", "NBSP", "NNBSP", "SQUEEZE", "TRACKING_PARAMS", "TRACKING_PREFIXES", "cut_to", "excerpt",
           "fold", "french", "french_html", "is_tracking", "last_resort_title", "link", "said_fallback",
           "sentence_spacing", "shrink", "squeeze", "typeset", "typography"]
