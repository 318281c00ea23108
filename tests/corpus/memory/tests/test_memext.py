"""The tests of memext, as a project would write them (the memory sweep runs them)."""

import memext


def test_pair():
    assert memext.pair("a", "b") == ("a", "b", "a/b")


def test_join_words():
    assert memext.join_words(["out", "of", "memory"]) == "out of memory"


def test_scale():
    assert memext.scale([1, 2.5], 2.0) == [2.0, 5.0]


def test_squares():
    assert memext.squares(3) == [1000000, 1002001, 1004004]


def test_build_list():
    assert memext.build_list(3) == ["item-0", "item-1", "item-2"]


def test_checksum():
    assert memext.checksum(b"abcdef") == memext.checksum(bytearray(b"abcdef"))


def test_apply():
    assert memext.apply(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]


def test_apply_reports_the_callback_error():
    try:
        memext.apply(int, ["1", "x"])
    except ValueError as exc:
        assert "invalid literal" in str(exc)
    else:
        raise AssertionError("apply() swallowed the callback's error")
