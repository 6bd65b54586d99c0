"""Tamtam's web service, the readers' door: sign-up with double opt-in, confirmation,
one-click unsubscribe, preferences, the archive of sent editions and its Atom feed, and
the channel kinds' own routes (bounce webhooks). :mod:`.app` lists the routes;
:mod:`.server` runs them with uvicorn, inside ``run`` or alone (``serve``)."""

from .app import WebApp
from .signup import Choice, Signup

__all__ = ["Choice", "Signup", "WebApp"]
