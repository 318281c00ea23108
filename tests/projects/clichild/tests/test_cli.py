import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args):
    env = dict(os.environ)  # keeps failpath's start-up hook on PYTHONPATH
    env["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "clichild", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_save(tmp_path):
    p = tmp_path / "out"
    proc = run_cli("save", str(p), "hello")
    assert proc.returncode == 0, proc.stderr
    assert p.read_text() == "hello"


def test_load(tmp_path):
    p = tmp_path / "in"
    p.write_text("data")
    proc = run_cli("load", str(p))
    if proc.returncode == 0:
        assert proc.stdout == "data"
    else:
        assert proc.returncode == 2 and "cannot load" in proc.stderr
