"""The static scan finds every point call site and handler, checked against a hand list."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from failpath.proof.static import Scan, scan, scan_source

SCANME = os.path.join(os.path.dirname(__file__), "projects", "scanme")

#: Every point in tests/projects/scanme, written by hand: (file, line, kind, name, cls, function).
EXPECTED_POINTS = [
    ("scanme/app.py", 7, "fallible-call", "kv.put", "kv:put", "main"),
    ("scanme/app.py", 8, "fallible-call", "scanme.kv.get", "generic", "main"),
    ("scanme/app.py", 10, "fallible-call", "scanme.kv.Cache.fill", "cache:fill", "main"),
    ("scanme/kv.py", 8, "point", "kv.validate", "generic", "put"),
    ("scanme/kv.py", 20, "point", "cache.fill", "cache:fill", "Cache.fill"),
    ("scanme/kv.py", 25, "fallible-call", "scanme.kv.Cache.fill", "cache:fill", "Cache.warm"),
    ("scanme/net.py", 7, "stdlib", "socket.create_connection", "net:connect", "fetch"),
    ("scanme/net.py", 9, "stdlib", "socket.sendall", "net:send", "fetch"),
    ("scanme/net.py", 10, "stdlib", "socket.recv", "net:recv", "fetch"),
    ("scanme/net.py", 18, "stdlib", "socket.accept", "net:accept", "serve"),
    ("scanme/net.py", 19, "stdlib", "socket.send", "net:send", "serve"),
    ("scanme/net.py", 23, "stdlib", "sqlite3.connect", "db:connect", "record"),
    ("scanme/net.py", 24, "stdlib", "sqlite3.executemany", "db:execute", "record"),
    ("scanme/net.py", 26, "stdlib", "sqlite3.execute", "db:execute", "record"),
    ("scanme/net.py", 27, "stdlib", "sqlite3.commit", "db:commit", "record"),
    ("scanme/net.py", 32, "stdlib", "subprocess.run", "proc:spawn", "run"),
    ("scanme/store.py", 9, "stdlib", "open", "io:open", "save_atomic"),
    ("scanme/store.py", 10, "stdlib", "file.write", "io:write", "save_atomic"),
    ("scanme/store.py", 11, "stdlib", "file.flush", "io:flush", "save_atomic"),
    ("scanme/store.py", 12, "stdlib", "os.fsync", "io:fsync", "save_atomic"),
    ("scanme/store.py", 14, "stdlib", "os.replace", "io:rename", "save_atomic"),
    ("scanme/store.py", 16, "stdlib", "os.unlink", "io:unlink", "save_atomic"),
    ("scanme/store.py", 22, "stdlib", "open", "io:open", "load"),
    ("scanme/store.py", 26, "stdlib", "file.read", "io:read", "load"),
    ("scanme/store.py", 28, "stdlib", "file.close", "io:close", "load"),
    ("scanme/store.py", 33, "stdlib", "os.remove", "io:unlink", "remove_quietly"),
    ("scanme/store.py", 41, "stdlib", "open", "io:open", "Journal.__init__"),
    ("scanme/store.py", 44, "stdlib", "file.write", "io:write", "Journal.append"),
    ("scanme/store.py", 46, "stdlib", "os.fsync", "io:fsync", "Journal.append"),
]

#: Every handler: (file, line, end_line, kind, types, bare, try_line, try_end_line, errno_refs).
EXPECTED_HANDLERS = [
    ("scanme/app.py", 14, 15, "except", ("ValueError",), False, 13, 13, ()),
    ("scanme/net.py", 11, 12, "except", ("ConnectionResetError", "TimeoutError"), False, 9, 10,
     ()),
    ("scanme/net.py", 13, 14, "finally", (), False, 9, 12, ()),
    ("scanme/net.py", 33, 34, "except", ("sp.CalledProcessError",), False, 32, 32, ()),
    ("scanme/store.py", 15, 17, "except", ("PermissionError",), False, 14, 14, ()),
    ("scanme/store.py", 23, 24, "except", ("FileNotFoundError",), False, 22, 22, ()),
    ("scanme/store.py", 27, 28, "finally", (), False, 26, 26, ()),
    ("scanme/store.py", 34, 36, "except", ("OSError",), False, 33, 33, ("ENOENT",)),
    ("scanme/store.py", 47, 48, "except", (), True, 46, 46, ()),
]


@pytest.fixture(scope="module")
def scanme() -> Scan:
    return scan(SCANME)


def test_scan_finds_exactly_the_hand_listed_points(scanme: Scan) -> None:
    got = [(p.file, p.line, p.kind, p.name, p.cls, p.function) for p in scanme.points]
    assert got == EXPECTED_POINTS


def test_scan_finds_exactly_the_hand_listed_handlers(scanme: Scan) -> None:
    got = [(h.file, h.line, h.end_line, h.kind, h.types, h.bare, h.try_line, h.try_end_line,
            h.errno_refs) for h in scanme.handlers]
    assert got == EXPECTED_HANDLERS


def test_tests_directory_is_excluded_by_default(scanme: Scan) -> None:
    assert scanme.files == ("scanme/__init__.py", "scanme/app.py", "scanme/kv.py",
                            "scanme/net.py", "scanme/store.py")


def test_explicit_excludes_replace_the_defaults() -> None:
    files = scan(SCANME, exclude_globs=["scanme/*"]).files
    assert files == ("tests/test_scanme.py",)


def test_include_globs_narrow_the_scan() -> None:
    result = scan(SCANME, include_globs=["scanme/kv.py"])
    assert {p.file for p in result.points} == {"scanme/kv.py"}


def test_point_site_matches_runtime_tag_form(scanme: Scan) -> None:
    point = next(p for p in scanme.points if p.name == "os.fsync")
    assert point.site == "scanme.store:save_atomic:12"


def _names(source: str) -> list[tuple[int, str | None]]:
    return [(p.line, p.name) for p in scan_source(textwrap.dedent(source)).points]


def test_module_aliases_are_followed() -> None:
    assert _names("""\
        import os as _os
        import os.path
        from os import fsync, rename as mv
        _os.fsync(1)
        os.unlink("x")
        fsync(2)
        mv("a", "b")
        os.path.join("a", "b")
        """) == [(4, "os.fsync"), (5, "os.unlink"), (6, "os.fsync"), (7, "os.rename")]


def test_point_aliases_and_literal_names() -> None:
    assert _names("""\
        import failpath as fp
        import failpath.points
        from failpath import point as p
        fp.point("a")
        p(name="b")
        failpath.points.point()
        fp.point(NAME)
        """) == [(4, "a"), (5, "b"), (6, None), (7, None)]


def test_file_methods_are_tracked_through_with_and_assignment() -> None:
    assert _names("""\
        import io, tempfile
        def f():
            with open("a") as fh, io.open("b") as g:
                fh.read(); g.write("x")
            h = open("c", "w")
            h.flush(); h.close()
            open("d").read()
            t = tempfile.NamedTemporaryFile()
            t.write(b"x")
            other.write("not a file")
        """) == [(3, "open"), (3, "open"), (4, "file.read"), (4, "file.write"), (5, "open"),
                 (6, "file.flush"), (6, "file.close"), (7, "file.read"), (7, "open"),
                 (8, "tempfile.NamedTemporaryFile"), (9, "file.write")]


def test_rebinding_a_name_forgets_its_kind() -> None:
    assert _names("""\
        def f():
            fh = open("a")
            fh = make()
            fh.write("x")
        """) == [(2, "open")]


def test_shadowed_builtin_open_is_not_a_point() -> None:
    assert _names("""\
        def f(open):
            open("x")
        """) == []


def test_fallible_methods_resolve_through_self_and_instances() -> None:
    assert _names("""\
        from failpath import fallible
        class S:
            @fallible("s.save")
            def save(self): ...
            def go(self):
                self.save()
        def use():
            s = S()
            s.save()
            S().save()
        """) == [(6, "s.save"), (9, "s.save"), (10, "s.save")]


def test_handler_types_and_finally_lines() -> None:
    handlers = scan_source(textwrap.dedent("""\
        try:
            x()
        except (OSError, ValueError) as e:
            y()
        else:
            z()
        finally: w()
        """)).handlers
    assert [(h.line, h.end_line, h.kind, h.types, h.try_line, h.try_end_line)
            for h in handlers] == [(3, 4, "except", ("OSError", "ValueError"), 2, 2),
                                   (7, 7, "finally", (), 2, 6)]


def test_enclosing_function_uses_runtime_qualnames() -> None:
    points = scan_source(textwrap.dedent("""\
        import os
        class A:
            def m(self):
                def inner():
                    os.fsync(1)
        os.fsync(2)
        """)).points
    assert [p.function for p in points] == ["A.m.<locals>.inner", "<module>"]


def test_syntax_errors_are_reported_not_raised(tmp_path: os.PathLike[str]) -> None:
    with open(os.path.join(tmp_path, "bad.py"), "w") as fh:
        fh.write("def (:\n")
    result = scan(str(tmp_path))
    assert result.errors[0][0] == "bad.py"
    assert result.errors[0][1].startswith("SyntaxError")


def test_scan_of_a_missing_root_names_it() -> None:
    with pytest.raises(NotADirectoryError, match=r"^root='/nonexistent' is not a directory"):
        scan("/nonexistent")


def test_to_dict_is_json_ready(scanme: Scan) -> None:
    data = json.loads(json.dumps(scanme.to_dict()))
    assert len(data["points"]) == len(EXPECTED_POINTS)
    assert data["handlers"][0]["types"] == ["ValueError"]


def test_a_scan_survives_the_journal_round_trip(tmp_path: os.PathLike[str]) -> None:
    with open(os.path.join(tmp_path, "bad.py"), "w") as fh:
        fh.write("def (:\n")
    with open(os.path.join(tmp_path, "ok.py"), "w") as fh:
        fh.write("import errno, os\ntry:\n    os.remove('x')\nexcept OSError as e:\n"
                 "    if e.errno != errno.ENOENT:\n        raise\n")
    original = scan(str(tmp_path))
    assert original.points and original.handlers and original.errors
    again = Scan.from_dict(json.loads(json.dumps(original.to_dict())))
    assert again == original
    assert again.handlers[0].errno_refs == ("ENOENT",)


def _points_cli(*argv: str) -> int:
    import argparse

    from failpath.proof import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(list(argv)))


def test_points_command_lists_points_and_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    assert _points_cli(SCANME) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{len(EXPECTED_POINTS)} points, {len(EXPECTED_HANDLERS)} handlers")
    assert "scanme/store.py:12:9: stdlib        os.fsync [io:fsync] in save_atomic" in out
    assert ("scanme/store.py:15-17: handler       except PermissionError (guards 14-14) "
            "in save_atomic") in out


def test_points_command_json_and_globs(capsys: pytest.CaptureFixture[str]) -> None:
    assert _points_cli(SCANME, "--json", "--exclude", "scanme/net.py") == 0
    data = json.loads(capsys.readouterr().out)
    assert "scanme/net.py" not in data["files"]
    assert "tests/test_scanme.py" not in data["files"]


def test_points_command_rejects_a_missing_path() -> None:
    from failpath.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"^path='/nonexistent' is not a directory"):
        _points_cli("/nonexistent")
