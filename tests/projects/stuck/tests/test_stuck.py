from stuck import code


def test_stuck(tmp_path):
    code.save_or_wait(str(tmp_path / "f"))
