"""One folder per channel kind, each holding everything about its service: the settings
model and its secrets, the limits and length rules, the renderer (edition → messages), the
encoding of its outbox payload, and the transport. :mod:`.registry` is the only door the
core uses; :mod:`.base` is the interface every kind implements."""
