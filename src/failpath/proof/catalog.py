"""The catalogue of instrumented standard-library operations the static scan recognises."""

from __future__ import annotations

#: Module-level functions: dotted name -> (point name, point class).
FUNCTIONS: dict[str, tuple[str, str]] = {
    "builtins.open": ("open", "io:open"),
    "io.open": ("open", "io:open"),
    "os.open": ("os.open", "io:open"),
    "os.read": ("os.read", "io:read"),
    "os.pread": ("os.pread", "io:read"),
    "os.write": ("os.write", "io:write"),
    "os.pwrite": ("os.pwrite", "io:write"),
    "os.close": ("os.close", "io:close"),
    "os.fsync": ("os.fsync", "io:fsync"),
    "os.fdatasync": ("os.fdatasync", "io:fsync"),
    "os.rename": ("os.rename", "io:rename"),
    "os.replace": ("os.replace", "io:rename"),
    "os.unlink": ("os.unlink", "io:unlink"),
    "os.remove": ("os.remove", "io:unlink"),
    "os.mkdir": ("os.mkdir", "io:mkdir"),
    "os.makedirs": ("os.makedirs", "io:mkdir"),
    "os.rmdir": ("os.rmdir", "io:rmdir"),
    "os.truncate": ("os.truncate", "io:truncate"),
    "os.ftruncate": ("os.ftruncate", "io:truncate"),
    "shutil.copyfile": ("shutil.copyfile", "io:copy"),
    "shutil.copy": ("shutil.copy", "io:copy"),
    "shutil.move": ("shutil.move", "io:rename"),
    "tempfile.mkstemp": ("tempfile.mkstemp", "io:tempfile"),
    "tempfile.NamedTemporaryFile": ("tempfile.NamedTemporaryFile", "io:tempfile"),
    "socket.create_connection": ("socket.create_connection", "net:connect"),
    "sqlite3.connect": ("sqlite3.connect", "db:connect"),
    "subprocess.run": ("subprocess.run", "proc:spawn"),
    "subprocess.Popen": ("subprocess.Popen", "proc:spawn"),
}

#: Methods by receiver kind: kind -> {method: (point name, point class)}.
METHODS: dict[str, dict[str, tuple[str, str]]] = {
    "file": {
        "read": ("file.read", "io:read"),
        "write": ("file.write", "io:write"),
        "flush": ("file.flush", "io:flush"),
        "close": ("file.close", "io:close"),
    },
    "socket": {
        "connect": ("socket.connect", "net:connect"),
        "send": ("socket.send", "net:send"),
        "sendall": ("socket.sendall", "net:send"),
        "recv": ("socket.recv", "net:recv"),
        "accept": ("socket.accept", "net:accept"),
    },
    "sqlite3.Connection": {
        "execute": ("sqlite3.execute", "db:execute"),
        "executemany": ("sqlite3.executemany", "db:execute"),
        "commit": ("sqlite3.commit", "db:commit"),
    },
    "sqlite3.Cursor": {
        "execute": ("sqlite3.execute", "db:execute"),
        "executemany": ("sqlite3.executemany", "db:execute"),
    },
    # failpath's own allocation sites (SPEC section 3 and 4): each alloc call is a point.
    "allocator": {"alloc": ("Allocator.alloc", "memory")},
    "mempool": {"alloc": ("Mempool.alloc", "memory:mempool")},
}

_ALLOCATOR_CLASSES = {"failpath.Allocator": "allocator", "failpath.alloc.Allocator": "allocator",
                      "failpath.Mempool": "mempool", "failpath.mempool.Mempool": "mempool"}

#: What calling a function returns, as a receiver kind (for method resolution).
RETURNS: dict[str, str] = {
    "builtins.open": "file",
    "io.open": "file",
    "os.fdopen": "file",
    "tempfile.NamedTemporaryFile": "file",
    "tempfile.TemporaryFile": "file",
    "socket.socket": "socket",
    "socket.create_connection": "socket",
    "sqlite3.connect": "sqlite3.Connection",
    **_ALLOCATOR_CLASSES,
    "failpath.Mempool.for_allocator": "mempool",
    "failpath.mempool.Mempool.for_allocator": "mempool",
}

#: Annotations that name a receiver kind (``def f(sock: socket.socket)``).
ANNOTATIONS: dict[str, str] = {
    "socket.socket": "socket",
    "sqlite3.Connection": "sqlite3.Connection",
    "sqlite3.Cursor": "sqlite3.Cursor",
    "typing.IO": "file",
    "typing.TextIO": "file",
    "typing.BinaryIO": "file",
    "io.TextIOWrapper": "file",
    "io.BufferedWriter": "file",
    "io.BufferedReader": "file",
    "io.FileIO": "file",
    **_ALLOCATOR_CLASSES,
}

#: Methods whose result is a receiver kind, by receiver kind.
METHOD_RETURNS: dict[tuple[str, str], str] = {
    ("sqlite3.Connection", "cursor"): "sqlite3.Cursor",
    ("sqlite3.Connection", "execute"): "sqlite3.Cursor",
    ("socket", "dup"): "socket",
}

#: The names under which failpath's own API is reached.
POINT_FUNCS = frozenset({"failpath.point", "failpath.points.point"})
FALLIBLE_FUNCS = frozenset({"failpath.fallible", "failpath.points.fallible"})
