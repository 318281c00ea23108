"""Snapshots of what a test can have written, restored after each child so none leaks.

The rules (docs/dev/isolation.md): isolation touches only what the test made, or what it
can put back exactly.

* **Snapshotted**: regular files, directories and symlinks under the snapshot's roots. A
  regular file keeps a hard link to its inode (a file the child unlinked or renamed comes
  back as the *same* inode, which the parent may hold open) and a copy of its bytes (a
  file the child rewrote in place gets its content back in the same inode).
* **Never touched**: anything under ``/dev``, ``/proc``, ``/sys`` or ``/run``, and every
  file that is not regular, a directory or a symlink (devices, FIFOs, sockets): such a path
  is never a root, never saved, never restored and never removed.
* **Removed**: only what the child made. In the test's own directories (``owned``: the
  test's tmp dirs, which no other process shares) every new entry; elsewhere only the
  paths the child's own recorded writes created.
* **Restored**: only what this process's writes can have changed: the paths the test
  wrote (the roots as given, not what lies inside a directory root), everything in the
  test's own directories, and what the child's recorded writes touched. Other entries
  under a directory root (the test made ``/tmp/pytest-of-root``, and other sessions work
  inside it) are another process's: a change there is reported, never reverted.
* **Not exact**: whatever cannot be put back exactly (a new path nobody recorded, a file
  too large to copy, a limit reached, a file replaced by a device) is reported by
  :func:`restore`; the caller then stops trusting the test's continuation. It never guesses.
"""

from __future__ import annotations

import stat as _stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from failpath.stdlib._real import bypass, open, os, shutil, tempfile

#: Trees failpath never snapshots, restores or removes anything in.
PROTECTED = ("/dev", "/proc", "/sys", "/run")
_IGNORED = frozenset({".git", ".failpath", "__pycache__", ".pytest_cache", ".mypy_cache",
                      ".ruff_cache", ".venv", "venv", "node_modules", ".tox"})
#: A file larger than this is kept as a hard link only (its bytes are not copied).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: A snapshot stops (and is not exact) past this many entries or bytes copied.
MAX_ENTRIES = 50_000
MAX_BYTES = 512 * 1024 * 1024


def protected(path: str) -> bool:
    """True for a path failpath must never touch: under PROTECTED, or not a plain file.

    A path that does not exist is not protected unless it lies under a protected tree.
    """
    for candidate in {os.path.abspath(path), os.path.realpath(path)}:
        if any(candidate == p or candidate.startswith(p + "/") for p in PROTECTED):
            return True
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return not (_stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode)
                or _stat.S_ISLNK(st.st_mode))


@dataclass(slots=True)
class _Entry:
    kind: str  # "dir" | "file" | "link" | "special" (kept only to be left alone)
    mode: int
    inode: int = 0
    size: int = 0
    mtime_ns: int = 0
    link: str | None = None   # hard link into the store (same inode)
    copy: str | None = None   # byte copy in the store
    target: str | None = None  # symlink target


@dataclass(slots=True)
class Snapshot:
    """The saved state of some trees.

    Attributes:
        roots: the written paths (files or directories) whose state is kept.
        owned: the test's own directories among them (new entries there are the test's).
        written: the paths given as written (before nested ones were folded into the
            directory roots holding them): restored whoever changed them.
        store: where links and copies are kept.
        entries: path -> saved state.
        offsets: fd -> offset of every fd open on a regular file.
        partial: why the snapshot is not exact (empty when it is).
    """

    roots: list[str]
    owned: list[str]
    store: str
    entries: dict[str, _Entry] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)
    partial: list[str] = field(default_factory=list)
    copied: int = 0
    written: frozenset[str] = frozenset()

    def covers(self, path: str) -> bool:
        """True when ``path`` lies inside one of the snapshot's roots."""
        return _under(os.path.abspath(path), self.roots)

    def owns(self, path: str) -> bool:
        """True when ``path`` lies inside one of the test's own directories."""
        return _under(os.path.abspath(path), self.owned)


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _walk(root: str) -> list[str]:
    """``root`` and what is under it. A symlink is an entry, never a way in: what it
    points to is another tree (pytest's ``pytest-current`` points into whichever session
    of the user's made it last), and only its own roots are the snapshot's."""
    out = [root]
    if os.path.islink(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _IGNORED]
        out += [os.path.join(dirpath, d) for d in dirnames]
        out += [os.path.join(dirpath, f) for f in filenames]
    return out


def _outermost(paths: Iterable[str]) -> list[str]:
    """The paths that are not inside another of them, sorted."""
    out: list[str] = []
    for p in sorted(set(paths)):
        if not out or not _under(p, [out[-1]]):
            out.append(p)
    return out


def take(roots: Iterable[str], owned: Iterable[str] = (),
         store_parent: str | None = None) -> Snapshot:
    """Snapshot the trees under ``roots`` and ``owned`` (missing roots are recorded absent).

    Protected paths are dropped from the roots. ``owned`` are the test's own directories.
    """
    owned_roots = _outermost(os.path.abspath(r) for r in owned if not protected(r))
    written = frozenset(os.path.abspath(r) for r in roots if not protected(r))
    all_roots = _outermost([*written, *owned_roots])
    with bypass():
        store = tempfile.mkdtemp(prefix="failpath-snap-", dir=store_parent)
    snap = Snapshot(all_roots, owned_roots, store, offsets=file_offsets(), written=written)
    for root in all_roots:
        if os.path.lexists(root) and not _save_tree(snap, root):
            break
    return snap


def _save_tree(snap: Snapshot, root: str) -> bool:
    """Save every entry under ``root``; False once a limit stops the snapshot."""
    for path in _walk(root):
        if len(snap.entries) >= MAX_ENTRIES or snap.copied > MAX_BYTES:
            snap.partial.append(f"snapshot limit reached at {path} ({len(snap.entries)} "
                                f"entries, {snap.copied} bytes)")
            return False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        snap.entries[path] = _save(snap, path, st, len(snap.entries))
    return True


def open_fds() -> list[int]:
    """The file descriptors this process has open (empty where /proc is missing)."""
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return []


def file_offsets() -> dict[int, int]:
    """The offset of every fd open on a seekable file.

    A forked child shares its parent's open file descriptions, offsets included: a child
    that writes through an inherited fd moves the parent's offset too.
    """
    out: dict[int, int] = {}
    for fd in open_fds():
        try:
            if _stat.S_ISREG(os.fstat(fd).st_mode):
                out[fd] = os.lseek(fd, 0, os.SEEK_CUR)
        except OSError:
            continue  # not open any more (the fd listdir used) or not seekable
    return out


def restore_offsets(snap: Snapshot) -> None:
    """Put back the offsets the fds had when ``snap`` was taken."""
    for fd, pos in snap.offsets.items():
        try:
            if os.lseek(fd, 0, os.SEEK_CUR) != pos:
                os.lseek(fd, pos, os.SEEK_SET)
        except OSError:
            continue  # the parent closed it meanwhile: nothing to restore


def _save(snap: Snapshot, path: str, st: os.stat_result, n: int) -> _Entry:
    if _stat.S_ISDIR(st.st_mode):
        return _Entry("dir", _stat.S_IMODE(st.st_mode))
    if _stat.S_ISLNK(st.st_mode):
        return _Entry("link", 0, target=os.readlink(path))
    if not _stat.S_ISREG(st.st_mode) or protected(path):
        return _Entry("special", _stat.S_IMODE(st.st_mode), st.st_ino)
    entry = _Entry("file", _stat.S_IMODE(st.st_mode), st.st_ino, st.st_size, st.st_mtime_ns)
    link = os.path.join(snap.store, f"{n}.link")
    try:
        os.link(path, link)
        entry.link = link
    except OSError:
        entry.link = None  # another file system, or not permitted: the copy must do
    if st.st_size <= MAX_FILE_BYTES:
        copy = os.path.join(snap.store, f"{n}.copy")
        try:
            shutil.copyfile(path, copy)
            entry.copy = copy
            snap.copied += st.st_size
        except OSError:
            entry.copy = None
    return entry


def remove_tree(path: str) -> list[str]:
    """Remove ``path`` (a file, symlink or directory tree), never a non-regular file.

    Returns the entries left in place (device nodes, FIFOs and sockets, and the
    directories holding them): empty when everything went.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return []
    if protected(path):
        return [path]
    if not _stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return []
    left: list[str] = []
    for name in os.listdir(path):
        left += remove_tree(os.path.join(path, name))
    if left:
        return [*left, path]
    os.rmdir(path)
    return []


def restore(snap: Snapshot, created: Iterable[str] = ()) -> list[str]:
    """Put the snapshot's trees back; what could not be put back exactly (empty: exact).

    Args:
        snap: the snapshot.
        created: the paths the child's recorded writes touched; those inside a root that
            did not exist at the snapshot are removed, and those that existed (with what
            lies below them) are put back. Inside the test's own directories every new
            entry is removed and every entry put back.

    Raises:
        OSError: a restore step failed (the caller treats the restore as not exact).
    """
    touched = {os.path.abspath(p) for p in created}
    inexact = list(snap.partial)
    inexact += _remove_new(snap, touched)
    for path, entry in sorted(snap.entries.items()):
        if path in snap.written or snap.owns(path) or _in_or_below(path, touched):
            problem = _restore_one(path, entry)
        elif not _unchanged(path, entry):
            problem = f"changed by a write nobody recorded, left as it is: {path}"
        else:
            problem = None
        if problem:
            inexact.append(problem)
    return inexact


def _in_or_below(path: str, paths: set[str]) -> bool:
    """True when ``path`` or one of its ancestors is in ``paths`` (a tree removed or
    renamed by one recorded call takes what was inside it)."""
    while True:
        if path in paths:
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


def _unchanged(path: str, entry: _Entry) -> bool:
    """True when ``path`` is as the snapshot saw it (by its metadata)."""
    if entry.kind == "special":
        return True
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if entry.kind == "dir":
        return _stat.S_ISDIR(st.st_mode) and _stat.S_IMODE(st.st_mode) == entry.mode
    if entry.kind == "link":
        return _stat.S_ISLNK(st.st_mode) and os.readlink(path) == entry.target
    return (_stat.S_ISREG(st.st_mode) and st.st_ino == entry.inode
            and st.st_size == entry.size and st.st_mtime_ns == entry.mtime_ns
            and _stat.S_IMODE(st.st_mode) == entry.mode)


def _remove_new(snap: Snapshot, touched: set[str]) -> list[str]:
    """Remove what the child made; report new entries that nobody recorded making."""
    problems: list[str] = []
    made = {p for p in touched if p not in snap.entries and not protected(p)}
    for root in snap.roots:
        if not os.path.lexists(root):
            continue
        for path in sorted(_walk(root), key=len):  # a removed directory takes its content
            if path in snap.entries or not os.path.lexists(path):
                continue
            if snap.owns(path) or _in_or_below(path, made):
                problems += [f"left in place: {p}" for p in remove_tree(path)]
            else:
                problems.append(f"new path that no recorded write made: {path}")
    return problems


def _restore_one(path: str, entry: _Entry) -> str | None:
    if entry.kind == "special":
        return None  # never touched
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not (_stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode)
                               or _stat.S_ISLNK(st.st_mode)):
        return f"replaced by a file that is not regular: {path}"
    if entry.kind == "dir":
        return _restore_dir(path, entry, st)
    if entry.kind == "link":
        if st is not None and _stat.S_ISLNK(st.st_mode) and os.readlink(path) == entry.target:
            return None
        if st is not None:
            left = remove_tree(path)
            if left:
                return f"left in place: {left[0]}"
        assert entry.target is not None
        os.symlink(entry.target, path)
        return None
    return _restore_file(path, entry, st)


def _restore_dir(path: str, entry: _Entry, st: os.stat_result | None) -> str | None:
    if st is not None and not _stat.S_ISDIR(st.st_mode):
        os.unlink(path)  # a file or symlink where the directory was
        st = None
    if st is None:
        os.makedirs(path, exist_ok=True)
        os.chmod(path, entry.mode)
    elif _stat.S_IMODE(st.st_mode) != entry.mode:
        os.chmod(path, entry.mode)
    return None


def _restore_file(path: str, entry: _Entry, st: os.stat_result | None) -> str | None:
    changed = False
    if st is None or st.st_ino != entry.inode or not _stat.S_ISREG(st.st_mode):
        if st is not None:
            left = remove_tree(path)
            if left:
                return f"left in place: {left[0]}"
        if entry.link is not None:
            os.link(entry.link, path)
        elif entry.copy is not None:
            shutil.copyfile(entry.copy, path)
        else:
            return f"cannot restore {path}: neither a link nor a copy was kept"
        st = os.lstat(path)
        changed = True
    if st.st_size != entry.size or st.st_mtime_ns != entry.mtime_ns:
        if entry.copy is None:
            return f"cannot restore the content of {path}: too large to copy"
        with open(entry.copy, "rb") as src, open(path, "r+b") as dst:
            shutil.copyfileobj(src, dst)
            dst.truncate()
        changed = True
    if _stat.S_IMODE(st.st_mode) != entry.mode:
        os.chmod(path, entry.mode)
        changed = True
    if changed:
        os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))
    return None


def discard(snap: Snapshot) -> None:
    """Delete the snapshot's store."""
    shutil.rmtree(snap.store, ignore_errors=True)
