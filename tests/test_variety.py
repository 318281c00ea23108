"""Error variety: narrow handlers get units raising the errno they name."""

from __future__ import annotations

import os
import textwrap
from typing import Any

from failpath.proof.static import scan, scan_source
from failpath.proof.variety import handler_errnos, variety_units

SCANME = os.path.join(os.path.dirname(__file__), "projects", "scanme")


def unit(line: int, action: str = "raise(EIO)", test: str = "t::a",
         mode: str = "transient") -> dict[str, Any]:
    return {"test": test, "nth": 1, "mode": mode, "action": action,
            "point": {"tag": f"scanme.store:f:{line}", "file": "scanme/store.py",
                      "line": line}}


def test_units_feeding_narrow_handlers_get_their_errno() -> None:
    units = [unit(12), unit(14), unit(22, action="raise(ENOENT)"), unit(33)]
    assert variety_units(scan(SCANME), units) == [
        {"test": "t::a", "nth": 1, "tag": "scanme.store:f:14", "errno": "EACCES",
         "action": "raise(EACCES)", "handler_file": "scanme/store.py", "handler_line": 15},
        {"test": "t::a", "nth": 1, "tag": "scanme.store:f:33", "errno": "ENOENT",
         "action": "raise(ENOENT)", "handler_file": "scanme/store.py", "handler_line": 34},
    ]


def test_short_writes_and_second_modes_add_nothing() -> None:
    units = [unit(14, action="short"), unit(14, mode="transient"), unit(14, mode="persistent")]
    added = variety_units(scan(SCANME), units)
    assert [(a["tag"], a["errno"]) for a in added] == [("scanme.store:f:14", "EACCES")]


def test_points_outside_the_try_body_are_not_fed() -> None:
    assert variety_units(scan(SCANME), [unit(16), unit(12)]) == []


def test_errnos_of_tuples_dotted_names_and_errno_checks() -> None:
    handlers = scan_source(textwrap.dedent("""\
        import errno, builtins
        try:
            f()
        except (ConnectionResetError, builtins.TimeoutError):
            pass
        except OSError as e:
            if e.errno in (errno.EXDEV, errno.EACCES):
                raise
        except ValueError:
            pass
        finally:
            g()
        """)).handlers
    assert [handler_errnos(h) for h in handlers] == [
        ("ECONNRESET", "ETIMEDOUT"), ("EXDEV", "EACCES"), (), ()]


def test_flat_unit_dicts_are_accepted() -> None:
    flat = {"test": "t::b", "nth": 2, "tag": "x:y:14", "file": "scanme/store.py", "line": 14}
    [added] = variety_units(scan(SCANME), [flat])
    assert (added["test"], added["nth"], added["errno"]) == ("t::b", 2, "EACCES")
