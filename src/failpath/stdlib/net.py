"""Instrumented sockets: connect, send, sendall, recv, accept, and create_connection."""

from __future__ import annotations

import functools
import socket
from typing import Any

from failpath import _state
from failpath.stdlib import _hit, _real, defaults

_connect, _send, _sendall = _real.real_socket_connect, _real.real_socket_send, \
    _real.real_socket_sendall
_recv, _accept = _real.real_socket_recv, _real.real_socket_accept
_create_connection = socket.create_connection


def _connect_slow(sock: socket.socket, address: Any) -> Any:
    fault = _hit.fault_at("socket.connect", "net:connect", defaults.ECONNREFUSED)
    return _hit.call(fault, _connect, sock, address)


@functools.wraps(_connect)
def connect(self: socket.socket, address: Any, /) -> Any:
    if not _state.armed:
        return _connect(self, address)
    return _connect_slow(self, address)


def _send_slow(sock: socket.socket, data: Any, flags: tuple[Any, ...]) -> Any:
    fault = _hit.fault_at("socket.send", "net:send", defaults.EPIPE, None, _hit.nbytes(data),
                          True)
    if fault is not None and fault.kind == "short":
        return _hit.nested(_send, sock, _hit.prefix(data, fault.value), *flags)
    return _hit.call(fault, _send, sock, data, *flags)


@functools.wraps(_send)
def send(self: socket.socket, data: Any, /, *flags: Any) -> Any:
    if not _state.armed:
        return _send(self, data, *flags)
    return _send_slow(self, data, flags)


def _sendall_slow(sock: socket.socket, data: Any, flags: tuple[Any, ...]) -> Any:
    fault = _hit.fault_at("socket.sendall", "net:send", defaults.EPIPE, None,
                          _hit.nbytes(data), True)
    if fault is None or fault.kind != "short":
        return _hit.call(fault, _sendall, sock, data, *flags)
    # sendall never returns short: part of the data goes out, then the peer is gone.
    _hit.nested(_sendall, sock, _hit.prefix(data, fault.value), *flags)
    assert fault.exc is not None
    raise fault.exc


@functools.wraps(_sendall)
def sendall(self: socket.socket, data: Any, /, *flags: Any) -> Any:
    if not _state.armed:
        return _sendall(self, data, *flags)
    return _sendall_slow(self, data, flags)


def _recv_slow(sock: socket.socket, args: tuple[Any, ...]) -> Any:
    fault = _hit.fault_at("socket.recv", "net:recv", defaults.ECONNRESET)
    return _hit.call(fault, _recv, sock, *args)


@functools.wraps(_recv)
def recv(self: socket.socket, /, *args: Any) -> Any:
    if not _state.armed:
        return _recv(self, *args)
    return _recv_slow(self, args)


def _close_accepted(pair: tuple[socket.socket, Any]) -> None:
    pair[0].close()


def _accept_slow(sock: socket.socket) -> Any:
    fault = _hit.fault_at("socket.accept", "net:accept", defaults.EMFILE)
    return _hit.call(fault, _accept, sock, undo=_close_accepted)


@functools.wraps(_accept)
def accept(self: socket.socket) -> Any:
    if not _state.armed:
        return _accept(self)
    return _accept_slow(self)


def _close_socket(sock: socket.socket) -> None:
    sock.close()


def _create_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    fault = _hit.fault_at("socket.create_connection", "net:connect", defaults.ECONNREFUSED)
    call = functools.partial(_create_connection, *args, **kwargs)
    return _hit.call(fault, call, undo=_close_socket)


@functools.wraps(_create_connection)
def create_connection(*args: Any, **kwargs: Any) -> Any:
    if not _state.armed:
        return _create_connection(*args, **kwargs)
    return _create_slow(args, kwargs)


for _fn, _point in ((connect, "socket.connect"), (send, "socket.send"),
                    (sendall, "socket.sendall"), (recv, "socket.recv"),
                    (accept, "socket.accept"), (create_connection, "socket.create_connection")):
    _hit.name_point(_fn, _point)


def targets() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement): socket.socket's methods and create_connection."""
    methods = [(socket.socket, n, globals()[n])
               for n in ("connect", "send", "sendall", "recv", "accept")]
    return [*methods, (socket, "create_connection", create_connection)]
