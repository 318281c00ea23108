import os

from shared import code


def test_save_and_load(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    shared = os.environ["SHARED_DIR"]
    code.save(shared, "x")
    assert code.load(shared) == "x"
    assert (tmp_path / "fifo").exists()
