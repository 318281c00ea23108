"""The store's exceptions: one root, each I/O failure raised ``from`` the OSError behind it."""

from __future__ import annotations


class StoreError(Exception):
    """The root of every error the store raises."""


class StoreFull(StoreError):
    """Every slot is taken: delete a key first. Nothing was written."""


class StoreIOError(StoreError):
    """An I/O error reached the store; ``__cause__`` is the OSError."""


class StoreShutdown(StoreIOError):
    """The store shut itself down after an I/O error it cannot back out of.

    Raised by the operation that hit the error and by every later operation; close the
    store and reopen it: recovery brings back the last committed state.
    """
