"""The exit statuses of the ``failpath`` command and of ``pytest --failpath``, by name."""

from __future__ import annotations

#: No bug found, every gate met.
EXIT_OK = 0
#: At least one unit is a bug.
EXIT_BUGS = 1
#: Bad usage: an unknown option, a bad value, a missing project or extra.
EXIT_USAGE = 2
#: A coverage gate (``--fail-under-points``, ``--fail-under-handlers``) was missed.
EXIT_GATE = 3
#: failpath itself could not produce trustworthy results (the sweep failed, the self-check).
EXIT_INTERNAL = 4
#: Interrupted by Ctrl-C (128 + SIGINT); ``--resume`` finishes the sweep.
EXIT_INTERRUPTED = 130
#: Ended by SIGTERM (128 + SIGTERM); ``--resume`` finishes the sweep.
EXIT_TERMINATED = 143
