"""failpath.stdlib files group: listdir, scandir (and its iteration), walk, glob, rmtree."""

from __future__ import annotations

import errno
import glob
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import failpath
import failpath.stdlib as fstd


@pytest.fixture(autouse=True)
def files() -> Iterator[None]:
    with fstd.install("files"):
        yield


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    return root


def expect(exc: BaseException, code: int, filename: object = None) -> None:
    assert isinstance(exc, OSError)
    assert (exc.errno, exc.strerror, exc.filename) == (code, os.strerror(code), filename)
    assert failpath.injection_of(exc) is not None


def test_listdir_defaults_to_emfile_naming_the_directory(tree: Path) -> None:
    with failpath.inject("name os.listdir"), pytest.raises(OSError) as info:
        os.listdir(tree)
    expect(info.value, errno.EMFILE, str(tree))
    with failpath.inject("name os.listdir"), pytest.raises(OSError) as info:
        os.listdir()
    expect(info.value, errno.EMFILE, ".")
    assert sorted(os.listdir(tree)) == ["a.txt", "sub"]


def test_scandir_call_and_first_read_are_points(tree: Path) -> None:
    with failpath.inject("name os.scandir"), pytest.raises(OSError) as info:
        os.scandir(tree)
    expect(info.value, errno.EMFILE, str(tree))
    with failpath.inject("name os.scandir", nth=2) as rule:
        with os.scandir(tree) as entries, pytest.raises(OSError) as info:
            next(entries)  # reading the directory: EIO
        expect(info.value, errno.EIO, str(tree))
        with os.scandir(tree) as entries:
            names = sorted(e.name for e in entries)  # one hit per listing, not per entry
    assert names == ["a.txt", "sub"] and rule.hits == 4


def test_scandir_iterator_behaves_like_the_real_one(tree: Path) -> None:
    with failpath.inject("name nothing"):
        it = os.scandir(tree)
        assert iter(it) is it
        first = next(it)
        assert isinstance(first, os.DirEntry)
        it.close()
        with pytest.raises(StopIteration):
            next(it)
    with os.scandir(tree) as plain:  # disarmed: the real iterator itself
        assert type(plain).__name__ == "ScandirIterator"


def test_walk_is_one_point_and_hands_its_error_to_onerror(tree: Path) -> None:
    seen: list[OSError] = []
    with failpath.inject("name os.walk"):
        assert list(os.walk(tree, onerror=seen.append)) == []
        assert list(os.walk(tree)) == []  # no onerror: swallowed, as os.walk does
    (error,) = seen
    expect(error, errno.EMFILE, str(tree))
    with failpath.inject("*", action="off") as rule:
        walked = [(Path(d).name, sorted(f)) for d, _, f in os.walk(tree)]
    assert walked == [("tree", ["a.txt"]), ("sub", ["b.txt"])] and rule.hits == 1


def test_walk_propagates_what_is_not_an_oserror(tree: Path) -> None:
    with failpath.inject("name os.walk", action="raise(ValueError)"), \
            pytest.raises(ValueError):
        list(os.walk(tree))


@pytest.mark.parametrize("name", ["glob", "iglob"])
def test_glob_finds_nothing_when_its_listing_fails(tree: Path, name: str) -> None:
    pattern = str(tree / "**" / "*.txt")
    with failpath.inject(f"name glob.{name}") as rule:
        assert list(getattr(glob, name)(pattern, recursive=True)) == []
    assert rule.fired == 1
    with failpath.inject("*", action="off") as rule:
        found = sorted(getattr(glob, name)(pattern, recursive=True))
    assert [Path(f).name for f in found] == ["a.txt", "b.txt"] and rule.hits == 1


def named(tree: Path) -> Any:
    """What rmtree's failing open names: the str, or (3.13+) the Path given."""
    return tree if sys.version_info >= (3, 13) else str(tree)


def test_rmtree_is_one_point_and_raises_what_opening_the_top_fails_with(tree: Path) -> None:
    with failpath.inject("name shutil.rmtree"), pytest.raises(OSError) as info:
        shutil.rmtree(tree)
    expect(info.value, errno.EMFILE, named(tree))
    with failpath.inject("name shutil.rmtree"), pytest.raises(OSError) as info:
        shutil.rmtree(os.fsencode(tree))
    expect(info.value, errno.EMFILE, str(tree))  # bytes are decoded first
    assert (tree / "sub" / "b.txt").exists()
    with failpath.inject("name shutil.rmtree") as rule:
        shutil.rmtree(tree, ignore_errors=True)
    assert rule.fired == 1 and tree.exists()
    with failpath.inject("*", action="off") as rule:
        shutil.rmtree(tree)
    assert rule.hits == 1 and not tree.exists()


def test_rmtree_of_what_is_not_a_directory_fails_by_itself(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with failpath.inject("name shutil.rmtree") as rule:
        with pytest.raises(FileNotFoundError):
            shutil.rmtree(tmp_path / "missing")
        with pytest.raises(NotADirectoryError):
            shutil.rmtree(tmp_path / "file")
    assert rule.hits == 0


def test_rmtree_calls_onerror_as_the_real_one_does(tree: Path) -> None:
    calls: list[tuple[Any, ...]] = []

    def onerror(func: Any, path: Any, exc_info: Any) -> None:
        calls.append((func, path, exc_info))
        assert sys.exc_info()[1] is exc_info[1]  # called inside the except, as rmtree does

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # onerror, on 3.12+
        with failpath.inject("name shutil.rmtree"):
            assert shutil.rmtree(tree, onerror=onerror) is None
    ((func, path, (cls, exc, tb)),) = calls
    assert func is os.open and path == tree and cls is OSError and tb is not None
    expect(exc, errno.EMFILE, named(tree))


def test_rmtree_bare_raise_in_onerror_reraises_the_injected_error(tree: Path) -> None:
    def onerror(*args: Any) -> None:
        raise

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with failpath.inject("name shutil.rmtree"), pytest.raises(OSError) as info:
            shutil.rmtree(tree, onerror=onerror)
    expect(info.value, errno.EMFILE, named(tree))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="onexc is new in 3.12")
def test_rmtree_calls_onexc_with_the_exception(tree: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    with failpath.inject("name shutil.rmtree"):
        shutil.rmtree(tree, onexc=lambda *args: calls.append(args))  # type: ignore[call-arg]
    ((func, path, exc),) = calls
    assert func is os.open and path == tree
    expect(exc, errno.EMFILE, named(tree))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="onerror is deprecated from 3.12 on")
def test_rmtree_onerror_deprecation_warns_at_the_callers_line(tree: Path) -> None:
    with failpath.inject("name shutil.rmtree"), pytest.warns(DeprecationWarning) as record:
        shutil.rmtree(tree, onerror=lambda *args: None)
    assert record[0].filename == __file__


def test_rmtree_raise_after_removes_the_tree_then_reports(tree: Path) -> None:
    with failpath.inject("name shutil.rmtree", action="raise_after"), \
            pytest.raises(OSError):
        shutil.rmtree(tree)
    assert not tree.exists()


def test_pathlib_iterdir_and_glob_use_the_listings(tree: Path) -> None:
    with failpath.inject("name os.*") as rule, pytest.raises(OSError):
        list(tree.iterdir())
    assert rule.fired == 1
