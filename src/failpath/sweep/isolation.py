"""Snapshots of what a test can have written, restored after each child so none leaks.

A snapshot of a directory keeps, per file, a hard link to its inode (so a file the child
unlinked or renamed comes back as the *same* inode, which the parent may hold open) and
a copy of its bytes (so a file the child rewrote in place gets its content back in the
same inode). Files the child created are removed; directories it removed come back.
Where hard links are impossible (another file system) only the copy is kept.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field

_IGNORED = frozenset({".git", ".failpath", "__pycache__", ".pytest_cache", ".mypy_cache",
                      ".ruff_cache", ".venv", "venv", "node_modules", ".tox"})
_MAX_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class _Entry:
    kind: str  # "dir" | "file" | "link"
    mode: int
    inode: int = 0
    size: int = 0
    mtime_ns: int = 0
    link: str | None = None   # hard link into the store (same inode)
    copy: str | None = None   # byte copy in the store
    target: str | None = None  # symlink target


@dataclass(slots=True)
class Snapshot:
    """The saved state of some directory trees."""

    roots: list[str]
    store: str
    entries: dict[str, _Entry] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)

    def covers(self, path: str) -> bool:
        """True when ``path`` lies inside one of the snapshot's roots."""
        path = os.path.abspath(path)
        return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots)


def _walk(root: str) -> list[str]:
    out = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _IGNORED]
        out += [os.path.join(dirpath, d) for d in dirnames]
        out += [os.path.join(dirpath, f) for f in filenames]
    return out


def take(roots: list[str], store_parent: str | None = None) -> Snapshot:
    """Snapshot the trees under ``roots`` (missing roots are recorded as absent)."""
    roots = sorted({os.path.abspath(r) for r in roots})
    store = tempfile.mkdtemp(prefix="failpath-snap-", dir=store_parent)
    snap = Snapshot(roots, store, offsets=file_offsets())
    counter = 0
    for root in roots:
        if not os.path.lexists(root):
            continue
        for path in _walk(root):
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            counter += 1
            snap.entries[path] = _save(path, st, store, counter)
    return snap


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
            if stat.S_ISREG(os.fstat(fd).st_mode):
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


def _save(path: str, st: os.stat_result, store: str, n: int) -> _Entry:
    if stat.S_ISDIR(st.st_mode):
        return _Entry("dir", stat.S_IMODE(st.st_mode))
    if stat.S_ISLNK(st.st_mode):
        return _Entry("link", 0, target=os.readlink(path))
    entry = _Entry("file", stat.S_IMODE(st.st_mode), st.st_ino, st.st_size, st.st_mtime_ns)
    if not stat.S_ISREG(st.st_mode):
        return entry
    link = os.path.join(store, f"{n}.link")
    try:
        os.link(path, link)
        entry.link = link
    except OSError:
        entry.link = None
    if st.st_size <= _MAX_BYTES:
        copy = os.path.join(store, f"{n}.copy")
        try:
            shutil.copyfile(path, copy)
            entry.copy = copy
        except OSError:
            entry.copy = None
    return entry


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=False)
    else:
        os.unlink(path)


def restore(snap: Snapshot) -> list[str]:
    """Put every root back as it was when ``snap`` was taken; returns the paths changed."""
    changed: list[str] = []
    for root in snap.roots:
        if not os.path.lexists(root):
            continue
        for path in sorted(_walk(root), key=len, reverse=True):
            if path not in snap.entries and os.path.lexists(path):
                _remove(path)
                changed.append(path)
    for path, entry in sorted(snap.entries.items()):
        if _restore_one(path, entry):
            changed.append(path)
    return changed


def _restore_one(path: str, entry: _Entry) -> bool:
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    if entry.kind == "dir":
        if st is None or not stat.S_ISDIR(st.st_mode):
            if st is not None:
                _remove(path)
            os.makedirs(path, exist_ok=True)
            os.chmod(path, entry.mode)
            return True
        if stat.S_IMODE(st.st_mode) != entry.mode:
            os.chmod(path, entry.mode)
            return True
        return False
    if entry.kind == "link":
        if st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(path) == entry.target:
            return False
        if st is not None:
            _remove(path)
        assert entry.target is not None
        os.symlink(entry.target, path)
        return True
    return _restore_file(path, entry, st)


def _restore_file(path: str, entry: _Entry, st: os.stat_result | None) -> bool:
    changed = False
    if st is None or st.st_ino != entry.inode or not stat.S_ISREG(st.st_mode):
        if st is not None:
            _remove(path)
        if entry.link is not None:
            os.link(entry.link, path)
        elif entry.copy is not None:
            shutil.copyfile(entry.copy, path)
        else:
            return True
        st = os.lstat(path)
        changed = True
    if entry.copy is not None and (st.st_size != entry.size or st.st_mtime_ns != entry.mtime_ns):
        with open(entry.copy, "rb") as src, open(path, "r+b") as dst:
            shutil.copyfileobj(src, dst)
            dst.truncate()
        changed = True
    if stat.S_IMODE(st.st_mode) != entry.mode:
        os.chmod(path, entry.mode)
        changed = True
    if changed:
        os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns))
    return changed


def discard(snap: Snapshot) -> None:
    """Delete the snapshot's store."""
    shutil.rmtree(snap.store, ignore_errors=True)
