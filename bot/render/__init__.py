"""What every channel renders with: the Jinja2 environment (admin folder first, shipped
``templates/`` behind, ``default:`` prefix to extend), the shared context and filters,
the UI strings per language, and the sample edition ``check`` and ``preview`` use.
How an edition becomes a given service's messages lives in that channel's folder."""

from .engine import Templates
from .sample import sample_edition

__all__ = ["Templates", "sample_edition"]
