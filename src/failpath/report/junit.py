"""The JUnit XML report: one test case per unit; bugs are failures with their evidence."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from failpath.report.summary import evidence, is_bug, totals

# XML 1.0 cannot carry most control characters, whatever the escaping.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: Any) -> str:
    return _XML_BAD.sub("\ufffd", str(text))


def _classname(test: str) -> str:
    path = test.split("::", 1)[0]
    return path[:-3].replace("/", ".") if path.endswith(".py") else path.replace("/", ".")


def _case_name(unit: Mapping[str, Any]) -> str:
    test = str(unit.get("test", "?"))
    point = unit.get("point") or {}
    return (f"{test.split('::', 1)[-1]} [{point.get('tag')} #{unit.get('nth')} "
            f"{unit.get('mode')} {unit.get('action')}]")


def _testcase(suite: ET.Element, unit: Mapping[str, Any]) -> None:
    case = ET.SubElement(suite, "testcase", classname=_clean(_classname(str(unit.get("test")))),
                         name=_clean(_case_name(unit)),
                         time=f"{float(unit.get('duration_s') or 0):.3f}")
    outcome = str(unit.get("outcome"))
    if is_bug(unit):
        point = unit.get("point") or {}
        message = (f"{outcome} at {point.get('file')}:{point.get('line')}: "
                   f"{unit.get('final') or unit.get('invariant') or unit.get('error')}")
        fail = ET.SubElement(case, "failure", message=_clean(message), type=outcome)
        fail.text = _clean(evidence(unit))
    elif outcome == "unreached":
        ET.SubElement(case, "skipped", message="the planned hit never came (unreached)")
    else:
        out = ET.SubElement(case, "system-out")
        out.text = _clean(f"{outcome}\nreproduce: {unit.get('reproducer')}")


def render(result: Mapping[str, Any]) -> str:
    """The result as a JUnit XML document (one ``testsuite`` named ``failpath``)."""
    units = list(result.get("units") or ())
    baseline = list(result.get("baseline_failures") or ())
    n_units, n_bugs = totals(result)
    skipped = sum(1 for u in units if u.get("outcome") == "unreached") + len(baseline)
    root = ET.Element("testsuites", name="failpath", tests=str(len(units) + len(baseline)),
                      failures=str(n_bugs), errors="0")
    suite = ET.SubElement(root, "testsuite", name="failpath",
                          tests=str(len(units) + len(baseline)), failures=str(n_bugs),
                          errors="0", skipped=str(skipped),
                          time=f"{float(result.get('duration_s') or 0):.3f}")
    props = ET.SubElement(suite, "properties")
    for key in ("failpath", "strategy", "mode", "seed"):
        ET.SubElement(props, "property", name=key, value=_clean(result.get(key, "")))
    for unit in units:
        _testcase(suite, unit)
    for test in baseline:
        case = ET.SubElement(suite, "testcase", classname=_clean(_classname(test)),
                             name=_clean(test.split("::", 1)[-1] + " [baseline]"), time="0.000")
        ET.SubElement(case, "skipped", message="fails without faults; not swept")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
