"""What a failure leaves: file listings and their comparison, the boundary, the state probe."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from failpath.sweep import aftermath, boundary, damage, isolation, probe
from failpath.sweep.evidence import Scope
from loading import load_module

PROJECT = '''
import json, os, sys

class Table:
    """An SQLite table whose failed insert is rolled back: SQLite writes the old pages back."""
    def __init__(self, path, after):
        import sqlite3
        self.conn, self.after = sqlite3.connect(path, isolation_level=None), after
        self.conn.execute("pragma journal_mode = delete")
        self.conn.execute("create table t (x)")
    def insert(self, rows):
        frame = sys._getframe()
        self.after.note_hit("db:execute", frame)
        self.conn.execute("begin")
        self.conn.execute("insert into t values (?)", ("x" * 5000,))
        self.conn.execute("pragma cache_size = 1")  # spill: the file itself changes
        self.conn.executemany("insert into t values (?)", [("y" * 3000,)] * rows)
        self.after.mark_fault(frame)
        self.conn.execute("rollback")
        raise OSError(5, "Input/output error")

class Rewriter:
    """tinydb's shape: the whole file rewritten in place, calls marking their operations
    as the agent's hook does."""
    def __init__(self, path, after):
        self.path, self.after = path, after
    def drop(self):
        self.after.note_hit("io:open", sys._getframe())
        with open(self.path, "w") as fh:
            fh.write("{}")
    def insert(self, fail_at, meanwhile=None):
        frame = sys._getframe()
        self.after.note_hit("io:read", frame)
        if fail_at == "read":
            self.after.mark_fault(frame)
            raise OSError(5, "Input/output error")
        if fail_at == "flush":  # a buffered write not flushed yet: the file is unchanged
            self.after.note_hit("io:write", frame)
            meanwhile()
            self.after.mark_fault(frame)
            raise OSError(28, "No space left on device")
        self.after.note_hit("io:open", frame)
        with open(self.path, "w") as fh:
            fh.write('{"_default"')
        self.after.mark_fault(frame)
        raise OSError(28, "No space left on device")

class Counter:
    """put() counts before it writes: a failed write is still counted."""
    def __init__(self, root):
        self.root, self.count = root, 0
    def put(self, text, fail=None):
        self.count += 1
        path = os.path.join(self.root, f"item-{self.count}")
        with open(path, "w") as fh:
            fh.write(text)
        if fail is not None and fail:
            fail.pop()
            raise OSError(5, "Input/output error")
        return self.count

class Stopped:
    def __init__(self):
        self.error = None
    def put(self, text, fail=None):
        if self.error is not None:
            raise RuntimeError(f"stopped after {self.error}")
        if fail:
            fail.pop()
            self.error = OSError(5, "Input/output error")
            raise self.error
        return 1

def api(store, fail):
    return store.put("x", fail)

FRAMES = []

def flush_pending(pending):
    """Drops what it inherited in another process, as connection pools do."""
    FRAMES.append(sys._getframe())
    if os.getpid() != pending["pid"]:
        pending["items"] = []
    if len(FRAMES) == 1:
        raise OSError(5, "Input/output error")
    return len(pending["items"])

def gen():
    yield 1

class StoreTestCases:
    """Test code shipped in the package (a mixin a suite subclasses)."""
    def test_put(self, store, fail):
        return api(store, fail)
    def test_direct(self, where):
        return where()
    def _test_helper(self, store, fail):
        return api(store, fail)
    def assert_put(self, where):
        return where()

class Testament:
    """Not a test class: a name that only begins with the word."""
    def read(self, where):
        return where()
'''


def load(root: Path) -> types.ModuleType:
    (root / "proj").mkdir()
    path = root / "proj" / "code.py"
    path.write_text(PROJECT)
    return load_module(path, "damage_code")


@pytest.fixture
def code(tmp_path: Path) -> Any:
    module = load(tmp_path)
    module.SCOPE = Scope(str(tmp_path / "proj"))
    return module


# -- listings -------------------------------------------------------------------------------
def test_a_listing_names_the_tests_tmp_dir_the_same_in_every_run(tmp_path: Path) -> None:
    for n in (0, 1):
        own = tmp_path / f"test_x{n}"
        (own / "sub").mkdir(parents=True)
        (own / "sub" / "f").write_text("data")
        found = damage.listing(damage.Places(owned=(str(own),)))
        assert found == {"<tmp:test_x>/sub": "dir",
                         "<tmp:test_x>/sub/f": damage.digest(str(own / "sub" / "f"))}


def test_in_a_shared_directory_only_the_written_paths_are_listed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "mine").write_text("m")
    (shared / "theirs").write_text("t")
    found = damage.listing(damage.Places(written=(str(shared / "mine"),)))
    assert set(found) == {str(shared / "mine")}
    made = damage.Places(written=(str(shared), str(shared / "mine")))  # the test made it
    assert damage.listing(made) == {str(shared): "dir",
                                    str(shared / "mine"): damage.digest(str(shared / "mine")),
                                    str(shared / "theirs"): damage.digest(str(shared / "theirs"))}


def test_digests_tell_content_and_size_apart(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("abc")
    (tmp_path / "b").write_text("abd")
    assert damage.digest(str(tmp_path / "a")) != damage.digest(str(tmp_path / "b"))
    assert damage.size_of(damage.digest(str(tmp_path / "a"))) == 3
    assert damage.digest(str(tmp_path / "nope")) == "missing"
    assert damage.digest("/dev/null") == "special"


def test_a_settled_file_is_read_once_until_it_changes(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    path.write_text("abc")
    reads: list[str] = []
    real = damage._read_digest
    monkeypatch.setattr(damage, "_read_digest", lambda p, st: reads.append(p) or real(p, st))
    now = damage._wall_ns()
    monkeypatch.setattr(damage, "_wall_ns", lambda: now + 10 * damage.SETTLED_NS)
    first = damage.digest(str(path))
    assert damage.digest(str(path)) == first and len(reads) == 1
    path.write_text("abcd")  # changed: read again
    assert damage.digest(str(path)) != first and len(reads) == 2


def test_a_file_read_in_the_tick_it_changed_in_is_read_again(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """A change in the same coarse tick keeps its whole stat key: only its content tells
    it, so a file that had not settled is never taken from the cache."""
    path = tmp_path / "f"
    path.write_text("abc")
    reads: list[str] = []
    real = damage._read_digest
    monkeypatch.setattr(damage, "_read_digest", lambda p, st: reads.append(p) or real(p, st))
    changed = max(os.lstat(path).st_mtime_ns, os.lstat(path).st_ctime_ns)
    monkeypatch.setattr(damage, "_wall_ns", lambda: changed + damage.SETTLED_NS // 2)
    damage.digest(str(path))
    damage.digest(str(path))
    assert len(reads) == 2


def test_a_file_system_keeping_whole_seconds_makes_a_file_settle_later() -> None:
    """A file stamped in whole seconds may change again within the same second and keep
    its times: it settles only after two seconds, a finely stamped one after 50 ms."""
    second = 1_000_000_000
    coarse = os.stat_result((0o100644, 1, 1, 1, 0, 0, 3, 0, 0, 0,
                             0.0, 0.0, 0.0, 0, 7 * second, 7 * second))
    fine = os.stat_result((0o100644, 1, 1, 1, 0, 0, 3, 0, 0, 0,
                           0.0, 0.0, 0.0, 0, 7 * second + 1234, 7 * second + 1234))
    later = 7 * second + 3 * damage.SETTLED_NS
    assert damage.settled(fine, later)
    assert not damage.settled(coarse, later)
    assert damage.settled(coarse, 7 * second + damage.COARSE_SETTLED_NS + 1)


def test_an_empty_file_under_proc_is_special_not_empty() -> None:
    assert damage.digest("/proc/self/status") == "special"


# -- judging --------------------------------------------------------------------------------
OLD, NEW, HALF = "sha1:10:aaa", "sha1:12:bbb", "sha1:4:ccc"


def test_a_file_only_the_faulted_run_made_before_the_fault_is_an_orphan() -> None:
    found = damage.judge({"d/tmp1": HALF}, {}, {}, made={"d/tmp1"})
    assert found.orphans == ("file left: d/tmp1 (4 bytes)",)
    assert damage.judge({"d/tmp1": HALF}, {}, {}, made=set()).orphans == ()  # a report
    assert damage.judge({"d/tmp1": HALF}, {}, {}, released="d/tmp1",
                        made={"d/tmp1"}).orphans == ()  # the failed unlink's own file


def test_a_file_that_was_there_when_the_failing_call_began_is_not_its_orphan() -> None:
    # a failed move leaves its source where it was; the clean run moved it away
    found = damage.judge({"src/a.txt": NEW}, {}, {}, made={"src/a.txt"}, existed={"src/a.txt"})
    assert found.orphans == ()


def test_the_same_file_under_another_random_name_is_not_an_orphan() -> None:
    found = damage.judge({"d/tmpAB": NEW}, {"d/tmpXY": NEW}, {}, made={"d/tmpAB"})
    assert found.orphans == ()


def test_an_existing_file_left_neither_old_nor_new_is_torn() -> None:
    found = damage.judge({"idx": HALF}, {"idx": NEW}, {"idx": OLD}, made={"idx"})
    assert len(found.torn) == 1 and "neither what it held before" in found.torn[0]
    assert damage.judge({"idx": OLD}, {"idx": NEW}, {"idx": OLD}, made={"idx"}).torn == ()
    assert damage.judge({"idx": HALF}, {"idx": NEW}, {"idx": "missing"},
                        made={"idx"}).torn == ()  # a new file left short: not judged
    same_size = "sha1:12:zzz"
    assert damage.judge({"idx": same_size}, {"idx": NEW}, {"idx": OLD},
                        made={"idx"}).torn == ()  # a timestamp differs between runs


def test_an_append_cut_short_kept_what_the_file_held_and_is_not_torn(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("abc")
    before = damage.digest(str(log))
    with open(log, "a") as fh:
        fh.write("d")  # a short append: one byte of "def" reached the file
    assert damage.still_begins_with(str(log), before)
    half = damage.digest(str(log))
    assert damage.judge({"log": half}, {"log": "sha1:6:fff"}, {"log": before}, made={"log"},
                        kept={"log"}).torn == ()
    assert len(damage.judge({"log": half}, {"log": "sha1:6:fff"}, {"log": before},
                            made={"log"}).torn) == 1
    log.write_text("abd!")  # rewritten in place: the old content is gone, though it grew
    assert not damage.still_begins_with(str(log), before)
    log.write_text("ab")  # truncated
    assert not damage.still_begins_with(str(log), before)
    assert not damage.still_begins_with(str(tmp_path / "gone"), before)


# -- the boundary ---------------------------------------------------------------------------
def test_the_boundary_is_the_outermost_project_frame_and_its_end_is_seen(code: Any) -> None:
    seen: list[tuple[str, Any]] = []
    watch = boundary.Watch()

    class Probe:
        def put(self, text: str, fail: Any) -> int:
            frame = boundary.find(sys._getframe(1), code.SCOPE)
            assert frame is not None and frame.f_code.co_name == "api"
            watch.await_end(frame, lambda f, how, value: seen.append((how, value)))
            if fail:
                raise OSError(5, "x")
            return 7

    assert code.api(Probe(), None) == 7
    with pytest.raises(OSError):
        code.api(Probe(), [1])
    assert seen == [("returned", 7), ("raised", None)]
    assert sys.getprofile() is None


class _CTracerLike:
    """A trace function that is not a Python function or method, as coverage.py's CTracer:
    the interpreter then never calls a frame's ``f_trace``, so the watch cannot share it."""

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        return None


@pytest.mark.parametrize("mode", ["monitoring", "trace", "shared", "profile"])
def test_a_frames_end_is_seen_whichever_way_the_watch_listens(mode: str) -> None:
    monitoring = getattr(sys, "monitoring", None)
    if mode == "monitoring" and monitoring is None:
        pytest.skip("sys.monitoring is Python 3.12+")
    taken = []  # every tool id taken: the watch falls back to a trace or profile hook
    if mode != "monitoring" and monitoring is not None:
        taken = [t for t in range(6) if monitoring.get_tool(t) is None]
        for tool in taken:
            monitoring.use_tool_id(tool, "test")
    seen: list[tuple[str, str]] = []  # the shared tracer's events, passed on by the watch

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_name in ("gen", "value", "fail"):
            seen.append((frame.f_code.co_name, event))
            return local
        return None

    def local(frame: Any, event: str, arg: Any) -> Any:
        seen.append((frame.f_code.co_name, event))
        return local

    previous = sys.gettrace()
    try:
        sys.settrace({"shared": tracer, "profile": _CTracerLike()}.get(mode))
        watch = boundary.Watch()
        ended: list[tuple[str, str, Any]] = []
        hooks: list[Any] = []

        def awaited(name: str) -> None:
            watch.await_end(sys._getframe(1), lambda f, how, v: ended.append((name, how, v)))
            hooks.append((sys.getprofile(), sys.gettrace(), repr(watch)))

        def gen() -> Any:
            awaited("gen")
            yield 1
            yield 2

        def value() -> int:
            awaited("value")
            return 3

        def fail() -> None:
            awaited("fail")
            raise ValueError("x")

        assert list(gen()) == [1, 2] and value() == 3  # a yield is not its end
        with pytest.raises(ValueError):
            fail()
        tracing = sys.gettrace()
        sys.settrace(previous)
        assert ended == [("gen", "returned", None), ("value", "returned", 3),
                         ("fail", "raised", None)]
        if mode == "monitoring":  # nothing on every call: only the awaited code's returns
            assert all(p is None and "monitoring" in text for p, _t, text in hooks)
            assert "failpath-boundary" not in [monitoring.get_tool(t) for t in range(6)]
        elif mode == "profile":  # a C tracer: every call and return through the profile hook
            assert all(p is not None and "profile" in text for p, _t, text in hooks)
        else:  # a generator's frame by the profile hook, the others by their own f_trace
            assert [text.split("(")[1] for _p, _t, text in hooks] == [
                "profile)>", "trace)>", "trace)>"]
            assert hooks[1][0] is None and hooks[2][0] is None
            if mode == "trace":  # no tracer: the watch's own, which traces no other frame
                assert hooks[1][1] is boundary._no_call and tracing is None
            else:  # the test's tracer stays, and still gets its frames' events
                assert hooks[1][1] is tracer and tracing is tracer
                assert ("value", "return") in seen and ("fail", "exception") in seen
                assert ("fail", "return") in seen
        assert sys.getprofile() is None  # let go once nothing is awaited
    finally:
        sys.settrace(previous)
        for tool in taken:
            monitoring.free_tool_id(tool)


def test_a_frame_awaited_by_a_shared_tracer_is_handed_to_the_profile_hook_before_it_ends(
        ) -> None:
    # the hidden-error watch's tracer ends when the child's report begins: a boundary
    # still awaited then is seen by the profile hook, and the frame's f_trace is its own
    monitoring = getattr(sys, "monitoring", None)
    taken = [t for t in range(6) if monitoring is not None and monitoring.get_tool(t) is None]
    for tool in taken:
        monitoring.use_tool_id(tool, "test")

    def tracer(frame: Any, event: str, arg: Any) -> None:
        return None

    previous = sys.gettrace()
    watch = boundary.Watch()
    ended: list[str] = []
    states: list[tuple[Any, str]] = []
    try:
        sys.settrace(tracer)

        def call() -> int:
            watch.await_end(sys._getframe(), lambda f, how, v: ended.append(how))
            states.append((sys._getframe().f_trace, repr(watch)))
            watch.untrace()
            sys.settrace(None)  # the tracer ends, as the hidden-error watch's does
            states.append((sys._getframe().f_trace, repr(watch)))
            return 1

        assert call() == 1
    finally:
        sys.settrace(previous)
        for tool in taken:
            monitoring.free_tool_id(tool)
    assert ended == ["returned"]
    assert states[0][0] is not None and "trace" in states[0][1]
    assert states[1][0] is None and "profile" in states[1][1]
    assert sys.getprofile() is None


def test_a_cancelled_watch_gives_the_frames_their_trace_back_and_can_await_them_again(
        ) -> None:
    # a unit's child forked while the parent awaited a boundary by its f_trace: the child
    # cancels the parent's watch, then awaits the same frame for its own failed call
    monitoring = getattr(sys, "monitoring", None)
    taken = [t for t in range(6) if monitoring is not None and monitoring.get_tool(t) is None]
    for tool in taken:
        monitoring.use_tool_id(tool, "test")
    watch = boundary.Watch()
    ended: list[str] = []
    states: list[Any] = []
    previous = sys.gettrace()
    try:
        sys.settrace(None)

        def call() -> int:
            here = sys._getframe()
            watch.await_end(here, lambda f, how, v: ended.append("parent"))
            watch.cancel()
            states.append((here.f_trace, sys.gettrace(), repr(watch)))
            watch.await_end(here, lambda f, how, v: ended.append("child"))
            return 1

        assert call() == 1
    finally:
        sys.settrace(previous)
        for tool in taken:
            monitoring.free_tool_id(tool)
    assert ended == ["child"]
    assert states == [(None, None, "<boundary.Watch awaiting 0 (idle)>")]
    assert sys.gettrace() is previous and sys.getprofile() is None


def test_test_code_in_the_package_is_not_a_boundary(code: Any) -> None:
    class Probe:
        def put(self, text: str, fail: Any) -> str:
            frame = boundary.find(sys._getframe(1), code.SCOPE)
            return "none" if frame is None else frame.f_code.co_name

    assert code.api(Probe(), None) == "api"
    assert code.StoreTestCases().test_put(Probe(), None) == "api"  # not the test method
    assert code.StoreTestCases().test_direct(
        lambda: boundary.find(sys._getframe(1), code.SCOPE)) is None
    # a test's helper and a test class's other methods are test code too
    assert code.StoreTestCases()._test_helper(Probe(), None) == "api"
    where = code.Testament().read(lambda: boundary.find(sys._getframe(1), code.SCOPE))
    assert where is not None and where.f_code.co_name == "read"
    if sys.version_info >= (3, 11):  # the class is known from co_qualname
        assert code.StoreTestCases().assert_put(
            lambda: boundary.find(sys._getframe(1), code.SCOPE)) is None


# -- the probe ------------------------------------------------------------------------------
@pytest.fixture
def recording() -> Any:
    """As in an agent: the files group installed and the recorder on (the retry's writes
    are then known, and undone)."""
    from failpath import stdlib

    installation = stdlib.install(["files"])
    stdlib.recorder.start()
    try:
        yield stdlib.recorder
    finally:
        stdlib.recorder.stop()
        stdlib.recorder.clear()
        installation.uninstall()

def _frame_of(code: Any, obj: Any, *args: Any) -> tuple[Any, Any]:
    """Run obj.put(*args) and keep its frame when it ends (as the agent does)."""
    kept: dict[str, Any] = {}
    watch = boundary.Watch()
    original = obj.put

    def put(*a: Any) -> Any:
        watch.await_end(sys._getframe(1), lambda f, how, value: kept.update(frame=f))
        return original(*a)

    obj.put = put
    try:
        value = code.api(obj, *args)
    except OSError:
        value = None
    obj.put = original
    return kept.get("frame"), value


def test_function_and_arguments_are_recovered_from_a_frame(code: Any, tmp_path: Path) -> None:
    store = code.Counter(str(tmp_path))
    frame, _ = _frame_of(code, store, None)
    assert probe.function_of(frame) is code.api
    assert probe.arguments_of(frame) == ((store, None), {})


def test_a_failed_call_that_still_counted_shows_in_the_retry(code: Any, tmp_path: Path,
                                                            recording: Any) -> None:
    store = code.Counter(str(tmp_path / "s"))
    (tmp_path / "s").mkdir()
    frame, _ = _frame_of(code, store, [1])  # the first put writes item-1, then fails
    places = damage.Places(written=(str(tmp_path / "s"), str(tmp_path / "s" / "item-1")))
    report = probe.retry(frame, places, timeout=10)
    assert report["returned"] == "2"  # counted twice
    (tmp_path / "c").mkdir()
    clean = code.Counter(str(tmp_path / "c"))
    assert clean.put("x") == 1
    verdict = probe.verdict(report, "1", None)
    assert verdict is not None and "data was lost or changed" in verdict
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["item-1"]  # restored


def test_a_fail_stop_that_says_why_is_not_broken_but_a_silent_one_is(code: Any) -> None:
    frame, _ = _frame_of(code, code.Stopped(), [1])
    report = probe.retry(frame, damage.Places(), timeout=10,
                         injected=OSError(5, "Input/output error"))
    assert report["raised"].startswith("RuntimeError: stopped after")
    assert report["reports"] and probe.verdict(report, "1", None) is None
    assert probe.verdict({"raised": "TimeoutError: database is locked", "programming": False,
                          "reports": False, "files": {}}, "1", None).startswith(
        "retrying the failed call raised TimeoutError")


class _Sink:
    """Its close marks it closed first, as io's and zipfile's do: closing again is a no-op."""

    frames: list[Any] = []

    def __init__(self, path: Path) -> None:
        self.path, self.closed = path, False

    def close(self) -> None:
        _Sink.frames.append(sys._getframe())
        if self.closed:
            return
        self.closed = True
        raise OSError(5, "Input/output error")  # the trailer was never written

    def flush(self) -> None:
        _Sink.frames.append(sys._getframe())
        if self.closed:
            return
        self.closed = True
        raise OSError(5, "Input/output error")


def test_a_close_whose_retry_does_nothing_follows_the_convention(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("head")
    for method in ("close", "flush"):
        sink = _Sink(out)
        with pytest.raises(OSError):
            getattr(sink, method)()
        report = probe.retry(_Sink.frames[-1], damage.Places(written=(str(out),)), timeout=10)
        assert report["returned"] == "None" and len(report["files"]) == 1
        assert report.get("release") is (True if method == "close" else None)
    clean = {k: "sha1:100:0" for k in report["files"]}  # the clean close wrote the trailer
    # the same silent no-op from another call (flush) lost data; from close it is the rule
    assert probe.verdict(report, None, clean) is not None
    assert probe.verdict(dict(report, release=True), None, clean) is None
    assert probe.verdict({"raised": "ValueError: I/O operation on closed file",
                          "programming": False, "reports": False, "release": True, "files": {}},
                         None, clean) is not None


class _Loaded:
    """Fails its first construction; a second ``__init__`` on one instance is refused."""

    tries = 0
    frames: list[Any] = []

    def __init__(self, path: str) -> None:
        if hasattr(self, "path"):
            raise RuntimeError("initialised twice")
        self.path = path
        _Loaded.tries += 1
        _Loaded.frames.append(sys._getframe())
        if _Loaded.tries == 1:
            raise OSError(5, "Input/output error")


def test_a_failed_constructor_is_retried_as_a_new_instance() -> None:
    with pytest.raises(OSError):
        _Loaded("cfg.ini")
    report = probe.retry(_Loaded.frames[0], damage.Places(), timeout=10)
    assert "raised" not in report, report  # not __init__ again on the half-built object
    assert report["returned"] is None  # an instance: not plain data, never compared
    assert probe.verdict(report, None, None) is None


class _Config(dict):  # type: ignore[type-arg]
    """A dict built by its constructor (configobj's shape): the first load fails."""

    frames: list[Any] = []

    def __init__(self, text: str) -> None:
        super().__init__()
        _Config.frames.append(sys._getframe())
        if len(_Config.frames) == 1:
            raise OSError(5, "Input/output error")
        self.update(line.split("=") for line in text.split())


def test_a_constructor_retry_is_compared_with_the_object_the_clean_call_built() -> None:
    with pytest.raises(OSError):
        _Config("a=1 b=2")
    report = probe.retry(_Config.frames[0], damage.Places(), timeout=10)
    assert report["returned"] == "{'a': '1', 'b': '2'}"
    # the clean run's __init__ returned None; what its caller got is the object it built
    ended: list[tuple[Any, str, Any]] = []
    watch = boundary.Watch()

    class Clean(_Config):
        def __init__(self, text: str) -> None:
            watch.await_end(sys._getframe(), lambda f, how, v: ended.append((f, how, v)))
            super().__init__(text)

    Clean("a=1 b=2")
    frame, how, value = ended[0]
    assert value is None and how == "returned"
    built = probe.plain(aftermath.made(frame, how, value))
    assert built == report["returned"]
    assert probe.verdict(report, built, None) is None
    assert "data was lost" in (probe.verdict(report, probe.plain(Clean("a=1")), None) or "")


def test_plain_data_only_is_compared() -> None:
    assert probe.plain({"a": [1, "x", b"y", None]}) == "{'a': [1, 'x', b'y', None]}"
    assert probe.plain(1.5) is None and probe.plain(object()) is None
    assert probe.plain({1, 2}) == "{1, 2}"


def test_a_generator_is_never_called_again(code: Any) -> None:
    frames: list[Any] = []
    watch = boundary.Watch()
    gen = code.gen()
    next(gen)
    watch.await_end(gen.gi_frame, lambda f, how, value: frames.append(f))
    list(gen)
    assert probe.retry(frames[0], damage.Places(), 5) == {
        "skipped": "a generator or coroutine cannot be called again"}


# -- both runs' facts -----------------------------------------------------------------------
def test_findings_compare_only_facts_of_the_same_moment(tmp_path: Path) -> None:
    places = {"written": [], "owned": [str(tmp_path)]}
    faulted = {"how": "raised", "listing": {"<tmp:x>/t": HALF}, "places": places,
               "before": {}, "made_before": ["<tmp:x>/t"], "made_after": []}
    clean = {"how": "returned", "listing": {}, "places": places, "value": None}
    assert aftermath.findings(faulted, clean, None)[0] == ("file left: <tmp:x>/t (4 bytes)",)
    ended = dict(clean, how="test-ended")
    assert aftermath.findings(faulted, ended, None) == ((), (), None)
    assert aftermath.findings(faulted, None, None) == ((), (), None)


def test_pytests_current_symlink_is_not_a_file_of_the_code(tmp_path: Path) -> None:
    (tmp_path / "test_x0").mkdir()
    (tmp_path / "test_x0" / "data").write_text("v")
    (tmp_path / "test_xcurrent").symlink_to(tmp_path / "test_x0")
    (tmp_path / "mine-current").symlink_to(tmp_path / "test_x0")  # the code's own link
    places = damage.Places((), (str(tmp_path),))
    keys = set(damage.listing(places))
    assert not any("test_xcurrent" in k for k in keys), keys
    assert any(k.endswith("mine-current") for k in keys) and \
        any(k.endswith("test_x0/data") for k in keys)


def test_a_test_file_under_another_random_name_in_the_clean_twin_is_one_file() -> None:
    # fork-per-unit: the test's NamedTemporaryFile is /tmp/tmpA in the faulted run and
    # /tmp/tmpB in its clean twin; both held OLD before the code rewrote them
    places = {"written": ["/tmp/tmpA"], "owned": []}
    faulted = {"how": "raised", "listing": {"/tmp/tmpA": HALF}, "places": places,
               "before": {"/tmp/tmpA": OLD}, "made_before": ["/tmp/tmpA"], "made_after": []}
    clean = {"how": "returned", "listing": {"/tmp/tmpB": NEW}, "before": {"/tmp/tmpB": OLD},
             "places": {"written": ["/tmp/tmpB"], "owned": []}, "value": None}
    orphans, torn, _ = aftermath.findings(faulted, clean, None)
    assert orphans == () and torn == (
        "torn: /tmp/tmpA is 4 bytes, neither what it held before (10 bytes) nor the clean "
        "run's (12 bytes)",)
    # a file the code made (nothing before) is still an orphan
    made = dict(faulted, before={"/tmp/tmpA": "missing"})
    assert aftermath.findings(made, clean, None)[0] == ("file left: /tmp/tmpA (4 bytes)",)


def test_a_failed_socket_operation_leaves_no_file_evidence_and_is_not_retried(
        code: Any, tmp_path: Path) -> None:
    after = aftermath.Aftermath(code.SCOPE, lambda: [str(tmp_path)], frozenset)
    ended: list[dict[str, Any]] = []

    class Remote:
        def put(self, text: str, fail: Any) -> int:
            # another process stores the data: its files change on its own schedule
            after.watch_from(sys._getframe(1), ended.append, lambda: 5.0, peer=True)
            (tmp_path / "server-side").write_text(text)
            raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.raises(ConnectionResetError):
        code.api(Remote(), None)
    facts = ended[0]
    assert facts["unsettled"] == "the failed operation talked to another process"
    assert "probe" not in facts  # never called again: the peer would do it twice
    clean = {"how": "returned", "listing": {}, "places": facts["places"], "value": "1"}
    assert aftermath.findings(facts, clean, None) == ((), (), None)


class _Forwarding:
    """tinydb's TinyDB shape: unknown attributes go to a table that a failed __init__ never
    made, so any dynamic lookup on the half-built object recurses forever."""

    frames: list[Any] = []

    def __init__(self, path: str) -> None:
        _Forwarding.frames.append(sys._getframe())
        if len(_Forwarding.frames) == 1:
            raise OSError(24, "Too many open files")
        self._tables: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tables, name)


def test_the_probe_runs_no_code_of_the_half_built_object() -> None:
    with pytest.raises(OSError):
        _Forwarding("db.json")
    report = probe.retry(_Forwarding.frames[0], damage.Places(), timeout=10)
    assert "returned" in report, report  # the retry built a new one; nothing recursed


def test_a_temp_dir_the_test_makes_is_one_dir_under_two_random_names() -> None:
    # safer's tests make TemporaryDirectory()s: another random name in the clean twin
    mine = "/tmp/tmpAAA-1"
    places = {"written": [mine, f"{mine}/one", f"{mine}/two"], "owned": []}
    faulted = {"how": "raised", "places": places, "made_before": [f"{mine}/one"],
               "made_after": [], "before": {f"{mine}/two": OLD},
               "listing": {mine: "dir", f"{mine}/one": HALF, f"{mine}/two": HALF}}
    theirs = "/tmp/tmpBBB-1"
    clean = {"how": "returned", "value": None, "places": {"written": [], "owned": []},
             "before": {f"{theirs}/two": OLD},
             "listing": {theirs: "dir", f"{theirs}/one": HALF, f"{theirs}/two": NEW}}
    orphans, torn, _ = aftermath.findings(dict(faulted, made_before=[f"{mine}/one",
                                                                     f"{mine}/two"]),
                                          clean, None)
    assert orphans == ()  # "one" is in both runs' dir
    assert torn == (f"torn: {mine}/two is 4 bytes, neither what it held before (10 bytes) "
                    "nor the clean run's (12 bytes)",)
    # a dir only the faulted run has, with nothing to pair it with, is still compared as is
    alone = dict(clean, listing={"/tmp/other": "dir"}, before={})
    assert aftermath.findings(faulted, alone, None)[0] == (f"file left: {mine}/one (4 bytes)",)


def test_the_retry_making_its_scratch_file_under_another_random_name_is_no_difference(
        ) -> None:
    clean_files = {"/d/one": NEW, "/d/tmpAAAA": OLD}
    report = {"returned": None, "files": {"/d/one": NEW, "/d/tmpBBBB": OLD}}
    assert probe.verdict(report, None, clean_files) is None
    torn = {"returned": None, "files": {"/d/one": NEW, "/d/tmpBBBB": HALF}}
    assert "tmp" in (probe.verdict(torn, None, clean_files) or "")


def test_sqlites_journal_beside_its_database_is_not_an_orphan() -> None:
    faulted = {"<tmp:t>/test.db": NEW, "<tmp:t>/test.db-journal": HALF,
               "<tmp:t>/other-journal": HALF}
    found = damage.judge(faulted, {"<tmp:t>/test.db": NEW}, {}, made=None)
    assert found.orphans == ("file left: <tmp:t>/other-journal (4 bytes)",)


def test_a_random_dir_inside_a_random_dir_is_paired_level_by_level() -> None:
    faulted = {"/tmp/tA": "dir", "/tmp/tA/tB": "dir", "/tmp/tA/tB/bar": NEW}
    clean = {"/tmp/tC": "dir", "/tmp/tC/tD": "dir", "/tmp/tC/tD/bar": NEW}
    listing, _ = damage.as_faulted_names(faulted, clean, {})
    assert listing == faulted


def test_tempfile_dirs_pair_by_their_shape_where_the_runs_made_different_numbers() -> None:
    # the faulted run made one more scratch dir; the test's own TempFS still pairs
    faulted = {"/tmp/tmp485v70l0fsTempFS": "dir", "/tmp/tmp485v70l0fsTempFS/f.txt": NEW,
               "/tmp/tmpaaaaaaaa": "dir", "/tmp/tmpbbbbbbbb": "dir"}
    clean = {"/tmp/tmpzz_9yx00fsTempFS": "dir", "/tmp/tmpzz_9yx00fsTempFS/f.txt": NEW,
             "/tmp/tmpcccccccc": "dir"}
    listing, _ = damage.as_faulted_names(faulted, clean, {})
    assert listing["/tmp/tmp485v70l0fsTempFS/f.txt"] == NEW
    assert "/tmp/tmpcccccccc" in listing  # two against one of the plain shape: unpaired
    # a name that adds the thread id and the pid (safer's tests): they differ too
    faulted = {"/tmp/tmpkff_kvem-1402938-20066": "dir", "/tmp/tmpkff_kvem-1402938-20066/one": NEW}
    clean = {"/tmp/tmpqeez1ete-1402938-20068": "dir", "/tmp/tmpqeez1ete-1402938-20068/one": NEW}
    listing, _ = damage.as_faulted_names(faulted, clean, {})
    assert listing == faulted


def test_a_file_the_failing_call_had_not_changed_is_not_torn(code: Any, tmp_path: Path) -> None:
    db = tmp_path / "db.json"
    db.write_text("")  # touched: the content at the run's first write-open
    after = aftermath.Aftermath(code.SCOPE, lambda: [], lambda: frozenset({str(db)}))
    clean = {"how": "raised", "listing": {str(db): "sha1:40:new"}, "value": None,
             "places": {"written": [str(db)], "owned": []}}

    def snapshot() -> None:  # as the agent's before a fork: a hard link changes the ctime
        isolation.discard(isolation.take([str(db)]))
        after.resync()

    for fail_at, torn in (("read", False), ("flush", False), ("write", True)):
        after.start_run(tracking=True)
        after.before[str(db)] = damage.digest(str(db))
        store = code.Rewriter(str(db), after)
        store.drop()  # an earlier call leaves the file complete
        with pytest.raises(OSError):
            store.insert(fail_at, snapshot)
        found = aftermath.findings(after.snapshot("raised"), clean, None)[1]
        # failing before it wrote, the call left the file as it found it: complete; after
        # truncating and writing part of it, the file is torn
        assert bool(found) == torn, (fail_at, found)
        db.write_text("")


def test_an_sqlite_database_its_failed_transaction_rolled_back_is_not_torn(
        code: Any, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    after = aftermath.Aftermath(code.SCOPE, lambda: [], lambda: frozenset({str(db)}))
    after.start_run(tracking=True)
    table = code.Table(str(db), after)
    after.before[str(db)] = "sha1:0:e3b0c44298fc1c14"  # empty when the run first wrote it
    clean = {"how": "returned", "listing": {str(db): "sha1:999999:other"}, "value": None,
             "places": {"written": [str(db)], "owned": []}}
    start = db.stat()
    with pytest.raises(OSError):
        table.insert(50)
    assert db.stat().st_mtime_ns != start.st_mtime_ns  # the rollback wrote the file
    faulted = after.snapshot("raised")
    assert aftermath.findings(faulted, clean, None)[1] == ()  # as the call found it
    assert faulted["call_start"][str(db)] == faulted["listing"][str(db)]


def test_a_retry_value_is_no_evidence_when_the_clean_call_twice_differs() -> None:
    retried = {"returned": "2", "files": {}}  # a failed insert consumed id 1
    assert probe.verdict(retried, "1", {}) is not None
    assert probe.verdict(retried, "1", {}, clean_again={"returned": "2"}) is None
    # a call that gives the same value twice: the retry's other value is evidence
    assert "data was lost or changed" in str(
        probe.verdict(retried, "1", {}, clean_again={"returned": "1"}))


def test_a_retry_of_code_that_checks_its_pid_is_no_evidence(code: Any) -> None:
    pending = {"pid": os.getpid(), "items": ["a", "b"]}
    with pytest.raises(OSError):
        code.flush_pending(pending)
    frame = code.FRAMES[0]
    is_project = lambda name: code.SCOPE.kind(name) == "project"
    report = probe.retry(frame, damage.Places(), 10, None, is_project)
    assert "checks its process id" in report["skipped"]
    assert "returned" in probe.retry(frame, damage.Places(), 10)  # told nothing: judged


def test_an_sqlite_database_with_its_journal_beside_it_is_not_torn() -> None:
    # the cache spilled pages into test.db before the failed COMMIT; the hot journal
    # gives SQLite what it needs to roll them back at the next open
    journal = {"test.db": HALF, "test.db-journal": "sha1:512:jjj"}
    assert damage.judge(journal, {"test.db": NEW}, {"test.db": OLD}, made={"test.db"}).torn == ()
    empty = {"test.db": HALF, "test.db-journal": "sha1:0:da39a3ee5e6b4b0d"}  # not hot
    assert len(damage.judge(empty, {"test.db": NEW}, {"test.db": OLD},
                            made={"test.db"}).torn) == 1


def test_an_sqlite_database_is_digested_by_its_content_not_its_bytes(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "test.db"
    conn = sqlite3.connect(db)
    conn.execute("create table t (x)")
    conn.commit()
    first = damage.digest(str(db))
    header = db.read_bytes()[:100]
    conn.execute("insert into t values (1)")
    conn.rollback()
    conn.execute("begin")
    conn.execute("create table u (x)")  # a rolled-back table can leave the file longer
    conn.execute("insert into u values (randomblob(20000))")
    conn.rollback()
    conn.execute("pragma user_version = 0")  # writes a transaction that changes nothing
    conn.commit()
    conn.close()
    assert db.read_bytes()[24:28] != header[24:28]  # SQLite bumped its counter
    assert damage.digest(str(db)) == first
    conn = sqlite3.connect(db)
    conn.execute("insert into t values (1)")
    conn.commit()
    conn.close()
    assert damage.digest(str(db)) != first


def _made_then_failed(path: str, conn: Any, statement: str) -> None:
    """Makes something (a directory, a table, a row), then fails, as a call that is not
    atomic does when its second step meets an I/O error."""
    if path:
        os.mkdir(path)
    if conn is not None:
        conn.execute(statement)
    raise OSError(5, "Input/output error")


def _failed_frame(*args: Any) -> Any:
    try:
        _made_then_failed(*args)
    except OSError as exc:
        tb = exc.__traceback__
        assert tb is not None and tb.tb_next is not None
        return tb.tb_next.tb_frame
    raise AssertionError("the call did not fail")


def test_a_retry_that_makes_again_what_the_attempt_made_is_no_broken_object(
        tmp_path: Path) -> None:
    import sqlite3
    made = str(tmp_path / "made")
    report = probe.retry(_failed_frame(made, None, ""), damage.Places(written=(made,)),
                         timeout=10)
    assert report["raised"].startswith("FileExistsError") and report["exists"]
    assert probe.verdict(report, "None", None) is None
    conn = sqlite3.connect(":memory:")
    report = probe.retry(_failed_frame("", conn, "create table t(x)"), damage.Places(),
                         timeout=10)
    assert "table t already exists" in report["raised"] and report["exists"]
    assert probe.verdict(report, "None", None) is None
    # a row the failed call kept (a constraint the retry hits) still shows a broken object
    conn.execute("create table u(x primary key)")
    report = probe.retry(_failed_frame("", conn, "insert into u values (1)"),
                         damage.Places(), timeout=10)
    assert report["raised"].startswith("IntegrityError") and not report["exists"]
    assert "broken for the next call" in (probe.verdict(report, "None", None) or "")


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_an_unchanged_sqlite_database_is_not_dumped_again_a_changed_one_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal_mode: str) -> None:
    import sqlite3
    db = str(tmp_path / "d.db")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"pragma journal_mode={journal_mode}")
    conn.execute("create table t (x text)")
    dumps: list[str] = []
    real = damage._sqlite_content
    monkeypatch.setattr(damage, "_sqlite_content", lambda p: dumps.append(p) or real(p))
    first = damage.digest(db)
    assert damage.digest(db) == first and len(dumps) == 1  # unchanged: the cached digest
    conn.execute("insert into t values ('a')")  # same size, same second: the header moves
    second = damage.digest(db)
    assert second != first and len(dumps) == 2
    conn.execute("begin")
    conn.execute("insert into t values ('b')")  # not committed: what it holds is the same
    assert damage.digest(db) == second
    conn.execute("commit")
    assert damage.digest(db) not in (first, second)
    conn.close()


def test_the_next_call_from_the_same_line_has_its_own_start_in_a_reused_frame(
        code: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a loop appends a line per call; the allocator may give the next call's frame the
    # address of the one before, so both calls have one key: the position going back
    # (open, then write, then open again) still tells the second call from the first
    log = tmp_path / "log"
    log.write_text("one\n")
    after = aftermath.Aftermath(code.SCOPE, lambda: [], lambda: frozenset({str(log)}))
    after.start_run(tracking=True)
    positions = iter([10, 20, 10, 20])
    monkeypatch.setattr(after, "_call_key", lambda frame: (("one frame",), next(positions)))
    here = sys._getframe()
    after.note_hit("io:open", here)  # the first call: its open, then its write
    after.note_hit("io:write", here)
    with open(log, "a") as fh:
        fh.write("two\n")
    after.note_hit("io:open", here)  # the second call, in the same frame
    after.note_write(str(log))  # its write-open: the file holds 8 bytes
    with open(log, "a") as fh:
        fh.write("t")  # cut short: an append that lost nothing the file held
    after.mark_fault(here)
    facts = after.snapshot("returned")
    assert facts["kept"] == [str(log)]
    clean = {"how": "returned", "listing": {str(log): "sha1:14:0123456789abcdef"},
             "places": facts["places"], "value": None}  # the clean run: all three lines
    assert aftermath.findings(facts, clean, None)[1] == ()


def test_a_call_that_looks_first_still_takes_its_own_start_in_a_reused_frame(
        code: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # safer's test_str: a loop saves a file with a call from one line, and empties it
    # between rounds. Each call first looks (os.path.exists), then writes. When the
    # second call's frame has the first one's address, the test's own operation between
    # the calls (no project frame on the stack) says the first call ended: the second
    # call's write takes the state at its own start (empty), not the first call's (no
    # file yet), or the file it left as it found it is judged torn.
    saved = tmp_path / "one"
    after = aftermath.Aftermath(code.SCOPE, lambda: [], lambda: frozenset({str(saved)}))
    after.start_run(tracking=True)
    keys = iter([(("one frame",), 5), (("one frame",), 10), None,
                 (("one frame",), 5), (("one frame",), 10), (("one frame",), 10)])
    monkeypatch.setattr(after, "_call_key", lambda frame: next(keys))
    here = sys._getframe()
    after.note_hit("io:stat", here)  # the first call: it looks, then writes
    after.note_hit("io:open", here)
    after.note_write(str(saved))
    saved.write_text("one two")
    after.note_hit("io:open", here)  # the test empties the file between the rounds
    saved.write_text("")
    after.note_hit("io:stat", here)  # the second call, in the same frame
    after.note_hit("io:open", here)  # its write, which fails
    after.mark_fault(here)
    facts = after.snapshot("raised")
    assert facts["existed"] == [str(saved)]
    assert facts["call_start"] == {str(saved): damage.digest(str(saved))}
    clean = {"how": "returned", "listing": {str(saved): "sha1:7:0123456789abcdef"},
             "places": facts["places"], "value": None}  # the clean run saved "one two"
    assert aftermath.findings(facts, clean, None)[1] == ()


def test_a_loop_inside_one_call_that_looks_then_writes_keeps_the_calls_start(
        code: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # an archive written member by member: each round reads (a look), then writes; the
    # position goes back at each look, and the call's start stays the call's, so a file
    # its first round made is still new when a later round fails
    made = tmp_path / "part"
    after = aftermath.Aftermath(code.SCOPE, lambda: [], lambda: frozenset({str(made)}))
    after.start_run(tracking=True)
    keys = iter([(("one frame",), 5), (("one frame",), 10), (("one frame",), 5),
                 (("one frame",), 10), (("one frame",), 10)])
    monkeypatch.setattr(after, "_call_key", lambda frame: next(keys))
    here = sys._getframe()
    after.note_hit("io:read", here)  # round one: read a member, write it
    after.note_hit("io:open", here)
    after.note_write(str(made))
    made.write_text("member one")
    after.note_hit("io:read", here)  # round two
    after.note_hit("io:write", here)  # fails
    after.mark_fault(here)
    facts = after.snapshot("raised")
    assert facts["existed"] == [] and facts["call_start"] == {}
