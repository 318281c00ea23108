import errno
import os as _os
from os import fsync
from os import replace as mv


def save_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(data)
        fh.flush()
        fsync(fh.fileno())
    try:
        mv(tmp, path)
    except PermissionError:
        _os.unlink(tmp)
        raise


def load(path, default=None):
    try:
        f = open(path)
    except FileNotFoundError:
        return default
    try:
        return f.read()
    finally:
        f.close()


def remove_quietly(path):
    try:
        _os.remove(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


class Journal:
    def __init__(self, path):
        self.fh = open(path, "a")

    def append(self, line):
        self.fh.write(line + "\n")
        try:
            _os.fsync(self.fh.fileno())
        except:  # noqa: E722
            pass
