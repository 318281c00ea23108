"""A tiny file store whose error paths cover several outcome classes."""

import json
import os
import time


class StoreError(Exception):
    pass


def pause():
    """Slow every test (and every unit's child) down when the test suite asks for it."""
    time.sleep(float(os.environ.get("DASK_SMALL_DELAY", "0")))


def save(path, data):
    try:
        with open(path, "w") as fh:
            json.dump(data, fh)
    except OSError as exc:
        raise StoreError(f"cannot save {path}") from exc


def load(path, default=None):
    try:
        with open(path) as fh:
            return json.load(fh)
    except OSError:
        return default


def append_line(path, line):
    try:
        with open(path, "a") as fh:
            fh.write(line + "\n")
    except OSError:
        pass


def copy(src, dst):
    fin = open(src)
    data = fin.read()
    fin.close()
    with open(dst, "w") as fout:
        fout.write(data)


def remove(path):
    try:
        os.remove(path)
    except OSError:
        return misssing  # noqa: F821 - the bug a sweep finds
    return True
