"""The SARIF 2.1.0 report: each bug a result at its point's call site, the handler related."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from typing import Any

from failpath.report.summary import is_bug

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

#: One rule per reported outcome class: (level, description).
RULES: dict[str, tuple[str, str]] = {
    "crashed": ("error", "The process died after an injected fault (signal, os._exit, "
                         "fatal error)."),
    "hung": ("error", "The test hung after an injected fault and was killed at the timeout."),
    "mishandled": ("error", "The injected fault ended in an unrelated exception or a failed "
                            "assertion."),
    "inconsistent": ("error", "A recovery check (invariant) failed after an injected fault."),
    "leaked": ("error", "Resources (fds, threads, processes, temp files) leaked on the error "
                        "path."),
    "swallowed": ("warning", "The injected error was caught and discarded without trace."),
}


def _location(file: Any, line: Any, message: str | None = None,
              ident: int | None = None) -> dict[str, Any]:
    loc: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": {"uri": str(file), "uriBaseId": "PROJECTROOT"},
        "region": {"startLine": max(int(line or 1), 1)}}}
    if ident is not None:
        loc["id"] = ident
    if message:
        loc["message"] = {"text": message}
    return loc


def _result(unit: Mapping[str, Any], rule_index: int) -> dict[str, Any]:
    point = unit.get("point") or {}
    outcome = str(unit.get("outcome"))
    detail = unit.get("final") or unit.get("invariant") or "; ".join(unit.get("leaks") or ())
    text = (f"{outcome}: {point.get('name') or point.get('tag')} failed with "
            f"{unit.get('action')} in {unit.get('test')} (hit {unit.get('nth')})"
            + (f": {detail}" if detail else "") + f". Reproduce: {unit.get('reproducer')}")
    res: dict[str, Any] = {
        "ruleId": f"failpath/{outcome}", "ruleIndex": rule_index,
        "level": RULES[outcome][0], "message": {"text": text},
        "locations": [_location(point.get("file"), point.get("line"))],
        "partialFingerprints": {"failpathUnit/v1": str(unit.get("id") or point.get("tag"))},
        "properties": {"test": unit.get("test"), "nth": unit.get("nth"),
                       "mode": unit.get("mode"), "reproducer": unit.get("reproducer")},
    }
    handler = unit.get("handler")
    if handler:
        res["relatedLocations"] = [_location(handler.get("file"), handler.get("line"),
                                             "the handler that caught the injected error", 1)]
    return res


def render(result: Mapping[str, Any]) -> str:
    """The result as a SARIF 2.1.0 log (bugs as errors, swallowed errors as warnings)."""
    names = list(RULES)
    rules = [{"id": f"failpath/{name}", "name": name.capitalize(),
              "shortDescription": {"text": desc}, "fullDescription": {"text": desc},
              "defaultConfiguration": {"level": level}}
             for name, (level, desc) in RULES.items()]
    results = [_result(u, names.index(str(u.get("outcome"))))
               for u in result.get("units") or ()
               if is_bug(u) or u.get("outcome") == "swallowed"]
    root = str(result.get("root") or ".")
    run = {"tool": {"driver": {"name": "failpath", "version": str(result.get("failpath", "")),
                               "rules": rules}},
           "originalUriBaseIds": {"PROJECTROOT": {
               "uri": pathlib.Path(root).absolute().as_uri() + "/"}},
           "results": results}
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"
