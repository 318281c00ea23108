"""The pytest plugin: ``pytest --failpath``, the ``failpath_invariant`` fixture, reproducers,
and the sweep's in-process agent (when the runner starts pytest with FAILPATH_AGENT)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

_AGENT = pytest.StashKey[Any]()
_EXC = pytest.StashKey[dict[str, BaseException]]()
_GLOBS = pytest.StashKey[dict[str, Any]]()
_current_agent: Any = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("failpath", "fault-injection sweep (failpath)")
    group.addoption("--failpath", action="store_true", default=False,
                    help="sweep this suite: fail every (test, point, nth hit) once and "
                         "classify what the code did (same as `failpath sweep`)")
    group.addoption("--failpath-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a failpath setting for --failpath, e.g. --failpath-set mode=both")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "failpath_skip: never sweep this test")
    raw = os.environ.get("FAILPATH_AGENT")
    if raw:
        _start_agent(config, json.loads(raw))
    elif os.environ.get("FAILPATH"):
        # A reproducer: instrument the standard library so stdlib tags can be armed.
        from failpath import stdlib

        groups = os.environ.get("FAILPATH_GROUPS", "files,net,db,proc").split(",")
        stdlib.install([g for g in groups if g])
        config.stash[_AGENT] = None
        from failpath.sweep import children

        children.export_boot()  # the reproducer follows the test into child interpreters
        config.pluginmanager.register(_ReproducerPlugin(), "failpath-reproducer")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("failpath") or os.environ.get("FAILPATH_AGENT"):
        return None
    from failpath.sweep.command import sweep_from_pytest

    return sweep_from_pytest(config)


def pytest_runtestloop(session: pytest.Session) -> None:
    if os.environ.get("FAILPATH") and not os.environ.get("FAILPATH_AGENT"):
        # Count a reproducer's hits from the first test on, as the sweep counted them.
        import failpath
        from failpath.sweep import children

        if children.BOOTED:
            return  # this interpreter was armed at start-up (it is a reproducer's child)

        failpath.configure(os.environ["FAILPATH"])
        plugin = session.config.pluginmanager.get_plugin("failpath-reproducer")
        if plugin is not None:
            plugin.rehearse(session, os.environ["FAILPATH"])


@pytest.fixture
def failpath_invariant(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Register recovery checks run at teardown: ``failpath_invariant(fn)``.

    ``fn()`` returning False or raising means the persistent state is inconsistent. In a
    plain pytest run the test then errors at teardown; in a sweep the unit is classified
    ``inconsistent``.
    """
    checks: list[tuple[str, Callable[[], Any]]] = []

    def register(fn: Callable[[], Any], name: str | None = None) -> Callable[[], Any]:
        if not callable(fn):
            raise TypeError(f"failpath_invariant(fn={fn!r}) needs a callable check")
        checks.append((name or str(getattr(fn, "__qualname__", repr(fn))), fn))
        return fn

    yield register
    from failpath.points import paused
    from failpath.sweep.oracles import Invariants
    from failpath.sweep.records import Phase

    inv = Invariants()
    for name, fn in checks:
        inv.add(fn, name)
    with paused():  # a check must not meet the fault it checks for
        failures = inv.run()
    agent = _current_agent
    if agent is not None and agent.phase in (Phase.SWEEP, Phase.CHILD):
        agent.run.invariant_failures.extend(failures)
    elif failures:
        pytest.fail("failpath invariant failed: " + "; ".join(failures), pytrace=False)


# -- the agent --------------------------------------------------------------------------
def _start_agent(config: pytest.Config, raw: dict[str, Any]) -> None:
    from failpath import stdlib
    from failpath.sweep import explore

    global _current_agent
    options = explore.AgentOptions.from_json(raw)
    if options.parent:
        from failpath.sweep import lifeline

        lifeline.die_with_parent(options.parent)  # a runner killed with SIGKILL takes us along
    cov = None
    if options.coverage:
        import coverage

        cov = coverage.Coverage(data_file=None, source=[options.root], config_file=False)
        cov.start()
    recorder = getattr(stdlib, "recorder", None)
    agent_cls: Any = explore.Agent
    if options.memory:  # a memory sweep: the agent fails allocations in C calls
        from failpath.sweep.memory import MemoryAgent as agent_cls
    agent = agent_cls(options, _run_item, coverage=cov, recorder=recorder)
    stdlib.install(options.groups)
    from failpath.sweep import children

    children.export_boot()  # units follow the test into child interpreters
    if recorder is not None:
        recorder.start()
    explore.install(agent)
    _current_agent = agent
    config.stash[_AGENT] = agent
    config.pluginmanager.register(_AgentPlugin(agent, options), "failpath-agent")


def _fresh_doctest_globals(item: pytest.Item) -> None:
    """A doctest clears its globals when it has run; an agent runs each item many times."""
    dtest = getattr(item, "dtest", None)
    globs = getattr(dtest, "globs", None)
    if not isinstance(globs, dict):
        return
    saved = item.stash.get(_GLOBS, None)
    if saved is None:
        item.stash[_GLOBS] = dict(globs)
    else:
        globs.clear()
        globs.update(saved)


def _run_item(item: pytest.Item) -> dict[str, Any]:
    from _pytest.runner import runtestprotocol

    _fresh_doctest_globals(item)
    item.stash[_EXC] = {}
    reports = runtestprotocol(item, nextitem=None, log=False)
    status, exc, longrepr = "passed", None, None
    for rep in reports:
        if rep.failed:
            status, longrepr = "failed", str(rep.longrepr)[-4000:]
            exc = item.stash[_EXC].get(rep.when)
            break
        if rep.skipped and rep.when in ("setup", "call"):
            status = "skipped"
    output = "".join(f"--- {name} ---\n{text}" for rep in reports
                     for name, text in rep.sections if text)
    item.stash[_EXC] = {}
    return {"status": status, "exc": exc, "longrepr": longrepr, "output": output}


class _AgentPlugin:
    def __init__(self, agent: Any, options: Any) -> None:
        self.agent = agent
        self.options = options

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        rep = yield
        if call.excinfo is not None and rep.failed and _EXC in item.stash:
            item.stash[_EXC][call.when] = call.excinfo.value
        return rep

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        from failpath.sweep import worker

        worker.serve(self.agent, self.options, session)
        return True


class _ReproducerPlugin:
    """With FAILPATH set, a test that leaks, or that the failure left damaged, errors at
    teardown, as the sweep reported it."""

    def __init__(self) -> None:
        self.before: Any = None
        self.threads: set[int] = set()
        self.failed: BaseException | None = None
        self.rehearsal: Any = None
        self.basetemp_before: set[str] = set()

    def rehearse(self, session: pytest.Session, spec: str) -> None:
        """Check what the target hit's failure leaves, as a sweep does (sweep/rehearsal.py)."""
        from failpath import _state, config, stdlib
        from failpath.sweep.evidence import Scope
        from failpath.sweep.rehearsal import Rehearsal

        root = str(session.config.rootpath)
        settings = config.resolve(root, {})
        scope = Scope(root, tuple(settings["include"]), tuple(settings["exclude"]))
        stdlib.recorder.start()
        self.rehearsal = Rehearsal(spec, scope, stdlib.recorder)
        _state.add_hook(self.rehearsal.hook, first=True)

    def _new_tmp_dirs(self, item: pytest.Item) -> list[str]:
        factory = getattr(item.config, "_tmp_path_factory", None)
        base = getattr(factory, "_basetemp", None)
        if base is None or not os.path.isdir(base):
            return []
        return [os.path.join(base, n) for n in os.listdir(base)
                if os.path.join(base, n) not in self.basetemp_before]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        import threading

        from failpath.sweep import oracles

        self.before, self.failed = oracles.Resources.now(), None
        self.threads = {t.ident for t in threading.enumerate() if t.ident}
        if self.rehearsal is not None:
            self.basetemp_before = set(self._new_tmp_dirs(item)) | self.basetemp_before
            self.rehearsal.start_test(_LazyList(lambda: self._new_tmp_dirs(item)))
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        rep = yield
        if call.when == "call" and call.excinfo is not None and rep.failed:
            self.failed = call.excinfo.value
        return rep

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        from failpath import arming
        from failpath.sweep import oracles

        if self.rehearsal is not None:
            self.rehearsal.end_test()  # in a clean twin: report and exit
        result = yield
        fired = sum(rule.fired for rule in arming._configured)
        failed, self.failed = self.failed, None
        if self.before is None or not fired:
            return result
        damage = self.rehearsal.problems() if self.rehearsal is not None else []
        if damage:
            raise AssertionError("failpath: the injected fault left damage: "
                                 + "; ".join(damage))
        # As in a sweep: what the failed test function itself still held is its cleanup,
        # and what the failure's traceback holds is measured only once it is released.
        oracles.close_test_owned(failed, getattr(getattr(item, "obj", None), "__code__", None))
        del failed
        oracles.join_new_threads(self.threads)
        with oracles.resource_warnings() as warns, oracles.unraisable() as ignored:
            oracles.settle()
        delta = oracles.Delta.between(self.before, oracles.Resources.now(), warns, ignored)
        found = oracles.leaks(delta, oracles.Delta())
        if found:
            raise AssertionError("failpath: left behind after the injected fault: "
                                 + "; ".join(found))
        return result


class _LazyList(list[str]):
    """A list computed when first iterated (the test's tmp dirs exist only after setup)."""

    def __init__(self, compute: Callable[[], list[str]]) -> None:
        super().__init__()
        self.compute = compute

    def __iter__(self) -> Any:
        return iter(self.compute())
