"""Article links as a channel sends them: the feed's tracking parameters out, the channel's
own campaign parameters in.

A WordPress feed tags every link ``?utm_source=rss&utm_medium=rss&utm_campaign=<slug>``;
sent on by email, that tells the publisher's analytics the click came from the RSS feed.
:func:`link` removes those (and click ids such as ``fbclid``) and adds the parameters the
channel asks for. Everything else in the URL (path, other parameters and their exact
encoding, fragment) is kept as written, so a link that worked still works.
"""

from __future__ import annotations

from typing import Mapping
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

# Query parameters that only tell analytics where a click came from. Two URLs that differ
# only by these are the same article.
TRACKING_PARAMS: frozenset[str] = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
    "mc_cid", "mc_eid", "igshid", "igsh", "ref", "ref_src", "ref_url", "cmpid", "xtor",
    "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv",
    "wt.mc_id", "s_cid", "ncid", "ocid", "soc_src", "soc_trk", "at_medium", "at_campaign",
})
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "pk_", "mtm_", "hmb_", "itm_", "__hs", "_branch")


def is_tracking(name: str) -> bool:
    """True for a query parameter that only says where a click came from."""
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def _name(pair: str) -> str:
    return unquote_plus(pair.split("=", 1)[0])


def link(url: str, campaign: Mapping[str, str] | None = None) -> str:
    """``url`` without tracking parameters, plus ``campaign`` (which replaces any parameter
    of the same name). Not an http(s) URL, or one that does not parse: returned as it is."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return url
    added = {k: v for k, v in (campaign or {}).items() if k}
    pairs = [p for p in parts.query.split("&") if p and not is_tracking(_name(p)) and _name(p) not in added]
    pairs += [f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in added.items()]
    query = "&".join(pairs)
    if query == parts.query:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
