# SPDX-License-Identifier: GPL-3.0-or-later
"""A small JSON Schema validator, just the keywords docs/audit-report-schema.json uses (type, const, enum,
properties, required, additionalProperties, items, minimum, maximum, pattern, $ref to $defs). Enough to prove a
report matches its documented schema without a dependency."""
from __future__ import annotations

import json
import re
from pathlib import Path

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "audit-report-schema.json"
KEYWORDS = {"$schema", "$id", "$defs", "$ref", "title", "description", "type", "const", "enum", "properties",
            "required", "additionalProperties", "items", "minimum", "maximum", "pattern"}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def load_schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


def _type_ok(value, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[name])


def errors(value, schema: dict, root: dict | None = None, where: str = "$") -> list:
    """Every way value breaks schema, as 'path: reason' strings (empty when it conforms)."""
    root = root or schema
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise ValueError(f"{where}: the validator does not know the keyword(s) {sorted(unknown)}")
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return errors(value, root["$defs"][name], root, where)
    problems = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, name) for name in names):
            return [f"{where}: {value!r:.60} is not of type {names}"]
        if value is None:
            return []
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{where}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        problems.append(f"{where}: {value} > {schema['maximum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        problems.extend(f"{where}: {key} is missing" for key in schema.get("required", ()) if key not in value)
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                problems.extend(errors(item, properties[key], root, f"{where}.{key}"))
            elif extra is False:
                problems.append(f"{where}: {key} is not allowed")
            elif isinstance(extra, dict):
                problems.extend(errors(item, extra, root, f"{where}.{key}"))
    if isinstance(value, list) and "items" in schema:
        for position, item in enumerate(value):
            problems.extend(errors(item, schema["items"], root, f"{where}[{position}]"))
    return problems
