import os

import pytest

from outcomes import code


def test_hung(tmp_path):
    p = str(tmp_path / "log")
    try:
        code.locked_append(p, "a")
    except OSError:
        pass
    code.locked_append(p, "b")


def test_crashed(tmp_path):
    p = tmp_path / "c"
    p.write_text("x")
    assert code.read_or_abort(str(p)) == "x"


def test_leaked(tmp_path):
    p = tmp_path / "cfg"
    p.write_text("k=v")
    assert code.read_config(str(p)) == "k=v"


def test_swallowed(tmp_path):
    p = str(tmp_path / "d")
    code.save_durably(p, b"data")


def test_inconsistent(tmp_path, failpath_invariant):
    p = tmp_path / "doc"
    p.write_text("old")
    failpath_invariant(lambda: p.read_text() in ("old", "new"))
    try:
        code.rewrite_in_place(str(p), "new")
    except OSError:
        pass


def test_mishandled(tmp_path):
    p = tmp_path / "s"
    p.write_text("s")
    assert code.load_settings(str(p)) == "s"


def test_propagated(tmp_path):
    p = tmp_path / "s"
    p.write_text("s")
    assert code.load_strict(str(p)) == "s"


def test_retry(tmp_path):
    p = tmp_path / "r"
    code.save_with_retry(str(p), "r")
    assert p.read_text() == "r"


def test_absorbed():
    assert code.must_not_fail() == 1


def test_closes_stdout(tmp_path):
    code.save_or_close_stdout(str(tmp_path / "o"), "o")


def test_forks(tmp_path):
    code.save_or_fork(str(tmp_path / "f"), "f")


def test_spins(tmp_path):
    code.save_or_spin(str(tmp_path / "p"), "p")


def test_isolation(tmp_path):
    p = tmp_path / "data"
    p.write_text("v1")
    assert code.read_or_delete(str(p)) == "v1"
    assert code.read_or_delete(str(p)) == "v1"


def test_untrusted(tmp_path):
    p = tmp_path / "data"
    p.write_text("v1")
    marker = os.environ.get("OUTCOMES_MARKER", str(tmp_path / "marker"))
    assert code.read_or_mark(str(p), marker) == "v1"
    assert code.read_or_mark(str(p), marker) == "v1"


def test_eats_memory(tmp_path):
    code.save_or_hoard(str(tmp_path / "m"), "m")
