"""A file-per-key store with a JSON index. The bugs are deliberate: each leaves damage."""

from __future__ import annotations

import json
import os
import tempfile
import time


class Store:
    def __init__(self, root: str) -> None:
        self.root = root
        self.values = os.path.join(root, "values")
        os.makedirs(self.values, exist_ok=True)
        self.index_path = os.path.join(root, "index.json")
        self.index: dict[str, int] = {}
        if os.path.exists(self.index_path):
            with open(self.index_path) as fh:
                self.index = json.load(fh)

    def put(self, key: str, value: str) -> None:
        """A temp file beside the value, renamed over it: but a failure leaves the temp."""
        fd, tmp = tempfile.mkstemp(dir=self.root)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        os.replace(tmp, os.path.join(self.values, key))
        self.index[key] = len(value)
        self._save_index()

    def _save_index(self) -> None:
        """Rewrites the index in place: a failed write leaves neither old nor new."""
        with open(self.index_path, "w") as fh:
            fh.write(json.dumps(self.index))

    def get(self, key: str) -> str:
        with open(os.path.join(self.values, key)) as fh:
            return fh.read()

    def pop(self, key: str) -> str:
        """Forgets the key before reading its value: a failed read loses the value."""
        self.index.pop(key)
        self._save_index()
        path = os.path.join(self.values, key)
        with open(path) as fh:
            value = fh.read()
        os.unlink(path)
        return value


class Journal:
    """A journal whose cleanup hides its own bugs."""

    def __init__(self, path: str) -> None:
        self.path = path

    def rollback(self, fh: object) -> None:
        os.unlink(fh.name)  # type: ignore[attr-defined]

    def write(self, text: str) -> None:
        fh = None
        try:
            fh = open(self.path + ".part", "w")
            fh.write(text)
            fh.close()
            os.replace(self.path + ".part", self.path)
        finally:
            if not os.path.exists(self.path):
                try:
                    self.rollback(fh if fh is not None and fh.closed else None)
                except Exception:
                    pass  # hides the AttributeError of rollback(None)


def checked_copy(src: str, dst: str) -> None:
    """The cleanup in `finally` can replace the error that was propagating."""
    out = open(dst, "w")
    try:
        out.write("# copied\n")  # buffered: the close writes it back, and so can fail
        with open(src) as fh:
            data = fh.read()
        if not data:
            raise ValueError(f"{src} is empty")
        out.write(data)
    finally:
        out.close()


def read_patiently(path: str) -> str:
    """Retries a failed read, forever: a persistent failure hangs the caller."""
    while True:
        try:
            with open(path) as fh:
                return fh.read()
        except OSError:
            time.sleep(0.01)


def append_line(path: str, text: str) -> None:
    """Appends a line: a write cut short leaves a partial last line after all the file
    held, which no append can avoid (and the error says so)."""
    with open(path, "a") as fh:
        fh.write(text + "\n")


def save_note(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def move_note(src: str, dst: str) -> None:
    """Moves by copying, then removing the source: a failed copy leaves the source where it
    was, which is what a failed move should do."""
    with open(src) as fin:
        text = fin.read()
    with open(dst, "w") as fout:
        fout.write(text)
    os.remove(src)
