# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy docs/audit-report-schema.json into plugins/module_utils/report_schema.py (REPORT_SCHEMA), without the
notes the validator does not need. Run it after changing the documented schema; a unit test keeps them equal.

usage: python3 tests/tools/sync_report_schema.py
"""
from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DOC = REPO / "docs" / "audit-report-schema.json"
MODULE = REPO / "plugins" / "module_utils" / "report_schema.py"
LITERAL = re.compile(r'(REPORT_SCHEMA = json\.loads\(r""")(.*?)("""\))', re.DOTALL)


def without_notes(value):
    """The schema as the validator needs it: without descriptions, titles of schemas and identifiers."""
    if isinstance(value, dict):
        return {key: without_notes(item) for key, item in value.items()
                if key not in ("description", "$schema", "$id") and not (key == "title" and isinstance(item, str))}
    if isinstance(value, list):
        return [without_notes(item) for item in value]
    return value


def main() -> int:
    schema = json.dumps(without_notes(json.loads(SCHEMA_DOC.read_text())), indent=2)
    source = MODULE.read_text()
    if not LITERAL.search(source):
        raise SystemExit(f"no REPORT_SCHEMA literal in {MODULE}")
    MODULE.write_text(LITERAL.sub(lambda match: match.group(1) + schema + match.group(3), source, count=1))
    print(f"{MODULE.relative_to(REPO)}: REPORT_SCHEMA copied from {SCHEMA_DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
