"""The one configuration table: precedence, conversion, errors, and the generated docs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from failpath import config, docgen
from failpath.errors import InvalidArgument

DOCS = Path(__file__).parent.parent / "docs"


def write_pyproject(root: Path, body: str) -> None:
    (root / "pyproject.toml").write_text("[tool.failpath]\n" + body)


def test_cli_beats_environment_beats_pyproject(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'mode = "persistent"\njobs = 3\ntimeout = 7\n')
    env = {"FAILPATH_JOBS": "5", "FAILPATH_TIMEOUT": "9"}
    settings = config.resolve(str(tmp_path), {"timeout": "11", "mode": None}, env)
    assert settings["mode"] == "persistent"  # pyproject only
    assert settings["jobs"] == 5  # environment over pyproject
    assert settings["timeout"] == 11.0  # command line over both


def test_defaults_come_from_the_table(tmp_path: Path) -> None:
    settings = config.resolve(str(tmp_path), {}, {})
    for opt in config.OPTIONS:
        assert settings[opt.key] == opt.default


def test_lists_and_booleans_convert_from_text(tmp_path: Path) -> None:
    settings = config.resolve(str(tmp_path), {"groups": "files, db", "coverage": "off"}, {})
    assert settings["groups"] == ["files", "db"]
    assert settings["coverage"] is False


def test_unknown_pyproject_key_warns_with_the_file_name(tmp_path: Path) -> None:
    write_pyproject(tmp_path, "colour = true\n")
    with pytest.warns(UserWarning, match=r"pyproject\.toml: unknown key \[tool\.failpath\] "
                                         r"'colour' ignored"):
        config.resolve(str(tmp_path), {}, {})


def test_bad_value_names_the_source_and_key(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'jobs = "many"\n')
    with pytest.raises(InvalidArgument, match=r"^.*pyproject\.toml \[tool\.failpath\]: "
                                              r"jobs='many' is not a valid int"):
        config.resolve(str(tmp_path), {}, {})
    with pytest.raises(InvalidArgument, match=r"^environment FAILPATH_MODE: mode='often' "
                                              r"must be one of"):
        config.resolve(str(tmp_path / "none"), {}, {"FAILPATH_MODE": "often"})


def test_malformed_pyproject_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.failpath\n")
    with pytest.raises(InvalidArgument, match="not valid TOML"):
        config.resolve(str(tmp_path), {}, {})


@pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                    reason="docs are generated with Python 3.11, whose argparse they show")
def test_generated_reference_pages_are_up_to_date() -> None:
    assert docgen.main([str(DOCS), "--check"]) == 0


def test_configuration_page_lists_every_option() -> None:
    page = docgen.configuration_page()
    for opt in config.OPTIONS:
        assert f"`{opt.flag}`" in page and f"`{opt.env}`" in page
