"""failpath: fail every fallible operation once, on its own, and prove the error paths work.

The public API is ``__all__``. Note that ``failpath.points`` is the *function* listing
points; the module implementing them is imported as ``from failpath.points import ...``.
"""

from __future__ import annotations

from failpath import gfp
from failpath.alloc import Allocation, Allocator
from failpath.arming import Armed, PointInfo, Rule, configure, control, disarm, inject, points
from failpath.errors import (
    AllocationWarning,
    AllocatorStall,
    FailpathError,
    InjectedFault,
    InvalidArgument,
    MempoolDeadlock,
    PolicyError,
    PolicyWarning,
    QueryError,
    ScopeError,
    SpecError,
)
from failpath.gfp import Gfp
from failpath.mempool import Mempool
from failpath.points import Injection, counting, fallible, injection_of, point
from failpath.tags import Tag
from failpath.triggers import Trigger

__version__ = "0.1.0"

__all__ = [
    "AllocationWarning",
    "Allocation",
    "Allocator",
    "AllocatorStall",
    "Armed",
    "FailpathError",
    "Gfp",
    "InjectedFault",
    "Injection",
    "InvalidArgument",
    "Mempool",
    "MempoolDeadlock",
    "PointInfo",
    "PolicyError",
    "PolicyWarning",
    "QueryError",
    "Rule",
    "ScopeError",
    "SpecError",
    "Tag",
    "Trigger",
    "__version__",
    "configure",
    "control",
    "counting",
    "disarm",
    "fallible",
    "gfp",
    "inject",
    "injection_of",
    "point",
    "points",
]

from failpath.arming import configure_from_env as _configure_from_env

_configure_from_env()
