"""A reproducer's own aftermath checks, so every bug a sweep reports fails in plain pytest.

With ``FAILPATH='TAG=N*off->1*ACTION->off'`` pytest fails the (N+1)th hit of TAG. A sweep
also judges what that failure left: the files, compared with a clean run at the moment the
call ended, and a retry of the call (sweep/aftermath.py). In plain pytest the clean run is
a **clean twin**: at the hit this process forks; the twin takes the success path until the
call ends, lists the files and exits; its writes are put back, and then the hit fails here.
At teardown the same rules as a sweep's decide, and a finding errors the test.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from failpath.points import Fault, Hit
from failpath.stdlib._real import os
from failpath.sweep import channel, damage, forking, isolation, lifeline
from failpath.sweep.aftermath import Aftermath, findings
from failpath.sweep.evidence import Scope
from failpath.sweep.records import Facts

_SPEC = re.compile(r"^(?P<tag>[^=]+)=(?:(?P<skip>\d+)\*off->)?(?:1\*)?(?P<action>.+?)"
                   r"(?P<off>->off)?$")


class Rehearsal:
    """The checks of one reproducer run (one target hit), installed as the first hook."""

    def __init__(self, spec: str, scope: Scope, recorder: Any) -> None:
        match = _SPEC.match(spec.strip())
        self.tag = match.group("tag") if match else None
        self.nth = int(match.group("skip") or 0) + 1 if match else 0
        self.transient = bool(match and match.group("off"))
        self.recorder = recorder
        self.aftermath = Aftermath(scope, lambda: [], lambda: recorder.paths)
        recorder.on_write = self.aftermath.note_write
        self.count = 0
        self.twin: Facts | None = None
        self.released: str | None = None
        self.twin_fd: int | None = None  # set in the twin: where its facts go
        self.forked_after: frozenset[str] = frozenset()  # the paths written by the fork

    def __repr__(self) -> str:
        return f"<Rehearsal {self.tag} hit {self.nth}: {self.count} seen>"

    def start_test(self, owned: list[str]) -> None:
        """A test begins: count its hits from here, as the sweep does."""
        self.aftermath = Aftermath(self.aftermath.scope, lambda: owned,
                                   lambda: self.recorder.paths)
        self.recorder.on_write = self.aftermath.note_write
        self.aftermath.start_run(tracking=True)
        self.count, self.twin, self.released = 0, None, None

    def hook(self, hit: Hit) -> Fault | None:
        """Before the arming rule fails the target hit: fork the twin, then watch the call."""
        if self.count < self.nth:
            self.aftermath.note_hit(hit.tag.cls, sys._getframe(1))
        if hit.tag.key != self.tag:
            return None
        self.count += 1
        if self.count != self.nth:
            return None
        frame = sys._getframe(1)
        self.twin = self._twin(frame)
        if self.twin_fd is not None:
            return None  # this is the twin: it goes on unfailed, to the call's end
        self.released = damage.released_path(hit.filename) \
            if hit.tag.cls in ("io:unlink", "io:rmdir") else None
        self.aftermath.mark_fault(frame)
        self.aftermath.watch_from(frame, lambda facts: None,
                                  (lambda: 5.0) if self.transient else None,
                                  peer=hit.tag.cls.startswith("net:"))
        return None  # the arming rule fails it

    def _twin(self, frame: Any) -> Facts | None:
        self.forked_after = self.recorder.paths
        snap = isolation.take(sorted(self.forked_after), owned=self.aftermath.owned())
        self.aftermath.resync()  # the store's hard links changed the files' ctimes
        parent = os.getpid()

        def become_twin(write_fd: int) -> None:
            import failpath

            lifeline.die_with_parent(parent)
            failpath.disarm()  # the twin is the clean run: nothing fails in it
            self.twin_fd = write_fd
            if not self.aftermath.watch_from(frame, self._send, control=self.transient):
                self._send(self.aftermath.snapshot("test-ended"))

        pid, read_fd = forking.fork(become_twin, freeze=False)
        if pid == 0:
            return None  # the twin goes on with the test, unfailed
        reader = channel.Reader(read_fd)
        facts: Facts | None = None
        try:
            facts = reader.first(30.0)
        finally:
            reader.close()
            os.waitpid(pid, 0)
            # without the twin's word, what it wrote is unknown: only what the test wrote
            # and its own directories are put back
            isolation.restore(snap, created=facts.pop("writes", []) if facts else [])
            isolation.discard(snap)
            self.aftermath.resync()
        return facts

    def _send(self, facts: Facts) -> None:
        assert self.twin_fd is not None
        writes = self.recorder.paths - self.forked_after  # the twin's own
        channel.send(self.twin_fd, {**facts, "writes": sorted(writes)})
        os._exit(0)

    def end_test(self) -> None:
        """The test is over: a twin whose call never ended reports now, and exits."""
        if self.twin_fd is not None:
            self._send(self.aftermath.snapshot("test-ended"))

    def problems(self) -> list[str]:
        """What the failure left that a sweep reports, for the teardown check."""
        if self.twin is None or self.count < self.nth:
            return []
        faulted = self.aftermath.facts or self.aftermath.snapshot("test-ended")
        orphans, torn, verdict = findings(faulted, self.twin, self.released)
        return [*orphans, *torn, *([verdict] if verdict else [])]
