"""The damage a failed operation leaves in the files: orphans and torn files.

At the moment the injected error leaves the code under test (sweep/boundary.py), the unit's
child lists the files under every directory the test wrote (pytest's tmp area included);
the clean run lists them at the same moment (the fork-at-point parent when its call
returns, or a clean twin). :func:`judge` compares the two:

* a file only the faulted run has, which the run had made by the time of the fault, is an
  **orphan** ("file left": a temp file beside the user's, a value file the failed
  transaction never indexed) — unless the failed operation was told to delete it (a
  failed unlink leaves its file: that is the fault, not damage); a file the failure path
  writes itself (an error record) is its report, not an orphan;
* a file both have whose content is neither the clean run's nor what it held before the
  failed operation (its content before the last write-open, recorded by the recorder), and
  whose size differs from the clean run's, is **torn** (a rewrite in place that stopped half
  way, a truncate that never came): what it held is lost. Same-sized differences are not
  judged (contents that differ between any two runs, a timestamp, look like that), nor a
  new file the failed write left short (the caller was told the write failed; whether the
  rest of the run reads it back as the value is for the test and the probe to show).

A listing is ``{key: digest}``: keys are paths, with the test's own tmp dirs written as
``<tmp:NAME>`` (their numbered names differ between runs); digests are ``sha1:SIZE:HEX`` of
the content, ``dir``, ``link:TARGET`` or ``special``.
"""

from __future__ import annotations

import hashlib
import re
import stat
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from failpath.stdlib import _real
from failpath.stdlib._real import open, os
from failpath.sweep import isolation

#: Entries listed per directory, and in all, at most (a listing stops there).
MAX_ENTRIES = 4000
#: Bytes read to digest one file (beyond: the first and last halves of that).
MAX_READ = 4 * 1024 * 1024
_SKIP = frozenset({"__pycache__", ".failpath", ".git", ".pytest_cache", ".mypy_cache",
                   ".ruff_cache", ".venv", "venv", "node_modules", ".tox"})


#: A file's digest is kept for its next reading only when it last changed this long
#: before it was read (git's "racily clean" rule): a file system stamps times with a
#: coarse clock (a tick of up to 10 ms), so a change in the same tick as the reading
#: keeps all of the stat key, and only a read of the content tells it.
SETTLED_NS = 50_000_000
#: The same for a file whose times are whole seconds (a file system that keeps no finer
#: times: FAT's modification times are even counted in steps of 2 s).
COARSE_SETTLED_NS = 2_100_000_000
#: path -> (its stat key, its digest), for files that had settled when read.
_digests: dict[str, tuple[tuple[int, ...], str]] = {}
#: Digests kept at most (a run writing ever new files starts the table again).
MAX_DIGESTS = 20_000
_EMPTY = f"sha1:0:{hashlib.sha1(b'').hexdigest()[:16]}"


def _wall_ns() -> int:
    """The real-time clock file times are stamped from (never a test's frozen clock:
    freezegun replaces ``time.time_ns``, not ``clock_gettime_ns``)."""
    if hasattr(time, "clock_gettime_ns"):
        return time.clock_gettime_ns(time.CLOCK_REALTIME)
    return time.time_ns()


def settled(st: os.stat_result, now_ns: int) -> bool:
    """True when a file with this stat last changed long enough before ``now_ns`` that a
    later change must show in its times (:data:`SETTLED_NS`, :data:`COARSE_SETTLED_NS`)."""
    second = 1_000_000_000
    coarse = st.st_mtime_ns % second == 0 and st.st_ctime_ns % second == 0
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    return now_ns - changed > (COARSE_SETTLED_NS if coarse else SETTLED_NS)


def digest(path: str) -> str:
    """The content digest of one path (never follows a symlink).

    A file read before is read again only when its stat key (device, inode, size, mode,
    modification and change times) changed, or when it had not settled then
    (:data:`SETTLED_NS`): the recorder digests a file before each write-open, and a
    lock file is opened at every attempt to take it.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return "missing"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return f"link:{os.readlink(path)}"
    if not stat.S_ISREG(st.st_mode):
        return "special"
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns)
    known = _digests.get(path)
    if known is not None and known[0] == key:
        return known[1]
    found, by_bytes = _read_digest(path, st)
    if by_bytes and settled(st, _wall_ns()):
        if len(_digests) >= MAX_DIGESTS:
            _digests.clear()
        _digests[path] = (key, found)
    return found


def _read_digest(path: str, st: os.stat_result) -> tuple[str, bool]:
    """:func:`digest` of a regular file, from its content; and whether that was its bytes
    (an SQLite database's is its dump, which its write-ahead log changes as well: it has
    its own cache, :func:`_cached_sqlite_content`)."""
    if isolation.protected(path):
        return "special", False  # under /proc, /sys, /dev or /run: its size says nothing
    if st.st_size == 0:
        return _EMPTY, True
    database = is_sqlite(path, st.st_ino, st.st_size)
    if database and st.st_size <= SQLITE_DUMP_MAX:
        found = _cached_sqlite_content(path)
        if found is not None:
            return found, False
    h = hashlib.sha1()
    try:
        with open(path, "rb") as fh:
            if st.st_size <= MAX_READ:
                h.update(_without_counters(fh.read()))
            else:
                h.update(_without_counters(fh.read(MAX_READ // 2)))
                fh.seek(-(MAX_READ // 2), os.SEEK_END)
                h.update(fh.read())
    except OSError:
        return f"unreadable:{st.st_size}", False
    return f"sha1:{st.st_size}:{h.hexdigest()[:16]}", not database


_SQLITE_MAGIC = b"SQLite format 3\x00"


_sqlite_files: dict[tuple[str, int, bool], bool] = {}


def is_sqlite(path: str, inode: int, size: int) -> bool:
    """Whether the file at ``path`` (this ``inode``, ``size`` bytes) is an SQLite database,
    by its header; read once per file (and once more when an empty one grows)."""
    key = (path, inode, size > 0)
    found = _sqlite_files.get(key)
    if found is None:
        try:
            with open(path, "rb") as fh:
                found = fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
        except OSError:
            found = False  # gone or unreadable: not known to be one
        _sqlite_files[key] = found
    return found


#: SQLite databases up to this size are digested by their content (their SQL dump).
SQLITE_DUMP_MAX = 4 * 1024 * 1024


def _state_of(path: str, head: int, ctime: bool = True) -> tuple[Any, ...] | None:
    """A file's inode, size, times (``ctime`` too, when asked) and first ``head`` bytes;
    None when it is missing or unreadable."""
    try:
        st = os.lstat(path)
        with open(path, "rb") as fh:
            first = fh.read(head)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns if ctime else 0, first)


def _sqlite_state(path: str) -> tuple[Any, ...] | None:
    """What tells that an SQLite database's committed content may have changed: its file's
    inode, size and times and its header (the change counter each commit bumps), and its
    write-ahead log's (appended at each commit; a new salt in its header when it starts
    again; not its ctime: SQLite run as root gives its log the database's owner, which
    touches it). None while a rollback journal is there (a transaction at work, or a hot
    journal): its content is then read afresh."""
    if os.path.lexists(path + "-journal"):
        return None
    database = _state_of(path, 100)
    if database is None:
        return None
    return database, _state_of(path + "-wal", 32, ctime=False)


#: path -> (its _sqlite_state, its content digest): a database that did not change since
#: is not dumped again (a dump of a 1 MiB database costs several forks: bench/oracles.py).
_sqlite_digests: dict[str, tuple[tuple[Any, ...], str]] = {}


def _cached_sqlite_content(path: str) -> str | None:
    """:func:`_sqlite_content`, taken again only when the database may have changed."""
    state = _sqlite_state(path)
    known = _sqlite_digests.get(path)
    if state is not None and known is not None and known[0] == state:
        return known[1]
    found = _sqlite_content(path)
    if state is None or found is None:
        _sqlite_digests.pop(path, None)
    elif state == _sqlite_state(path):  # nothing committed while it was dumped
        _sqlite_digests[path] = (state, found)
    return found


def _sqlite_content(path: str) -> str | None:
    """An SQLite database's digest by what it holds: the SQL dump of its committed content,
    its size the dump's. A rolled-back transaction, a savepoint's pages written back, freed
    pages kept: the bytes differ, the database does not. None when it cannot be read
    without waiting or writing (locked, a hot journal to roll back): then its bytes count."""
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    try:
        conn = _real.real_sqlite3_connect(uri, uri=True, timeout=0, isolation_level=None)
    except _real.sqlite3.Error:
        return None
    try:
        dump = "\n".join(conn.iterdump()).encode("utf-8", "surrogatepass")
    except _real.sqlite3.Error:
        return None  # locked, or a journal it would have to roll back first
    finally:
        conn.close()
    return f"sha1:{len(dump)}:{hashlib.sha1(dump).hexdigest()[:16]}"


def _without_counters(data: bytes) -> bytes:
    """An SQLite database's bytes without its header's file change counter and
    version-valid-for number (offsets 24 and 92): a transaction that was rolled back, or
    that changed nothing, still bumps them, and they are no content of the database."""
    if len(data) < 100 or not data.startswith(_SQLITE_MAGIC):
        return data
    return data[:24] + bytes(4) + data[28:92] + bytes(4) + data[96:]


def still_begins_with(path: str, before: str) -> bool:
    """True when the file at ``path`` grew past the content digest ``before`` and still
    begins with exactly that content: an append's tail was added, nothing it held lost."""
    size = size_of(before)
    if size is None or size > MAX_READ:
        return False
    try:
        if os.lstat(path).st_size <= size:
            return False
        with open(path, "rb") as fh:
            head = fh.read(size)
    except OSError:
        return False  # gone or unreadable: nothing shows it was kept
    return before == f"sha1:{size}:{hashlib.sha1(head).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class Places:
    """Which directories to list and how to name the test's own tmp dirs.

    Attributes:
        written: paths the test wrote (their directories are listed, one level).
        owned: the test's own tmp dirs (listed whole).
    """

    written: tuple[str, ...] = ()
    owned: tuple[str, ...] = ()

    def key(self, path: str) -> str:
        """``path`` with an owned tmp dir's numbered name replaced by ``<tmp:NAME>``."""
        for root in self.owned:
            if path == root or path.startswith(root.rstrip("/") + "/"):
                name = re.sub(r"\d+$", "", os.path.basename(root.rstrip("/")))
                return f"<tmp:{name}>{path[len(root.rstrip('/')):]}"
        return path

    def union(self, other: Places) -> Places:
        """Both sets of places (the child's and the clean run's)."""
        return Places(tuple(sorted(set(self.written) | set(other.written))),
                      tuple(sorted(set(self.owned) | set(other.owned))))


def _lists_siblings(path: str, places: Places) -> bool:
    """Whether the directory of ``path`` is the test's, so its other entries count too.

    A directory the test owns (its tmp dir) or made (a recorded write) is listed whole; in
    any other (``/tmp``, the project's tree, a directory other processes share) only the
    paths the test wrote are.
    """
    parent = os.path.dirname(path)
    return parent in places.written or any(
        parent == r or parent.startswith(r.rstrip("/") + "/") for r in places.owned)


def restrict(found: dict[str, str], places: Places) -> dict[str, str]:
    """The entries of ``found`` that a listing of ``places`` alone would have."""
    owned = [places.key(r) for r in places.owned]
    written = {places.key(p) for p in places.written}
    siblings = {places.key(os.path.dirname(p)) for p in places.written
                if _lists_siblings(p, places)}

    def covered(key: str) -> bool:
        return key in written or os.path.dirname(key) in siblings or any(
            key.startswith(d.rstrip("/") + "/") for d in (*owned, *written))

    return {k: v for k, v in found.items() if covered(k)}


def listing(places: Places) -> dict[str, str]:
    """The digests of the files under ``places`` now."""
    out: dict[str, str] = {}
    for root in places.owned:
        _walk_into(root, out, places, recursive=True)
    for path in places.written:
        if isolation.protected(path) or _pytest_current(*os.path.split(path)):
            continue
        if _lists_siblings(path, places):
            _walk_into(os.path.dirname(path), out, places, recursive=False)
        elif os.path.lexists(path):
            out.setdefault(places.key(path), digest(path))
        if os.path.isdir(path) and not os.path.islink(path):
            _walk_into(path, out, places, recursive=True)
    return out


def _walk_into(root: str, out: dict[str, str], places: Places, recursive: bool) -> None:
    if isolation.protected(root) or not os.path.isdir(root) or os.path.dirname(root) == root:
        return
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    for name in names[:MAX_ENTRIES]:
        if len(out) >= MAX_ENTRIES or name in _SKIP or name.startswith("failpath-snap-"):
            continue
        path = os.path.join(root, name)
        key = places.key(path)
        if key in out or _pytest_current(root, name):
            continue
        out[key] = digest(path)
        if recursive and out[key] == "dir":
            _walk_into(path, out, places, recursive=True)


def _pytest_current(root: str, name: str) -> bool:
    """pytest's bookkeeping: the ``<prefix>current`` symlink to the newest ``<prefix>N``
    directory beside it (tmp_path's retention), made and moved by pytest, not the code."""
    if not name.endswith("current"):
        return False
    path = os.path.join(root, name)
    try:
        target = os.readlink(path)
    except OSError:
        return False
    prefix = name[:-len("current")]
    base = os.path.basename(target.rstrip("/"))
    return os.path.dirname(os.path.join(root, target)) == root and base.startswith(prefix) \
        and base[len(prefix):].isdigit()


@dataclass(frozen=True, slots=True)
class Findings:
    """What the comparison found: orphans, torn files, and the evidence for each."""

    orphans: tuple[str, ...] = ()
    torn: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def judge(faulted: dict[str, str], clean: dict[str, str], before: dict[str, str],
          released: str | None = None, places: Places | None = None,
          made: set[str] | None = None, call_start: dict[str, str] | None = None,
          kept: set[str] | None = None, existed: set[str] | None = None) -> Findings:
    """Compare the faulted run's files with the clean run's at the same moment.

    Args:
        faulted: the child's listing when the error left the code under test.
        clean: the clean run's listing at the same moment.
        before: by key, the digest each file had before the operations that write it
            (the recorder's, at a write-open, truncate, or rename onto it; ``missing``
            when it did not exist); a file not among them was not written by the code.
        released: the path the failed operation was told to delete.
        places: to name ``released`` the way the listings do.
        made: the keys the faulted run had written by the time of the fault. Only those
            can be orphans or torn: a file the failure path writes itself (an error
            record) is its report, not what it failed to clean up or finish. None: every
            file counts.
        call_start: by key, what files held when the failing call began (those it had
            not changed by the fault). A file still holding that was not torn by the call:
            an earlier call of the test left it so, complete.
        kept: the keys of files that still begin with all they held before and only grew
            (:func:`still_begins_with`): an append cut short lost none of the file's data,
            and no append is atomic; not torn.
        existed: the keys of files that were there when the failing call began: none is
            an orphan of it (the source a failed move leaves where it was, a scratch file
            an earlier call made and the caller asked to keep).
    """
    call_start, kept, existed = call_start or {}, kept or set(), existed or set()
    gone = places.key(released) if places is not None and released else released
    orphans, torn = [], []
    paired = _renamed(faulted, clean)
    for key, got in sorted(faulted.items()):
        want = clean.get(key)
        if got in ("dir", "special"):
            continue
        if want is None:
            if key != gone and not _inside(key, gone) and (made is None or key in made) \
                    and key not in paired and key not in existed \
                    and not _sqlite_sidecar(key, faulted):
                orphans.append(f"file left: {key} ({_size(got)})")
        elif size_of(got) != size_of(want) and want not in ("dir", "special") \
                and before.get(key, "missing") not in ("missing", got) \
                and call_start.get(key) != got and (made is None or key in made) \
                and key not in kept and not _journaled(key, faulted):
            torn.append(f"torn: {key} is {_size(got)}, neither what it held before "
                        f"({_size(before[key])}) nor the clean run's ({_size(want)})")
    return Findings(tuple(orphans), tuple(torn))


def _renamed(faulted: dict[str, str], clean: dict[str, str]) -> set[str]:
    """Faulted-only files with a clean-only twin of the same content in the same
    directory: the same file under another random name (``mkstemp``), not an orphan."""
    return set(renamed_pairs(faulted, clean))


def renamed_pairs(faulted: dict[str, str], clean: dict[str, str]) -> dict[str, str]:
    """Each faulted-only file paired with a clean-only twin of the same content in the
    same directory (directories and special files are never paired)."""
    return _pair_by(faulted, clean, faulted, clean, skip=("dir", "special"))


def _pair_by(faulted: Iterable[str], clean: Iterable[str], mine: dict[str, str],
             theirs: dict[str, str], skip: tuple[str, ...]) -> dict[str, str]:
    """Keys only in ``faulted`` paired, in order, with keys only in ``clean`` of the same
    directory and the same value (``mine`` for the former, ``theirs`` for the latter);
    keys whose value is in ``skip`` are never paired."""
    faulted, clean = set(faulted), set(clean)
    spare: dict[tuple[str, str], list[str]] = {}
    for key in sorted(clean - faulted):
        value = theirs.get(key, "missing")
        if value not in skip:
            spare.setdefault((os.path.dirname(key), value), []).append(key)
    out: dict[str, str] = {}
    for key in sorted(faulted - clean):
        slot = spare.get((os.path.dirname(key), mine.get(key, "missing")))
        if mine.get(key, "missing") not in skip and slot:
            out[key] = slot.pop(0)
    return out


def as_faulted_names(faulted: dict[str, str], clean: dict[str, str],
                     clean_before: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The clean run's listing and ``before`` with its randomly named directories renamed
    to the faulted run's.

    A test that makes its own temp directory (``TemporaryDirectory()``, ``mkdtemp``) gets
    another random name in a clean twin. In each parent, the directories only the faulted
    run has are paired, in order, with those only the clean run has, when there are as
    many of each; a directory only one run has stays as it is (an orphaned directory is
    still seen). Names made by ``tempfile`` are paired by their shape (``tmp*fsTempFS``,
    ``tmp*__tempfs__``: the prefix and suffix around the random part), so that one kind
    of directory pairs even where the runs made different numbers of another kind.
    """
    def only(a: dict[str, str], b: dict[str, str]) -> dict[tuple[str, str], list[str]]:
        by_parent: dict[tuple[str, str], list[str]] = {}
        taken: set[str] = set()
        for key in sorted(a):
            if a[key] != "dir" or key in b:
                continue
            parent = os.path.dirname(key)
            while parent not in taken and os.path.dirname(parent) != parent:
                parent = os.path.dirname(parent)
            if parent in taken:
                continue  # inside a dir paired already: renamed with it
            taken.add(key)
            by_parent.setdefault((os.path.dirname(key), _shape(os.path.basename(key))),
                                 []).append(key)
        return by_parent

    for _level in range(8):  # a random dir inside a random dir: pair level by level
        mine, theirs = only(faulted, clean), only(clean, faulted)
        rename: dict[str, str] = {}
        for parent, dirs in theirs.items():
            if len(mine.get(parent, ())) == len(dirs):
                rename.update(zip(dirs, mine[parent], strict=True))
        if not rename:
            break

        def renamed(key: str, rename: dict[str, str] = rename) -> str:
            for old, new in rename.items():
                if key == old or key.startswith(old + "/"):
                    return new + key[len(old):]
            return key

        clean = {renamed(k): v for k, v in clean.items()}
        clean_before = {renamed(k): v for k, v in clean_before.items()}
    return clean, clean_before


#: tempfile's random part: eight of ``[a-z0-9_]`` after its default prefix ``tmp``.
_TEMPFILE_RANDOM = re.compile(r"^tmp[a-z0-9_]{8}")


def _shape(name: str) -> str:
    """A directory name with tempfile's random part and any numbers in it replaced
    (``tmp*fsTempFS``; ``tmp*-#-#`` for a name that adds a thread id and a pid, which
    differ between the runs too); any other name is shaped only by its kind: all of them
    pair in order, as before."""
    if not _TEMPFILE_RANDOM.match(name):
        return ""
    return "tmp*" + re.sub(r"\d+", "#", _TEMPFILE_RANDOM.sub("", name))


def same_existing(faulted: dict[str, str], clean: dict[str, str], before: dict[str, str],
                  clean_before: dict[str, str]) -> dict[str, str]:
    """Faulted-only keys paired with a clean-only key in the same directory whose content
    before the code wrote it was the same (and not ``missing``): one file that existed
    before the code wrote it, under two random names (a test's ``NamedTemporaryFile`` in
    each of two runs of the test)."""
    return _pair_by(faulted, clean, before, clean_before, skip=("missing",))


_SIDECARS = ("-journal", "-wal", "-shm")


def _sqlite_sidecar(key: str, listing: dict[str, str]) -> bool:
    """SQLite's rollback journal, WAL or shared-memory file beside a database that is
    still there: the open transaction's, which SQLite itself finishes or rolls back (a
    failed COMMIT leaves the transaction open, and its journal with it)."""
    return any(key.endswith(s) and key[:-len(s)] in listing for s in _SIDECARS)


def _journaled(key: str, listing: dict[str, str]) -> bool:
    """An SQLite database with its rollback journal or WAL beside it: its bytes are
    SQLite's to reconcile (a hot journal is rolled back at the next open), so they are no
    measure of a torn file."""
    return any((size_of(listing.get(key + s, "missing")) or 0) > 0 for s in _SIDECARS)


def released_path(path: object) -> str | None:
    """The path a failed release was to delete, as the listings name it (a relative
    ``unlink`` is from the cwd); None for a file descriptor or no path."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    return os.path.abspath(os.fsdecode(path))


def _inside(key: str, parent: str | None) -> bool:
    return parent is not None and key.startswith(parent.rstrip("/") + "/")


def size_of(d: str | None) -> int | None:
    """The size a digest records (None for what is not a regular file)."""
    if d is not None and d.startswith(("sha1:", "unreadable:")):
        return int(d.split(":")[1])
    return None


def _size(d: str | None) -> str:
    if d is None or d == "missing":
        return "absent"
    if d.startswith("sha1:"):
        return f"{d.split(':')[1]} bytes"
    return d


def places_of(written: Iterable[str], owned: Iterable[str]) -> Places:
    """The places to list for a test that wrote ``written`` and owns ``owned``."""
    return Places(tuple(sorted({os.path.abspath(p) for p in written})),
                  tuple(sorted({os.path.abspath(p) for p in owned})))
