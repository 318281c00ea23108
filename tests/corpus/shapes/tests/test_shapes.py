from shapes import docs


def test_load(tmp_path):
    path = tmp_path / "doc"
    path.write_text("text")
    assert docs.load(str(path)) == "text"


def test_doc(tmp_path):
    path = tmp_path / "doc"
    path.write_text("a")
    doc = docs.Doc(str(path))
    doc.append("b")
    doc.close()
    assert path.read_text() == "ab"


def test_load_or_create(tmp_path):
    path = tmp_path / "doc"
    path.write_text("kept")
    assert docs.load_or_create(str(path)) == "kept"


def test_progress():
    docs.progress("50%")

