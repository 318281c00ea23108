"""The pipes between the runner, its agents and their children."""

from __future__ import annotations

import json
import os
import threading
import time

from failpath.sweep import channel


def test_a_message_that_arrives_in_pieces_is_read_whole() -> None:
    read_fd, write_fd = os.pipe()
    data = (json.dumps({"listing": "x" * 10_000}) + "\n").encode()

    def write_slowly() -> None:
        os.write(write_fd, data[:100])  # the reader wakes on this part alone
        time.sleep(0.3)
        os.write(write_fd, data[100:])

    writer = threading.Thread(target=write_slowly)
    writer.start()
    reader = channel.Reader(read_fd)
    try:
        assert reader.first(10.0) == {"listing": "x" * 10_000}
    finally:
        writer.join()
        reader.close()
        os.close(write_fd)


def test_first_gives_none_at_eof_and_at_timeout() -> None:
    read_fd, write_fd = os.pipe()
    reader = channel.Reader(read_fd)
    assert reader.first(0.1) is None and not reader.eof  # nothing yet: a timeout
    os.write(write_fd, b'{"partial": ')
    os.close(write_fd)
    assert reader.first(10.0) is None and reader.eof  # the writer died mid-message
    reader.close()
