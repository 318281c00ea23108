"""Error variety: extra units raising the errno a narrow ``except`` clause waits for."""

from __future__ import annotations

from typing import Any

from failpath.proof.model import Handler, Scan

#: OSError subclasses and the errno that makes ``OSError(errno, …)`` construct each one.
NARROW_ERRNO: dict[str, str] = {
    "FileNotFoundError": "ENOENT",
    "PermissionError": "EACCES",
    "FileExistsError": "EEXIST",
    "IsADirectoryError": "EISDIR",
    "NotADirectoryError": "ENOTDIR",
    "ConnectionRefusedError": "ECONNREFUSED",
    "ConnectionAbortedError": "ECONNABORTED",
    "ConnectionResetError": "ECONNRESET",
    "BrokenPipeError": "EPIPE",
    "TimeoutError": "ETIMEDOUT",
    "InterruptedError": "EINTR",
    "BlockingIOError": "EAGAIN",
    "ProcessLookupError": "ESRCH",
    "ChildProcessError": "ECHILD",
}


def handler_errnos(handler: Handler) -> tuple[str, ...]:
    """The errnos a handler singles out: by narrow type, or by ``errno.E*`` in its body."""
    if handler.kind != "except":
        return ()
    named = [NARROW_ERRNO[t.rsplit(".", 1)[-1]] for t in handler.types
             if t.rsplit(".", 1)[-1] in NARROW_ERRNO]
    return tuple(dict.fromkeys([*named, *handler.errno_refs]))


def _where(unit: dict[str, Any]) -> tuple[str | None, int | None, str | None]:
    point = unit.get("point") or {}
    file = point.get("file", unit.get("file"))
    line = point.get("line", unit.get("line"))
    tag = point.get("tag", unit.get("tag"))
    return file, line, tag


def variety_units(scan: Scan, units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Extra units so each narrow handler sees the errno it names.

    For every ``except`` naming a narrow OSError subclass (``except FileNotFoundError``) or
    testing ``errno.E*``, each planned unit whose point lies in that handler's try body
    (same file) gets a twin raising that errno. Units are result-schema unit dicts (or flat
    dicts with ``test``, ``nth``, ``tag``, ``file``, ``line``); short-write units and units
    already raising that errno are skipped.

    Returns:
        ``[{"test", "nth", "tag", "errno", "action", "handler_file", "handler_line"}]``,
        each (test, nth, tag, errno) once, in handler then unit order.
    """
    added: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for handler in scan.handlers:
        errnos = handler_errnos(handler)
        if not errnos:
            continue
        for unit in units:
            file, line, tag = _where(unit)
            if file != handler.file or line is None or not handler.guards(int(line)):
                continue
            action = str(unit.get("action") or "raise")
            for errno_name in errnos:
                key = (unit.get("test"), unit.get("nth"), tag, errno_name)
                if (action.startswith("short") or action == f"raise({errno_name})"
                        or key in seen):
                    continue
                seen.add(key)
                added.append({"test": unit.get("test"), "nth": unit.get("nth"), "tag": tag,
                              "errno": errno_name, "action": f"raise({errno_name})",
                              "handler_file": handler.file, "handler_line": handler.line})
    return added
