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
    "os.fdopen": ("os.fdopen", "io:open"),
    "os.stat": ("os.stat", "io:stat"),
    "os.lstat": ("os.lstat", "io:stat"),
    "os.fstat": ("os.fstat", "io:stat"),
    "os.readlink": ("os.readlink", "io:stat"),
    # os.path's predicates and getters stat at the caller's site (the predicates answer False)
    "os.path.exists": ("os.stat", "io:stat"),
    "os.path.isfile": ("os.stat", "io:stat"),
    "os.path.isdir": ("os.stat", "io:stat"),
    "os.path.getsize": ("os.stat", "io:stat"),
    "os.path.getmtime": ("os.stat", "io:stat"),
    "os.path.getatime": ("os.stat", "io:stat"),
    "os.path.getctime": ("os.stat", "io:stat"),
    "os.path.samefile": ("os.stat", "io:stat"),
    "os.path.lexists": ("os.lstat", "io:stat"),
    "os.path.islink": ("os.lstat", "io:stat"),
    "os.link": ("os.link", "io:link"),
    "os.symlink": ("os.symlink", "io:link"),
    "os.chmod": ("os.chmod", "io:attr"),
    "os.fchmod": ("os.fchmod", "io:attr"),
    "os.chown": ("os.chown", "io:attr"),
    "os.utime": ("os.utime", "io:attr"),
    "os.listdir": ("os.listdir", "io:listdir"),
    "os.scandir": ("os.scandir", "io:listdir"),
    "os.walk": ("os.walk", "io:listdir"),
    "glob.glob": ("glob.glob", "io:listdir"),
    "glob.iglob": ("glob.iglob", "io:listdir"),
    "shutil.rmtree": ("shutil.rmtree", "io:rmdir"),
    "shutil.copy2": ("shutil.copy2", "io:copy"),
    "shutil.copymode": ("shutil.copymode", "io:attr"),
    "shutil.copystat": ("shutil.copystat", "io:attr"),
    "os.dup": ("os.dup", "io:fd"),
    "os.dup2": ("os.dup2", "io:fd"),
    "os.pipe": ("os.pipe", "io:fd"),
    "mmap.mmap": ("mmap.mmap", "io:mmap"),
    "fcntl.flock": ("fcntl.flock", "io:lock"),
    "fcntl.lockf": ("fcntl.lockf", "io:lock"),
    "fcntl.fcntl": ("fcntl.fcntl", "io:lock"),
    "socket.create_connection": ("socket.create_connection", "net:connect"),
    "sqlite3.connect": ("sqlite3.connect", "db:connect"),
    "subprocess.run": ("subprocess.run", "proc:spawn"),
    "subprocess.Popen": ("subprocess.Popen", "proc:spawn"),
}

#: Calls that are points only for some values of one argument: dotted name ->
#: (position, keyword, the names that make it a point, or None; the names that do not).
#: ``fcntl.fcntl`` locks only with a lock command; unlocking is never a point.
ARGUMENTS: dict[str, tuple[int, str, frozenset[str] | None, frozenset[str]]] = {
    "fcntl.fcntl": (1, "cmd", frozenset({"fcntl.F_SETLK", "fcntl.F_SETLKW", "fcntl.F_OFD_SETLK",
                                         "fcntl.F_OFD_SETLKW"}), frozenset()),
    "fcntl.flock": (1, "operation", None, frozenset({"fcntl.LOCK_UN"})),
    "fcntl.lockf": (1, "cmd", None, frozenset({"fcntl.LOCK_UN"})),
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
    # pathlib.Path methods that make one instrumented call at their caller's site (on every
    # supported Python; iterdir, touch and is_symlink change calls between versions).
    "path": {
        "stat": ("os.stat", "io:stat"),
        "lstat": ("os.stat", "io:stat"),
        "exists": ("os.stat", "io:stat"),
        "is_file": ("os.stat", "io:stat"),
        "is_dir": ("os.stat", "io:stat"),
        "readlink": ("os.readlink", "io:stat"),
        "chmod": ("os.chmod", "io:attr"),
        "symlink_to": ("os.symlink", "io:link"),
        "hardlink_to": ("os.link", "io:link"),
        "mkdir": ("os.mkdir", "io:mkdir"),
        "unlink": ("os.unlink", "io:unlink"),
        "rmdir": ("os.rmdir", "io:rmdir"),
        "rename": ("os.rename", "io:rename"),
        "replace": ("os.replace", "io:rename"),
        "open": ("open", "io:open"),
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
    "pathlib.Path": "path",
    "pathlib.PosixPath": "path",
    "os.scandir": "dirents",
    "sqlite3.connect": "sqlite3.Connection",
    **_ALLOCATOR_CLASSES,
    "failpath.Mempool.for_allocator": "mempool",
    "failpath.mempool.Mempool.for_allocator": "mempool",
}

#: Receiver kinds whose iteration is a point (a ``for`` loop over them; the point's line
#: is the loop's): reading the entries of ``os.scandir``'s iterator.
ITERATED: dict[str, tuple[str, str]] = {"dirents": ("os.scandir", "io:listdir")}

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
    "pathlib.Path": "path",
    "pathlib.PosixPath": "path",
    **_ALLOCATOR_CLASSES,
}

#: Methods whose result is a receiver kind, by receiver kind.
METHOD_RETURNS: dict[tuple[str, str], str] = {
    ("sqlite3.Connection", "cursor"): "sqlite3.Cursor",
    ("sqlite3.Connection", "execute"): "sqlite3.Cursor",
    ("socket", "dup"): "socket",
    ("path", "open"): "file",
}

#: The names under which failpath's own API is reached.
POINT_FUNCS = frozenset({"failpath.point", "failpath.points.point"})
FALLIBLE_FUNCS = frozenset({"failpath.fallible", "failpath.points.fallible"})
