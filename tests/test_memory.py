"""Memory sweeps: real allocation failures inside C calls (docs/memory.md).

The allocator hook and its counter, the wrappers on C callables, each memory rule alone,
the plan, the standalone reproducer, and end to end: the corpus extension
(tests/corpus/memory, built here with setuptools) swept, each planted bug found and
classified, nothing else reported, a crash replayed and its script run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from failpath.errors import InvalidArgument
from failpath.stdlib import ccalls, nomemory
from failpath.sweep import memory
from failpath.sweep.classify import LEAK_BLOCKS, classify
from failpath.sweep.memplan import MemoryPlanner
from failpath.sweep.records import Evidence, MemoryFacts
from failpath.sweep.replay import source_of

CORPUS = Path(__file__).parent / "corpus" / "memory"

needs_testcapi = pytest.mark.skipif(nomemory.problem() is not None,
                                    reason="this interpreter cannot fail real allocations")


# -- the allocator hook ----------------------------------------------------------------------
@needs_testcapi
def test_counter_counts_the_allocations_of_a_call():
    ok, value = memory._armed(bytearray, (100,), {}, 0, False)
    assert ok and value == bytearray(100)
    assert nomemory.count() >= 1


@needs_testcapi
def test_nth_allocation_fails_once_and_the_call_says_memoryerror():
    ok, value = memory._armed(bytearray, (100,), {}, 1, False)
    assert not ok and isinstance(value, MemoryError)
    ok, value = memory._armed(bytearray, (100,), {}, 50, False)
    assert ok  # bytearray(100) never makes a 50th allocation
    assert nomemory.count() < 50


def test_missing_testcapi_is_one_line_naming_the_interpreter(monkeypatch):
    monkeypatch.setitem(sys.modules, "_testcapi", None)
    monkeypatch.setattr(nomemory, "_probed", False)
    monkeypatch.setattr(nomemory, "_problem", None)
    problem = nomemory.problem()
    assert problem is not None and "\n" not in problem
    assert problem.startswith("failpath sweep --memory needs CPython's _testcapi module")
    assert sys.executable in problem and "pyenv" in problem
    with pytest.raises(InvalidArgument, match=r"^failpath sweep --memory needs"):
        memory.require_nomemory()


# -- naming and wrapping targets ---------------------------------------------------------------
@pytest.mark.parametrize(("spec", "message"), [
    ("nosuch_mod_xyz", r"^memory target 'nosuch_mod_xyz': no module 'nosuch_mod_xyz' can be "
                       r"imported here; give the dotted name of a C extension module"),
    ("json", r"^memory target 'json' is a Python module \(.*json/__init__\.py\), not a C "
             r"extension; name the extension module"),
    ("_json.nosuch", r"^memory target '_json.nosuch': _json has no 'nosuch'; check the name"),
    ("_json.make_scanner", r"^memory target '_json.make_scanner' is a class; name its methods"),
    ("json..loads", r"^memory target 'json..loads' is not a dotted name"),
    ("_struct.Struct.pack", r"^memory target '_struct.Struct.pack': the type Struct cannot "
                            r"be changed"),
])
def test_bad_target_is_refused_in_one_line(spec, message):
    import _struct

    if spec.startswith("_struct.") and _struct.Struct.__subclasses__():
        pytest.skip("something here subclasses _struct.Struct: its methods can be wrapped")
    with pytest.raises(InvalidArgument, match=message):
        ccalls.resolve(spec)


def test_extension_target_names_its_c_functions():
    target = ccalls.resolve("_json")
    assert {c.name for c in target.callees} >= {"_json.scanstring",
                                                "_json.encode_basestring_ascii"}


def test_install_wraps_every_reference_and_uninstall_restores_them():
    import _json
    import importlib
    import json

    # the module as sys.modules holds it (an earlier test may have re-imported the package)
    decoder = importlib.import_module("json.decoder")
    original = _json.scanstring
    inst = ccalls.install(["_json.scanstring"])
    try:
        assert _json.scanstring is not original
        assert decoder.c_scanstring is _json.scanstring  # `from _json import ...`
        assert _json.scanstring.__wrapped__ is original
        assert json.loads('"abc"') == "abc"  # disarmed: straight through
    finally:
        inst.uninstall()
    assert _json.scanstring is original and decoder.c_scanstring is original


def test_armed_wrapper_hands_the_call_and_its_caller_to_the_hook():
    import _json

    seen: list[tuple[str, str]] = []

    def hook(name: str, original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seen.append((name, sys._getframe(2).f_code.co_name))
        return ccalls.through(original, args, kwargs)

    inst = ccalls.install(["_json.scanstring"])
    ccalls.set_hook(hook)
    try:
        assert _json.scanstring('"x"', 1) == ("x", 3)
    finally:
        ccalls.set_hook(None)
        inst.uninstall()
    assert seen == [("_json.scanstring",
                     "test_armed_wrapper_hands_the_call_and_its_caller_to_the_hook")]


# -- the rules, each alone ---------------------------------------------------------------------
def _judge(died: str | None = None, **facts: Any) -> tuple[str, str]:
    mem = MemoryFacts(**{"n": 3, "allocations": 5, **facts})
    status = died or ("passed" if mem.returned else "failed")
    ev = Evidence(fired=True, status=status, exit="killed by SIGSEGV" if died else None,
                  point_cls=memory.POINT_CLASS, injected="allocation 3 of f() failed",
                  memory=mem)
    result = classify(ev)
    return result.outcome, result.reason


def test_a_memoryerror_at_the_boundary_is_propagated():
    assert _judge(exc_type="MemoryError", exc_text="MemoryError",
                  memory_chained=True)[0] == "propagated"


def test_an_error_chained_from_a_memoryerror_is_propagated():
    assert _judge(exc_type="ValueError", exc_text="ValueError: bad",
                  memory_chained=True)[0] == "propagated"


def test_a_parse_error_saying_out_of_memory_is_propagated():
    assert _judge(exc_type="ParseError", exc_text="ParseError: out of memory: line 1",
                  says_oom=True)[0] == "propagated"


def test_another_exception_instead_of_memoryerror_is_mishandled():
    outcome, reason = _judge(exc_type="TypeError", exc_text="TypeError: expected a sequence")
    assert outcome == "mishandled"
    assert reason.startswith("the call raised TypeError: expected a sequence where the failed "
                             "allocation should have been a MemoryError")


def test_the_exception_the_call_raises_anyway_is_not_a_bug():
    assert _judge(exc_type="ValueError", exc_text="ValueError: x",
                  clean="ValueError: x")[0] == "recovered"


def test_a_contract_systemerror_is_mishandled_even_chained_from_memoryerror():
    outcome, reason = _judge(exc_type="SystemError", memory_chained=True,
                             exc_text="SystemError: <f> returned a result with an exception set",
                             contract="<f> returned a result with an exception set")
    assert outcome == "mishandled" and "C-API's error contract" in reason


def test_a_call_that_succeeds_recovered():
    assert _judge(returned=True)[0] == "recovered"


def test_unreferenced_objects_left_are_a_leak():
    outcome, reason = _judge(exc_type="MemoryError", exc_text="MemoryError",
                             memory_chained=True, leaked_objects=("list of 3",))
    assert outcome == "leaked" and "list of 3" in reason


def test_a_block_or_two_more_is_not_a_leak_by_itself():
    assert _judge(exc_type="MemoryError", exc_text="MemoryError", memory_chained=True,
                  leaked_blocks=LEAK_BLOCKS - 1)[0] == "propagated"
    assert _judge(exc_type="MemoryError", exc_text="MemoryError", memory_chained=True,
                  leaked_blocks=LEAK_BLOCKS)[0] == "leaked"


def test_a_call_that_never_reached_n_is_unreached():
    assert _judge(returned=True, allocations=2)[0] == "unreached"


def test_a_signal_is_crashed():
    assert _judge(died="crashed")[0] == "crashed"


def test_returning_where_the_clean_call_raises_is_swallowed():
    assert _judge(returned=True, clean="KeyError: 'x'")[0] == "swallowed"


# -- the plan and the reproducer ---------------------------------------------------------------
def _baseline(allocs: list[int]) -> list[dict[str, Any]]:
    hit = {"tag": "m:f:1#mem:x.f", "name": "mem:x.f", "cls": memory.POINT_CLASS, "module": "m",
           "function": "f", "file": "/r/m.py", "line": 1, "count": len(allocs),
           "allocs": allocs, "seconds": 0.001, "target": "x.f"}
    return [{"test": "t.py::test", "status": "passed", "duration": 0.01, "hits": [hit]}]


def _settings(**kw: Any) -> dict[str, Any]:
    return {"select": "sites", "per_site": 3, "max_hits": 0, "budget": 0.0, "mode": "transient",
            "seed": 0, **kw}


def test_plan_fails_every_allocation_of_a_small_call_and_a_few_past_it():
    units = list(MemoryPlanner(_baseline([5]), _settings(), "/r").units())
    assert [u.action for u in units] == [f"nomem({n})" for n in range(1, 8)]
    assert all(u.nth == 1 and u.memory is not None and u.memory.allocations == 5
               for u in units)


def test_plan_spreads_the_budget_over_a_big_call():
    units = list(MemoryPlanner(_baseline([1000]), _settings(max_hits=5), "/r").units())
    assert [memory.allocation_of(u.action) for u in units] == [1, 251, 501, 750, 1000]


def test_plan_both_modes():
    units = list(MemoryPlanner(_baseline([1]), _settings(mode="both"), "/r").units())
    assert {u.mode for u in units} == {"transient", "persistent"}


def test_arguments_are_written_as_literals_else_pickled_else_marked():
    assert source_of({"a": [1, 2.5, b"x"]}) == ("{'a': [1, 2.5, b'x']}", True)
    text, ok = source_of(float("nan"))
    assert ok and text.startswith("pickle.loads(base64.b64decode(")
    text, ok = source_of(lambda: 0)
    assert not ok and "could not be written out" in text


# -- end to end --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def memext(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if nomemory.problem() is not None:
        pytest.skip("this interpreter cannot fail real allocations")
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    root = tmp_path_factory.mktemp("memext") / "memory"
    shutil.copytree(CORPUS, root, ignore=shutil.ignore_patterns(".failpath", "build", "*.so"))
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=root,
                   check=True, capture_output=True, timeout=300)
    return root


def _sweep(root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    out = root / "result.json"
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", str(root), "--json",
                           str(out), "--quiet", *args], capture_output=True, text=True,
                          timeout=600)
    result = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, result, proc.stdout + proc.stderr


#: The corpus's planted bugs: function -> the one class its units may be reported as.
PLANTED = {"pair": "crashed", "join_words": "mishandled", "scale": "mishandled",
           "squares": "leaked"}


@pytest.mark.slow
def test_sweep_finds_each_planted_bug_and_nothing_else(memext: Path):
    code, result, output = _sweep(memext)
    assert code == 1, output
    found: dict[str, set[str]] = {}
    for unit in result["units"]:
        function = unit["point"]["name"].rsplit(".", 1)[-1]
        if unit["bug"]:
            found.setdefault(function, set()).add(unit["outcome"])
            assert unit["memory"]["script"].startswith('"""Allocation-failure reproducer')
            assert unit["reproducer"] == f"failpath replay '{unit['id']}'"
    # CPython's PyErr_Format turns a message whose formatting failed for memory into a bare
    # ValueError() (3.10, and 3.11 up to at least 3.11.2, Debian bookworm's): a bug of the
    # interpreter, not of the corpus, recognised by that bare exception
    apply_finals = {u["final"] for u in result["units"]
                    if u["bug"] and u["point"]["name"].endswith(".apply")}
    if found.get("apply") == {"mishandled"} and apply_finals == {"ValueError"}:
        del found["apply"]
    assert found == {f: {c} for f, c in PLANTED.items()}
    crash = next(u for u in result["units"] if u["outcome"] == "crashed")
    assert "Fatal Python error: Segmentation fault" in crash["traceback"]
    assert "test_pair" in crash["traceback"]
    if shutil.which("gdb"):  # the traced call crashed again under gdb, which showed where
        c_stack = crash["traceback"].split("C stack (gdb):\n", 1)[1]
        assert c_stack.startswith("#0 ") or c_stack.startswith("(gdb showed no stack)")


@pytest.mark.slow
def test_replay_reproduces_a_crash_and_its_script_runs_alone(memext: Path, tmp_path: Path):
    code, result, _ = _sweep(memext)
    crash = next(u for u in result["units"] if u["outcome"] == "crashed")
    script = tmp_path / "repro.py"
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "replay", crash["id"],
                           "--script", str(script)], cwd=memext, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "replayed  crashed: killed by SIGSEGV" in proc.stdout
    env = dict(os.environ, PYTHONPATH=str(memext / "src"))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 1 and "died of signal 11" in run.stdout


@pytest.mark.slow
def test_unknown_memory_target_is_a_usage_error_in_one_line(tmp_path: Path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    code, _, output = _sweep(tmp_path, "--memory", "nosuch_mod_xyz._speedups")
    assert code == 2
    line = output.strip().splitlines()[-1]
    assert line.startswith("failpath: error: memory target 'nosuch_mod_xyz._speedups': no "
                           "module 'nosuch_mod_xyz' can be imported here")


def test_sweep_without_testcapi_says_so_in_one_line(tmp_path: Path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['_testcapi'] = None\n")
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    proc = subprocess.run([sys.executable, "-m", "failpath.cli", "sweep", str(tmp_path),
                           "--memory", "_json", "--quiet"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(hide)), timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("failpath: error: failpath sweep --memory needs CPython's "
                                  "_testcapi module")
