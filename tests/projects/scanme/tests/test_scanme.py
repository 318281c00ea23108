import os


def test_excluded_by_default(tmp_path):
    with open(tmp_path / "x", "w") as fh:
        fh.write("x")
        fh.flush()
        os.fsync(fh.fileno())
