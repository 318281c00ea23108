"""An agent's main loop inside its pytest process: baseline, then the units it is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from failpath.stdlib._real import open, os
from failpath.sweep import channel
from failpath.sweep.explore import Agent, AgentOptions, TestContext
from failpath.sweep.forker import TempArea
from failpath.sweep.records import PlanEntry, Unit, UnitResult


def _tmp_roots(session: Any) -> tuple[Any, Any]:
    factory = getattr(session.config, "_tmp_path_factory", None)

    def basetemp() -> str | None:
        base = getattr(factory, "_basetemp", None)
        return None if base is None else str(base)

    return basetemp, factory


def serve(agent: Agent, options: AgentOptions, session: Any) -> None:
    """Run the agent's work in this pytest session, then return (pytest then exits)."""
    items = {item.nodeid: item for item in session.items}
    basetemp, _ = _tmp_roots(session)
    start_entries: set[str] = set()

    def new_tmp_dirs() -> list[str]:
        base = basetemp()
        if base is None or not os.path.isdir(base):
            return []
        # pytest's ``<name>current`` symlinks name a test's dir a second time: not a root
        return [os.path.join(base, n) for n in os.listdir(base)
                if os.path.join(base, n) not in start_entries
                and not os.path.islink(os.path.join(base, n))]

    agent.start_session(TempArea(basetemp, new_tmp_dirs))
    if options.unit is not None:
        _serve_one_unit(agent, options, items)
        return
    if options.baseline:
        agent.emit(selfcheck(agent))
        _baseline(agent, session, items)
    for entry in _plan_entries(options):
        item = items.get(entry.test)
        if item is None:
            for unit in entry.units:
                agent.report(unit, UnitResult("unreached", strategy="none",
                                              final="test not collected in this worker"))
            continue
        base = basetemp()
        start_entries.clear()
        if base is not None and os.path.isdir(base):
            start_entries.update(os.path.join(base, n) for n in os.listdir(base))
        agent.run_units(TestContext.from_entry(item, entry, options.strategy))
        agent.emit({"type": "test-done", "test": item.nodeid})
    agent.emit({"type": "done"})


def _baseline(agent: Agent, session: Any, items: dict[str, Any]) -> None:
    agent.emit({"type": "collected", "tests": list(items),
                "errors": int(getattr(session, "testsfailed", 0))})
    for nodeid, item in items.items():
        if item.get_closest_marker("failpath_skip") is not None:
            agent.emit({"type": "baseline", "record": {
                "test": nodeid, "status": "skipped", "duration": 0.0, "hits": [],
                "delta": {}, "writes": [], "longrepr": "marked failpath_skip"}})
            continue
        record = agent.run_baseline(item)
        agent.emit({"type": "baseline", "record": record})
    agent.emit({"type": "baseline-done", "clean_lines": agent.covered_lines()})


def _plan_entries(options: AgentOptions) -> Iterator[PlanEntry]:
    """Plan entries as the runner streams them: a path to a JSON-lines file per message."""
    reader = channel.Reader(options.in_fd)
    while True:
        messages = reader.wait(3600.0)
        if reader.eof and not messages:
            return
        for message in messages:
            if message.get("type") == "end":
                return
            with open(message["path"], encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield PlanEntry.from_json(json.loads(line))


def _serve_one_unit(agent: Agent, options: AgentOptions, items: dict[str, Any]) -> None:
    """A subprocess unit: this interpreter is the child; run the unit and report."""
    unit = options.unit
    assert unit is not None
    item = items.get(unit.test)
    if item is None:
        channel.send(options.result_fd, UnitResult("unreached",
                                                   final="test not collected").to_json())
        return
    from failpath.sweep import oracles

    test = TestContext(item, [unit], "subprocess", oracles.Delta.from_json(options.clean or {}))
    channel.send(options.result_fd, {"type": "ready"})  # the unit's timeout starts now
    agent.run_child(test, unit, options.result_fd, options.parent, twin=options.twin,
                    twin_facts=options.twin_facts)


#: Seconds the self-check's child has to say whether its fault arrived.
SELFCHECK_TIMEOUT = 10.0


def selfcheck(agent: Agent) -> dict[str, Any]:
    """Prove injection is live here: count a point, fork at it, see the marked fault arrive."""
    import failpath

    counted = agent.count(lambda: failpath.point("failpath.selfcheck", error=OSError))
    hits = [h for h in counted if h.get("name") == "failpath.selfcheck"]
    if not hits:
        return {"type": "selfcheck", "ok": False, "detail": "a point hit was not counted"}
    unit = Unit("selfcheck", "<selfcheck>", hits[0]["tag"], 1, "transient", "raise")

    def child(write_fd: int) -> None:  # fail the hit and say whether the marked fault arrived
        ok = False
        try:
            agent.counter.restart()
            agent.become_child(unit, write_fd, "selfcheck")
            failpath.point("failpath.selfcheck", error=OSError)
        except OSError as exc:
            ok = failpath.injection_of(exc) is not None
        finally:
            arrived = UnitResult("propagated" if ok else "unreached", strategy="selfcheck")
            channel.send(write_fd, arrived.to_json())
            os._exit(0)

    running = agent.forker.fork(child)
    assert running is not None  # the child never returns from child()
    got = agent.forker.wait(running, None, SELFCHECK_TIMEOUT, "selfcheck")
    agent.forget_child()
    ok = got.outcome == "propagated"
    detail = "a forced fault fired in a forked child and was recognised" if ok else \
        "a forced fault did not arrive in the forked child"
    return {"type": "selfcheck", "ok": ok, "detail": detail}
