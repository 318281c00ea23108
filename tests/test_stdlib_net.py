"""failpath.stdlib net group: sockets on 127.0.0.1 and socketpairs only."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator

import pytest

import failpath
import failpath.stdlib as fstd


@pytest.fixture(autouse=True)
def net() -> Iterator[None]:
    with fstd.install("net"):
        yield


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    with a, b:
        yield a, b


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield server


def expect(exc: BaseException, cls: type[OSError], code: int) -> None:
    assert type(exc) is cls
    assert isinstance(exc, OSError)
    assert (exc.errno, exc.strerror, exc.filename) == (code, os.strerror(code), None)
    assert failpath.injection_of(exc) is not None


def test_connect_and_create_connection_refused(listener: socket.socket) -> None:
    address = listener.getsockname()
    with socket.socket() as sock, failpath.inject("name socket.connect"), \
            pytest.raises(OSError) as info:
        sock.connect(address)
    expect(info.value, ConnectionRefusedError, errno.ECONNREFUSED)
    with failpath.inject("name socket.create_connection"), pytest.raises(OSError) as info:
        socket.create_connection(address)
    expect(info.value, ConnectionRefusedError, errno.ECONNREFUSED)
    with failpath.inject("name socket.*", action="off") as rule:
        socket.create_connection(address).close()
    assert rule.hits == 1  # the connect inside is not a point of its own


def test_send_and_sendall_broken_pipe(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    for name in ("send", "sendall"):
        with failpath.inject(f"name socket.{name}"), pytest.raises(OSError) as info:
            getattr(a, name)(b"x")
        expect(info.value, BrokenPipeError, errno.EPIPE)


def test_send_short_moves_fewer_bytes(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    with failpath.inject("name socket.send", action="short(2)"):
        assert a.send(b"abcdef") == 2
    assert b.recv(10) == b"ab"


def test_sendall_short_sends_a_prefix_then_raises(
        pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    with failpath.inject("name socket.sendall", action="short(3)"), \
            pytest.raises(BrokenPipeError):
        a.sendall(b"abcdef")
    assert b.recv(10) == b"abc"


def test_recv_connection_reset_and_raise_after(
        pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.sendall(b"hello")
    with failpath.inject("name socket.recv"), pytest.raises(OSError) as info:
        b.recv(10)
    expect(info.value, ConnectionResetError, errno.ECONNRESET)
    with failpath.inject("name socket.recv", action="raise_after"), \
            pytest.raises(ConnectionResetError):
        b.recv(10)
    a.sendall(b"!")
    assert b.recv(10) == b"!"  # "hello" was consumed by the raise_after


def test_accept_emfile_and_return(listener: socket.socket) -> None:
    with socket.create_connection(listener.getsockname()):
        with failpath.inject("name socket.accept"), pytest.raises(OSError) as info:
            listener.accept()
        expect(info.value, OSError, errno.EMFILE)
        with failpath.inject("name socket.accept", action="return(None)"):
            assert listener.accept() is None
        conn, _ = listener.accept()
        conn.close()


def test_disarmed_sockets_pass_through(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.sendall(b"ok")
    assert b.recv(2) == b"ok"
    assert failpath.points("func test_disarmed_sockets_pass_through") == []
