"""The fail-rs spec grammar ``target=[p%][cnt*]action[(arg)][->...]`` and its errors."""

from __future__ import annotations

import pytest

from failpath import InjectedFault, SpecError, configure, point
from failpath.actions import Action
from failpath.triggers import parse_chain, parse_spec


def _run(chain_text: str, n: int, seed: int | None = None) -> list[str]:
    chain = parse_chain(chain_text, seed)
    out = []
    for _ in range(n):
        action = chain.next_action()
        out.append("-" if action is None else str(action))
    return out


def test_counted_chain_fails_exactly_the_third_hit() -> None:
    assert _run("2*off->1*raise(ENOSPC)->off", 5) == [
        "off", "off", "raise(ENOSPC)", "off", "off"]


def test_chain_with_every_task_counted_runs_out() -> None:
    chain = parse_chain("1*raise->2*return(1)")
    assert _run("1*raise->2*return(1)", 4) == ["raise", "return(1)", "return(1)", "-"]
    assert not chain.exhausted
    for _ in range(3):
        chain.next_action()
    assert chain.exhausted


def test_uncounted_task_repeats_forever() -> None:
    assert _run("raise(EIO)", 3) == ["raise(EIO)"] * 3


def test_percent_task_is_drawn_and_falls_through_to_the_next() -> None:
    got = _run("30%raise->off", 1000, seed=3)
    assert got == _run("30%raise->off", 1000, seed=3)
    assert 200 < got.count("raise") < 400
    assert set(got) == {"raise", "off"}


def test_percent_and_count_combine() -> None:
    got = _run("100%2*raise->off", 4)
    assert got == ["raise", "raise", "off", "off"]
    assert _run("0%raise->off", 3) == ["off"] * 3


def test_spec_with_several_entries_and_whitespace() -> None:
    entries = parse_spec(" kv.write = 2*off -> raise(ENOSPC) ; kv.sync=raise_after(EIO);")
    assert [(t, c.text) for t, c in entries] == [
        ("kv.write", "2*off -> raise(ENOSPC)"), ("kv.sync", "raise_after(EIO)")]
    assert [str(t.action) for t in entries[0][1].tasks] == ["off", "raise(ENOSPC)"]


def test_action_arguments_may_contain_separators_inside_quotes_and_parens() -> None:
    ((_, chain),) = parse_spec("a=return(('x;y', 'a=b', 'p->q', ')'))")
    assert chain.tasks[0].action == Action("return", value=("x;y", "a=b", "p->q", ")"))
    ((_, chain),) = parse_spec("a=print(a;b=c)")
    assert chain.tasks[0].action == Action("print", value="a;b=c")


def test_empty_spec_has_no_entries_and_a_trailing_semicolon_is_allowed() -> None:
    assert parse_spec("") == [] and parse_spec(" \t\n") == []
    assert [t for t, _ in parse_spec("a=off;")] == ["a"]


def test_configure_arms_from_the_spec_text() -> None:
    configure("spec.cfg=1*off->raise(EPIPE)")
    assert point("spec.cfg") is None
    with pytest.raises(BrokenPipeError):
        point("spec.cfg")


def test_configure_replaces_what_the_previous_configure_armed() -> None:
    configure("spec.a=raise")
    configure("spec.b=raise")
    assert point("spec.a") is None
    with pytest.raises(InjectedFault):
        point("spec.b")
    configure("")
    assert point("spec.b") is None


@pytest.mark.parametrize(("text", "column", "pattern"), [
    ("kv.write", 1, r"^expected 'target=actions' at column 1:"),
    ("=raise", 1, r"^empty target before '=' at column 1:"),
    ("a=", 3, r"^expected an action \(off, raise, return, delay, short, crash, print\) "
              r"at column 3:"),
    ("a=explode", 3, r"^action='explode' is unknown; use one of off, raise, "),
    ("a=raise(ENOSPC", 8, r"^unclosed '\(' in action argument at column 8:"),
    ("a=2raise", 3, r"^expected 'N\*' \(a whole count followed by '\*'\) at column 3:"),
    ("a=1.5*raise", 3, r"^expected 'N\*' \(a whole count followed by '\*'\) at column 3:"),
    ("a=150%raise", 3, r"^percentage 150% must be within 0-100 at column 3:"),
    ("a=1.2.3%raise", 3, r"^bad percentage '1\.2\.3' at column 3:"),
    ("a=raise x", 9, r"^expected ';' or '->' after an action at column 9:"),
    ("a=raise;b", 9, r"^expected 'target=actions' at column 9:"),
    ("a=raise(ENOPE)", 3, r"^errno='ENOPE' is not an errno name known to this platform "),
    ("a=raise(NopeError)", 3, r"^exception='NopeError' is not a builtin exception "),
    ("a=return(os.getcwd())", 3, r"^return value 'os\.getcwd\(\)' is not a Python literal"),
    ("a=delay(x)", 3, r"^delay\(x\) needs a number, e\.g\. delay\(100\) at column 3:"),
    ("a=off(1)", 3, r"^action 'off' takes no argument at column 3:"),
    ("a=raise->", 10, r"^expected an action .* at column 10:"),
])
def test_malformed_spec_raises_spec_error_with_the_column(
        text: str, column: int, pattern: str) -> None:
    with pytest.raises(SpecError, match=pattern) as info:
        parse_spec(text)
    assert info.value.column == column and info.value.spec == text
    assert isinstance(info.value, ValueError)


def test_spec_error_shows_the_text_around_the_column_with_a_caret() -> None:
    text = "kv.write=2*off->1*explode(3)->off;kv.sync=raise"
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    head, excerpt, caret = message.split("\n")
    assert head.endswith("at column 19:")
    assert excerpt == "    " + text[6:30]
    assert caret == "    " + " " * 12 + "^"
    assert excerpt[caret.index("^")] == "e"  # the caret sits under the offending text


def test_spec_error_caret_stays_aligned_across_tabs_and_newlines() -> None:
    text = "a=off;\n\tb=bad"
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    _, excerpt, caret = str(info.value).split("\n")
    assert excerpt[caret.index("^")] == "b" and info.value.column == 11


def test_configure_reports_malformed_text_and_arms_nothing() -> None:
    with pytest.raises(SpecError, match=r"^unexpected text after|^expected ';' or '->'"):
        configure("ok=raise;bad=raise junk")
    assert point("ok") is None


def test_configure_rejects_a_non_string() -> None:
    from failpath import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"^spec=3 must be a string"):
        configure(3)  # type: ignore[arg-type]


def test_parse_chain_rejects_trailing_text() -> None:
    with pytest.raises(SpecError, match=r"^unexpected text after the action chain at column 7:"):
        parse_chain("raise ;x")
