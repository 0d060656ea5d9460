# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit report's documented schema (docs/audit-report-schema.json) and the collection's own validator
(plugins/module_utils/report_schema.py), which mail_tls_report applies to every report it merges."""
from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.mailops.tls.plugins.module_utils.report_schema import errors

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "audit-report-schema.json"
__all__ = ["SCHEMA_FILE", "errors", "load_schema"]


def load_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())
