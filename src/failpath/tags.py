"""Call-site identity: the Tag of a point, and finding the frame that called it."""

from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass, field
from types import CodeType, FrameType

from failpath import _qualname

_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib") if k in paths}
    dirs.add(os.path.dirname(os.__file__) + os.sep)
    return tuple(sorted(dirs))


_STDLIB_DIRS = _stdlib_dirs()
_SITE_MARKERS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


@dataclass(frozen=True, slots=True)
class Tag:
    """Where a point is: the call site, plus the point's optional name and class.

    ``key`` is the stable identity used in specs, journals and reports:
    ``module:function:line`` followed by ``#name`` when the point has a name.
    """

    module: str
    function: str
    file: str
    line: int
    name: str | None = None
    cls: str = "generic"
    #: The tag's stable identity string, made once: every armed hit reads it.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.site}#{self.name}" if self.name else self.site)

    @property
    def site(self) -> str:
        """``module:function:line``, the call site without the name."""
        return f"{self.module}:{self.function}:{self.line}"

    def __str__(self) -> str:
        return self.key


def is_internal_file(filename: str) -> bool:
    """True for files of failpath itself or of the standard library (not site-packages)."""
    if filename.startswith(_PKG_DIR):
        return True
    if filename.startswith("<"):
        return filename.startswith("<frozen ")
    if filename.startswith(_STDLIB_DIRS):
        return not any(m in filename for m in _SITE_MARKERS)
    return False


_internal_cache: dict[str, bool] = {}


def _internal(code: CodeType) -> bool:
    name = code.co_filename
    hit = _internal_cache.get(name)
    if hit is None:
        hit = _internal_cache[name] = is_internal_file(os.path.abspath(name)
                                                        if not name.startswith("<") else name)
    return hit


def caller_frame(frame: FrameType | None) -> FrameType | None:
    """The first frame at or above ``frame`` that is outside failpath and the stdlib."""
    while frame is not None and _internal(frame.f_code):
        frame = frame.f_back
    return frame


def qualname_of(frame: FrameType) -> str:
    """The qualified name of the function running in ``frame``."""
    code = frame.f_code
    qual = getattr(code, "co_qualname", None)
    if qual is not None:
        return str(qual)
    # Python 3.10: no co_qualname; name it from the source as 3.11+ would, else
    # recover the class from the first argument.
    qual = _qualname.qualname(code, frame.f_globals)
    if qual is not None:
        return qual
    if code.co_argcount and code.co_varnames:
        first = frame.f_locals.get(code.co_varnames[0])
        if code.co_varnames[0] == "self" and first is not None:
            return f"{type(first).__qualname__}.{code.co_name}"
        if code.co_varnames[0] == "cls" and isinstance(first, type):
            return f"{first.__qualname__}.{code.co_name}"
    return code.co_name


_tag_cache: dict[tuple[CodeType, str, object, int, str | None, str], Tag] = {}


def tag_for(frame: FrameType | None, name: str | None, cls: str) -> Tag:
    """The Tag of a point hit from ``frame`` (already the call-site frame)."""
    if frame is None:
        return Tag("<unknown>", "<unknown>", "<unknown>", 0, name, cls)
    code = frame.f_code
    module = frame.f_globals.get("__name__", "<unknown>")
    # Code objects compare equal across files and modules when their bytecode is the same
    # (the filename is not compared), so the file and module are part of the key.
    key = (code, code.co_filename, module, frame.f_lineno, name, cls)
    tag = _tag_cache.get(key)
    if tag is None:
        tag = Tag(str(module), qualname_of(frame), code.co_filename, frame.f_lineno, name, cls)
        _tag_cache[key] = tag
    return tag


def site_tag(name: str | None, cls: str, depth: int = 1) -> Tag:
    """The Tag for a point hit ``depth`` frames above the caller, skipping internal frames."""
    return tag_for(caller_frame(sys._getframe(depth + 1)), name, cls)
