"""Calls into C extension modules: wrappers on their callables, all seen by one hook.

A memory sweep names *targets* (docs/memory.md):

* an extension module (``mypkg._speedups``, ``_json``): every C function it defines, and
  the methods of its types where the type takes a new attribute, or else on its Python
  subclasses (PyYAML's ``CLoader`` over the C type ``_yaml.CParser``);
* one callable by its dotted name: a C function or method (``_json.scanstring``,
  ``mypkg._speedups.Parser.feed``), or a Python function whose calls go into C
  (``json.loads``, ``msgpack.packb``): the calls project code makes into the extension.

:func:`install` puts a wrapper wherever a module namespace holds a target (``from _json
import scanstring as c_scanstring`` included); :meth:`Installation.rebind` catches modules
imported since. A disarmed wrapper reads one module-level name and calls through. Armed
(:func:`set_hook`), it hands the call to the hook, whose caller's frame is two levels up.
A call made while another is in progress (:data:`depth`) goes straight through, so every
allocation is counted once, by the outermost call.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import re
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from failpath.errors import InvalidArgument

Hook = Callable[[str, Any, tuple[Any, ...], dict[str, Any]], Any]

#: The hook armed wrappers call (None: disarmed), and the depth of calls in progress.
_hook: Hook | None = None
depth = 0

_IMMUTABLE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE (3.10+): the type refuses new attributes
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def set_hook(hook: Hook | None) -> None:
    """Arm every wrapper with ``hook`` (None disarms them)."""
    global _hook
    _hook = hook


def through(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``original`` as a call in progress: targets it calls go straight through."""
    global depth
    depth += 1
    try:
        return original(*args, **kwargs)
    finally:
        depth -= 1


def _wrapper(original: Any, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        if _hook is None or depth:
            return original(*args, **kwargs)
        return _hook(name, original, args, kwargs)

    call.__name__ = str(getattr(original, "__name__", name.rsplit(".", 1)[-1]))
    call.__qualname__ = str(getattr(original, "__qualname__", call.__name__))
    call.__module__ = str(getattr(original, "__module__", None) or name.rsplit(".", 1)[0])
    call.__doc__ = getattr(original, "__doc__", None)
    call.__wrapped__ = original  # type: ignore[attr-defined]
    call.__failpath_memory__ = name  # type: ignore[attr-defined]
    return call


# -- naming what to wrap -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Callee:
    """One callable to wrap: shown as ``name``; ``original`` is set as ``owner.attr``."""

    name: str
    owner: Any
    attr: str
    original: Any


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved target: what the user wrote, and the callables it stands for."""

    spec: str
    callees: tuple[Callee, ...]
    #: C types whose methods are wrapped (all, or the one named), looked up again when
    #: modules are imported: a Python subclass made later gets the wrappers too.
    types: tuple[tuple[type, str | None], ...] = ()


def is_c_function(value: Any) -> bool:
    """A function implemented in C: a builtin function or method, or a Cython function."""
    return isinstance(value, types.BuiltinFunctionType) or \
        type(value).__name__.endswith("cython_function_or_method")


def is_extension(module: types.ModuleType) -> bool:
    """Whether ``module`` is implemented in C (a shared object, or built into Python)."""
    if module.__name__ in sys.builtin_module_names:
        return True
    origin = getattr(getattr(module, "__spec__", None), "origin", None) or \
        getattr(module, "__file__", None) or ""
    return origin == "built-in" or origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _mutable(cls: type) -> bool:
    return not cls.__flags__ & _IMMUTABLE


def _methods(cls: type) -> Iterator[tuple[str, Any]]:
    for attr, raw in sorted(vars(cls).items()):
        if not attr.startswith("__") and (isinstance(raw, types.MethodDescriptorType)
                                          or is_c_function(raw)):
            yield attr, raw


def method_callees(cls: type, prefix: str, only: str | None = None) -> list[Callee]:
    """The C methods of ``cls`` to wrap: on ``cls`` itself when it takes new attributes,
    else on its nearest Python subclasses that do (the methods they inherit)."""
    out = []
    for attr, raw in _methods(cls):
        if only is not None and attr != only:
            continue
        for owner in _owners(cls, attr):
            out.append(Callee(f"{prefix}.{attr}", owner, attr, raw))
    return out


def _owners(cls: type, attr: str) -> list[type]:
    if _mutable(cls):
        return [cls]
    out: list[type] = []
    sub: type
    for sub in cls.__subclasses__():
        if attr in vars(sub):
            continue  # overridden there: not this method any more
        out += _owners(sub, attr)
    return out


def module_callees(module: types.ModuleType) -> tuple[list[Callee], list[type]]:
    """The C functions ``module`` defines, and its types that have C methods."""
    callees: list[Callee] = []
    ctypes_: list[type] = []
    name = module.__name__
    for attr, value in sorted(vars(module).items()):
        if attr.startswith("__"):
            continue
        if is_c_function(value) and (getattr(value, "__self__", None) is module
                                     or getattr(value, "__module__", None) == name):
            callees.append(Callee(f"{name}.{attr}", module, attr, value))
        elif isinstance(value, type) and value.__module__ == name and any(_methods(value)):
            ctypes_.append(value)
    return callees, ctypes_


def _import_prefix(spec: str) -> tuple[types.ModuleType, list[str]]:
    """The longest importable module at the start of ``spec``, and the attribute path left."""
    parts = spec.split(".")
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        try:
            return importlib.import_module(modname), parts[i:]
        except ModuleNotFoundError as exc:
            if exc.name is not None and not modname.startswith(exc.name):
                raise InvalidArgument(f"memory target {spec!r}: importing {modname} failed: "
                                      f"{exc}; install what it needs") from None
            continue
        except Exception as exc:  # the module's own import raised
            raise InvalidArgument(f"memory target {spec!r}: importing {modname} raised "
                                  f"{type(exc).__name__}: {exc}") from None
    raise InvalidArgument(f"memory target {spec!r}: no module {parts[0]!r} can be imported "
                          "here; give the dotted name of a C extension module "
                          "(mypkg._speedups) or of a function in one (mypkg._speedups.dumps)")


def _c_modules_used(module: types.ModuleType) -> list[str]:
    """The extension modules whose functions ``module`` (or a submodule of it) holds."""
    found: set[str] = set()
    prefix = module.__name__ + "."
    mods = [module] + [m for n, m in list(sys.modules.items()) if n.startswith(prefix)]
    for mod in mods:
        for value in list(vars(mod).values()):
            owner = getattr(value, "__module__", None) if is_c_function(value) else None
            other = sys.modules.get(owner) if isinstance(owner, str) else None
            if isinstance(owner, str) and other is not None and is_extension(other):
                found.add(owner)
            if isinstance(value, types.ModuleType) and is_extension(value):
                found.add(value.__name__)
    found -= {"builtins", "sys", "_imp", "posix", "_io", "_thread", "_weakref", "_abc",
              "_codecs", "_signal", "_warnings", "_functools", "time", "_sre"} - {module.__name__}
    return sorted(found)


def resolve(spec: str) -> Target:
    """What ``spec`` names (see the module docstring).

    Raises:
        InvalidArgument: a malformed or unknown name, a Python module, a class, something
            not callable, or a method that cannot be wrapped; one line saying what to give.
    """
    if not isinstance(spec, str) or not _DOTTED.match(spec):
        raise InvalidArgument(f"memory target {spec!r} is not a dotted name; give a C "
                              "extension module (mypkg._speedups) or a function in one")
    module, rest = _import_prefix(spec)
    if not rest:
        return _module_target(spec, module)
    owner: Any = module
    value: Any = module
    for part in rest:
        owner = value
        try:
            value = getattr(value, part)
        except AttributeError:
            raise InvalidArgument(f"memory target {spec!r}: {module.__name__} has no "
                                  f"{'.'.join(rest)!r}; check the name") from None
    return _callable_target(spec, owner, rest[-1], value)


def _module_target(spec: str, module: types.ModuleType) -> Target:
    if not is_extension(module):
        used = _c_modules_used(module)
        hint = f" (it uses {', '.join(used)})" if used else ""
        raise InvalidArgument(f"memory target {spec!r} is a Python module "
                              f"({getattr(module, '__file__', '?')}), not a C extension; name "
                              f"the extension module{hint} or one of the functions that calls "
                              "into it")
    callees, ctypes_ = module_callees(module)
    methods = [c for t in ctypes_ for c in method_callees(t, _type_name(t))]
    if not callees and not methods:
        raise InvalidArgument(f"memory target {spec!r}: the extension module defines no "
                              "functions or methods that can be wrapped; name the Python "
                              "functions that call into it")
    return Target(spec, tuple(callees), tuple((t, None) for t in ctypes_))


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _callable_target(spec: str, owner: Any, attr: str, value: Any) -> Target:
    if isinstance(value, type):
        raise InvalidArgument(f"memory target {spec!r} is a class; name its methods "
                              f"({spec}.METHOD) or the module that defines it")
    if not callable(value):
        raise InvalidArgument(f"memory target {spec!r} is a {type(value).__name__}, not a "
                              "function; name a function or a method")
    if isinstance(owner, type):
        raw = vars(owner).get(attr, value)
        if _mutable(owner) or not any(a == attr for a, _ in _methods(owner)):
            return Target(spec, (Callee(spec, owner, attr, raw),))
        if not method_callees(owner, _type_name(owner), only=attr):
            raise InvalidArgument(f"memory target {spec!r}: the type {owner.__qualname__} "
                                  "cannot be changed and has no Python subclass to wrap "
                                  "it on; name the Python function that calls this method")
        return Target(spec, (), ((owner, attr),))
    return Target(spec, (Callee(spec, owner, attr, value),))


# -- putting the wrappers in place ---------------------------------------------------------
@dataclass
class Installation:
    """The wrappers in place for some targets; ``uninstall()`` puts the originals back."""

    targets: tuple[Target, ...]
    wrappers: dict[int, tuple[Any, Callable[..., Any]]] = field(default_factory=dict)
    patched: list[tuple[Any, str, Any]] = field(default_factory=list)
    _modules_seen: int = -1

    def __repr__(self) -> str:
        return (f"<Installation {', '.join(t.spec for t in self.targets)}: "
                f"{len(self.wrappers)} callables, {len(self.patched)} places>")

    def _wrapper_for(self, callee: Callee) -> Callable[..., Any]:
        known = self.wrappers.get(id(callee.original))
        if known is None or known[0] is not callee.original:
            known = self.wrappers[id(callee.original)] = (
                callee.original, _wrapper(callee.original, callee.name))
        return known[1]

    def _set(self, owner: Any, attr: str, wrapper: Callable[..., Any]) -> None:
        previous = vars(owner).get(attr) if isinstance(owner, type) else \
            getattr(owner, attr, None)
        if previous is wrapper:
            return
        setattr(owner, attr, wrapper)
        self.patched.append((owner, attr, previous))

    def place(self) -> None:
        """Wrap every target where it is defined (and on new subclasses of its C types)."""
        for target in self.targets:
            for callee in target.callees:
                self._set(callee.owner, callee.attr, self._wrapper_for(callee))
            for cls, only in target.types:
                for callee in method_callees(cls, _type_name(cls), only):
                    self._set(callee.owner, callee.attr, self._wrapper_for(callee))

    def rebind(self) -> None:
        """Wrap the targets in every module namespace imported since the last look."""
        if len(sys.modules) == self._modules_seen:
            return
        self._modules_seen = len(sys.modules)
        self.place()
        originals = dict(self.wrappers)
        for module in list(sys.modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict) or module.__name__.startswith("failpath."):
                continue
            for attr, value in list(namespace.items()):
                known = originals.get(id(value))
                if known is not None and known[0] is value:
                    self._set(module, attr, known[1])

    def uninstall(self) -> None:
        """Put every original back, in reverse order."""
        while self.patched:
            owner, attr, previous = self.patched.pop()
            if previous is None and isinstance(owner, type):
                delattr(owner, attr)
            else:
                setattr(owner, attr, previous)
        self._modules_seen = -1


def install(specs: list[str]) -> Installation:
    """Resolve ``specs`` and wrap them everywhere a module holds them.

    Raises:
        InvalidArgument: a target :func:`resolve` rejects.
    """
    inst = Installation(tuple(resolve(s) for s in specs))
    inst.rebind()
    return inst
