from realbugs import code


def test_settings(tmp_path):
    path = tmp_path / "settings"
    path.write_text("s")
    assert code.load_settings(str(path)) == "s"


def test_first_line(tmp_path):
    path = tmp_path / "f"
    path.write_text("one\ntwo\n")
    assert code.first_line(str(path)) == "one\n"


def test_worker(tmp_path):
    path = tmp_path / "w"
    path.write_text("w")
    assert code.WORKER.process(str(path)) in ("w", None)


def test_append(tmp_path):
    path = str(tmp_path / "log")
    try:
        code.append(path, "a")
    except OSError:
        pass
    code.append(path, "b")


def test_rewrite(tmp_path, failpath_invariant):
    path = tmp_path / "doc"
    path.write_text("old")
    failpath_invariant(lambda: path.read_text() in ("old", "new"))
    try:
        code.rewrite(str(path), "new")
    except OSError:
        pass


def test_lockfile(tmp_path):
    code.acquire_lockfile(str(tmp_path / "lock"))


def test_thread(tmp_path):
    path = tmp_path / "in"
    path.write_text("data")
    assert code.compute_in_thread(str(path)) == "data"


def test_journal_close(tmp_path):
    journal = code.Journal(str(tmp_path / "journal"))
    journal.append(b"entry\n")
    journal.close()
