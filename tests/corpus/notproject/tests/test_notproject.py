import logging

from notproject import work


def test_pool(tmp_path):
    assert work.write_all([str(tmp_path / "a")]) == [1]


def test_note(tmp_path):
    work.note(str(tmp_path / "log"), "hello")
    for handler in logging.getLogger(f"notproject.{tmp_path / 'log'}").handlers:
        handler.close()
