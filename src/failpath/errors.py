"""Every exception and warning failpath raises, under one root."""

from __future__ import annotations


class FailpathError(Exception):
    """The root of every error failpath raises about its own use."""


class InvalidArgument(FailpathError, ValueError):
    """An argument at the API boundary is out of range or of the wrong kind."""


class SpecError(FailpathError, ValueError):
    """A fault spec string (``FAILPATH``, ``configure()``, CLI) is malformed.

    Attributes:
        spec: the whole text that was parsed.
        column: 1-based column of the offending character.
    """

    def __init__(self, message: str, spec: str = "", column: int = 0) -> None:
        self.spec = spec
        self.column = column
        if spec:
            lo = max(0, column - 1 - 12)
            hi = min(len(spec), column - 1 + 12)
            # Control characters become spaces so the caret stays under the column.
            excerpt = "".join(" " if ch.isspace() or not ch.isprintable() else ch
                              for ch in spec[lo:hi])
            caret = " " * (column - 1 - lo) + "^"
            message = f"{message} at column {column}:\n    {excerpt}\n    {caret}"
        super().__init__(message)


class QueryError(InvalidArgument):
    """A point query (SPEC section 6) is malformed or matches nothing."""


class ScopeError(FailpathError):
    """A scope was restored out of LIFO order or with a foreign cookie."""


class PolicyError(FailpathError):
    """A policy hazard (see :class:`PolicyWarning`) raised as an error in strict mode.

    Attributes:
        slug: the short name of the hazard, e.g. ``nofail-in-nowait-scope``.
    """

    def __init__(self, slug: str, message: str) -> None:
        self.slug = slug
        super().__init__(f"[{slug}] {message}")


class PolicyWarning(UserWarning):
    """A policy hazard: e.g. a NOFAIL callsite inside a NOWAIT scope.

    Attributes:
        slug: the short name of the hazard, which a filter can match.
    """

    def __init__(self, slug: str, message: str) -> None:
        self.slug = slug
        super().__init__(f"[{slug}] {message}")


class AllocationWarning(UserWarning):
    """An allocation failed (the allocator returned None) without NOWARN."""


class AllocatorStall(FailpathError):
    """An allocation would wait forever: no other thread is alive that could free memory."""


class MempoolDeadlock(FailpathError):
    """A context holding an element of a pool would wait for a second one that can never come."""


class InjectedFault(Exception):
    """The default error an injected failure raises when the point names none.

    Deliberately not a :class:`FailpathError`: it stands for the operation's own failure.
    """
