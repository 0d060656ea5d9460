# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The schemas of what mail_tls_report reads from outside (JSON reports to merge, hosts[].result) and a small JSON
Schema validator of the keywords they use (type, const, enum, properties, required, additionalProperties, items,
minimum, maximum, pattern, $ref to $defs): every field is checked before a report is built from it.

REPORT_SCHEMA is docs/audit-report-schema.json without its descriptions (a test keeps them equal);
PROBE_RESULT_SCHEMA is the part of a mail_tls_endpoint_info result that a report reads.
"""
from __future__ import annotations

import json
import re
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.certs import printable
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError

KEYWORDS = {"$schema", "$id", "$defs", "$ref", "title", "description", "type", "const", "enum", "properties",
            "required", "additionalProperties", "items", "minimum", "maximum", "pattern"}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _type_ok(value, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[name])


def errors(value, schema: dict, root: Optional[dict] = None, where: str = "$") -> list:
    """Every way value breaks schema, as 'path: reason' strings (empty when it conforms)."""
    root = root or schema
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise ValueError(f"{where}: the validator does not know the keyword(s) {sorted(unknown)}")
    if "$ref" in schema:
        name = schema["$ref"][len("#/$defs/"):]
        return errors(value, root["$defs"][name], root, where)
    problems = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, name) for name in names):
            return [f"{where}: {_short(value)} is not of type {names}"]
        if value is None:
            return []
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {_short(value)} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {_short(value)} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{where}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        problems.append(f"{where}: {value} > {schema['maximum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {_short(value)} does not match {schema['pattern']}")
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


def _short(value) -> str:
    """A value as a problem quotes it: scalars shortened, containers by their type (a repr could recurse deeply)."""
    if isinstance(value, (list, dict)):
        return f"a JSON {'array' if isinstance(value, list) else 'object'}"
    return f"{value!r:.60}"


def check_document(document, schema: dict, what: str, fix: str) -> None:
    """Raise InputError naming what, its first problems and the fix unless document conforms to schema."""
    problems = errors(document, schema)
    if problems:
        shown = "; ".join(printable(problem[:200]) for problem in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InputError(f"{printable(what)} does not match its schema ({shown}{more}): {fix}")


REPORT_SCHEMA = json.loads(r"""{
  "type": "object",
  "required": [
    "schema_version",
    "generator",
    "title",
    "generated_at",
    "passed",
    "policy",
    "summary",
    "services",
    "hosts"
  ],
  "additionalProperties": false,
  "properties": {
    "schema_version": {
      "const": 1
    },
    "generator": {
      "type": "string"
    },
    "title": {
      "type": "string"
    },
    "generated_at": {
      "$ref": "#/$defs/time"
    },
    "passed": {
      "type": "boolean"
    },
    "policy": {
      "type": "object",
      "required": [
        "fail_on",
        "ignore"
      ],
      "additionalProperties": false,
      "properties": {
        "fail_on": {
          "type": "array",
          "items": {
            "type": "string"
          }
        },
        "ignore": {
          "type": "array",
          "items": {
            "type": "string"
          }
        }
      }
    },
    "summary": {
      "type": "object",
      "required": [
        "hosts",
        "hosts_failed",
        "hosts_not_probed",
        "endpoints",
        "reachable",
        "pass",
        "warn",
        "fail",
        "violations",
        "warnings",
        "waived",
        "codes",
        "soonest_expiry"
      ],
      "additionalProperties": false,
      "properties": {
        "hosts": {
          "$ref": "#/$defs/count"
        },
        "hosts_failed": {
          "$ref": "#/$defs/count"
        },
        "hosts_not_probed": {
          "$ref": "#/$defs/count"
        },
        "endpoints": {
          "$ref": "#/$defs/count"
        },
        "reachable": {
          "$ref": "#/$defs/count"
        },
        "pass": {
          "$ref": "#/$defs/count"
        },
        "warn": {
          "$ref": "#/$defs/count"
        },
        "fail": {
          "$ref": "#/$defs/count"
        },
        "violations": {
          "$ref": "#/$defs/count"
        },
        "warnings": {
          "$ref": "#/$defs/count"
        },
        "waived": {
          "$ref": "#/$defs/count"
        },
        "codes": {
          "type": "object",
          "additionalProperties": {
            "$ref": "#/$defs/count"
          }
        },
        "soonest_expiry": {
          "type": [
            "object",
            "null"
          ],
          "required": [
            "subject",
            "not_after",
            "days_left",
            "endpoint",
            "host"
          ],
          "additionalProperties": false,
          "properties": {
            "subject": {
              "type": "string"
            },
            "not_after": {
              "$ref": "#/$defs/time"
            },
            "days_left": {
              "type": "integer"
            },
            "endpoint": {
              "type": "string"
            },
            "host": {
              "type": "string"
            }
          }
        }
      }
    },
    "services": {
      "type": "array",
      "items": {
        "type": "string"
      }
    },
    "hosts": {
      "type": "array",
      "items": {
        "$ref": "#/$defs/host"
      }
    }
  },
  "$defs": {
    "count": {
      "type": "integer",
      "minimum": 0
    },
    "time": {
      "type": "string",
      "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
    },
    "verdict": {
      "enum": [
        "pass",
        "warn",
        "fail"
      ]
    },
    "certificate": {
      "type": [
        "object",
        "null"
      ],
      "required": [
        "subject",
        "issuer",
        "sha256",
        "not_before",
        "not_after",
        "days_left"
      ],
      "additionalProperties": false,
      "properties": {
        "subject": {
          "type": "string"
        },
        "issuer": {
          "type": "string"
        },
        "sha256": {
          "type": "string",
          "pattern": "^([0-9A-F]{2}:){31}[0-9A-F]{2}$"
        },
        "not_before": {
          "$ref": "#/$defs/time"
        },
        "not_after": {
          "$ref": "#/$defs/time"
        },
        "days_left": {
          "type": "integer"
        }
      }
    },
    "host": {
      "type": "object",
      "required": [
        "name",
        "address",
        "verdict",
        "error",
        "endpoints",
        "sampled"
      ],
      "additionalProperties": false,
      "properties": {
        "name": {
          "type": "string"
        },
        "address": {
          "type": [
            "string",
            "null"
          ]
        },
        "verdict": {
          "$ref": "#/$defs/verdict"
        },
        "error": {
          "type": [
            "string",
            "null"
          ]
        },
        "endpoints": {
          "type": "array",
          "items": {
            "$ref": "#/$defs/endpoint"
          }
        },
        "sampled": {
          "type": "array",
          "items": {
            "$ref": "#/$defs/sampled"
          }
        }
      }
    },
    "sampled": {
      "type": "object",
      "required": [
        "endpoint",
        "address",
        "port",
        "server_name",
        "key_type_requested",
        "probes",
        "answered",
        "chains"
      ],
      "additionalProperties": false,
      "properties": {
        "endpoint": {
          "type": "string"
        },
        "address": {
          "type": "string"
        },
        "port": {
          "type": "integer",
          "minimum": 1,
          "maximum": 65535
        },
        "server_name": {
          "type": [
            "string",
            "null"
          ]
        },
        "key_type_requested": {
          "type": [
            "string",
            "null"
          ]
        },
        "probes": {
          "$ref": "#/$defs/count"
        },
        "answered": {
          "$ref": "#/$defs/count"
        },
        "chains": {
          "$ref": "#/$defs/count"
        }
      }
    },
    "endpoint": {
      "type": "object",
      "required": [
        "name",
        "host",
        "service",
        "address",
        "port",
        "protocol",
        "server_name",
        "sni",
        "label",
        "key_type",
        "key_type_requested",
        "verdict",
        "reachable",
        "error",
        "tls_version",
        "cipher",
        "seconds",
        "chain",
        "expiry",
        "dane",
        "mta_sts",
        "checks",
        "findings"
      ],
      "additionalProperties": false,
      "properties": {
        "name": {
          "type": "string"
        },
        "host": {
          "type": "string"
        },
        "service": {
          "type": "string"
        },
        "address": {
          "type": "string"
        },
        "peer_address": {
          "type": [
            "string",
            "null"
          ]
        },
        "port": {
          "type": "integer",
          "minimum": 1,
          "maximum": 65535
        },
        "protocol": {
          "enum": [
            "smtp",
            "lmtp",
            "imap",
            "pop3",
            "sieve",
            "tls",
            "smtps",
            "imaps",
            "pop3s"
          ]
        },
        "server_name": {
          "type": [
            "string",
            "null"
          ]
        },
        "sni": {
          "type": [
            "string",
            "null"
          ]
        },
        "label": {
          "type": [
            "string",
            "null"
          ]
        },
        "key_type": {
          "type": [
            "string",
            "null"
          ]
        },
        "key_type_requested": {
          "type": [
            "string",
            "null"
          ]
        },
        "verdict": {
          "$ref": "#/$defs/verdict"
        },
        "reachable": {
          "type": "boolean"
        },
        "error": {
          "type": [
            "object",
            "null"
          ],
          "required": [
            "code",
            "message"
          ],
          "additionalProperties": false,
          "properties": {
            "code": {
              "type": "string"
            },
            "message": {
              "type": "string"
            }
          }
        },
        "tls_version": {
          "type": [
            "string",
            "null"
          ]
        },
        "cipher": {
          "type": [
            "string",
            "null"
          ]
        },
        "seconds": {
          "type": [
            "number",
            "null"
          ]
        },
        "chain": {
          "type": "object",
          "required": [
            "sent",
            "complete",
            "ordered",
            "trusted",
            "leaf",
            "presented",
            "root"
          ],
          "additionalProperties": false,
          "properties": {
            "sent": {
              "$ref": "#/$defs/count"
            },
            "complete": {
              "type": "boolean"
            },
            "ordered": {
              "type": "boolean"
            },
            "trusted": {
              "type": "boolean"
            },
            "leaf": {
              "$ref": "#/$defs/certificate"
            },
            "presented": {
              "type": "array",
              "items": {
                "$ref": "#/$defs/certificate"
              }
            },
            "root": {
              "$ref": "#/$defs/certificate"
            }
          }
        },
        "expiry": {
          "type": [
            "object",
            "null"
          ],
          "required": [
            "subject",
            "not_after",
            "days_left"
          ],
          "additionalProperties": false,
          "properties": {
            "subject": {
              "type": "string"
            },
            "not_after": {
              "$ref": "#/$defs/time"
            },
            "days_left": {
              "type": "integer"
            }
          }
        },
        "dane": {
          "type": [
            "object",
            "null"
          ],
          "required": [
            "status",
            "applies",
            "tlsa",
            "missing",
            "leftover"
          ],
          "additionalProperties": false,
          "properties": {
            "status": {
              "enum": [
                "verified",
                "mismatch",
                "unusable",
                "insecure",
                "no_records",
                "lookup_failed"
              ]
            },
            "applies": {
              "type": "boolean"
            },
            "tlsa": {
              "type": "object",
              "required": [
                "name",
                "records",
                "secure",
                "ttl",
                "error"
              ],
              "additionalProperties": false,
              "properties": {
                "name": {
                  "type": "string"
                },
                "records": {
                  "type": "array",
                  "items": {
                    "type": "string"
                  }
                },
                "secure": {
                  "type": "boolean"
                },
                "ttl": {
                  "type": [
                    "integer",
                    "null"
                  ]
                },
                "error": {
                  "type": [
                    "string",
                    "null"
                  ]
                }
              }
            },
            "missing": {
              "type": "array",
              "items": {
                "type": "string"
              }
            },
            "leftover": {
              "type": "array",
              "items": {
                "type": "string"
              }
            }
          }
        },
        "mta_sts": {
          "type": [
            "object",
            "null"
          ],
          "required": [
            "mode",
            "pattern",
            "certificate_valid"
          ],
          "additionalProperties": false,
          "properties": {
            "mode": {
              "enum": [
                "enforce",
                "testing"
              ]
            },
            "pattern": {
              "type": [
                "string",
                "null"
              ]
            },
            "certificate_valid": {
              "type": "boolean"
            }
          }
        },
        "checks": {
          "type": "array",
          "items": {
            "type": "object",
            "required": [
              "check",
              "title",
              "status",
              "codes"
            ],
            "additionalProperties": false,
            "properties": {
              "check": {
                "enum": [
                  "connection",
                  "chain",
                  "trust",
                  "names",
                  "validity",
                  "keys",
                  "consistency",
                  "dane",
                  "mta_sts"
                ]
              },
              "title": {
                "type": "string"
              },
              "status": {
                "enum": [
                  "pass",
                  "warn",
                  "fail",
                  "skipped"
                ]
              },
              "codes": {
                "type": "array",
                "items": {
                  "type": "string"
                }
              }
            }
          }
        },
        "findings": {
          "type": "array",
          "items": {
            "type": "object",
            "required": [
              "code",
              "severity",
              "message",
              "certificate",
              "status",
              "check",
              "summary",
              "fix",
              "found_by"
            ],
            "additionalProperties": false,
            "properties": {
              "code": {
                "type": "string"
              },
              "severity": {
                "enum": [
                  "error",
                  "warning",
                  "info"
                ]
              },
              "message": {
                "type": "string"
              },
              "certificate": {
                "type": [
                  "object",
                  "null"
                ],
                "required": [
                  "index",
                  "sha256",
                  "subject"
                ],
                "additionalProperties": false,
                "properties": {
                  "index": {
                    "type": [
                      "integer",
                      "null"
                    ]
                  },
                  "sha256": {
                    "type": "string"
                  },
                  "subject": {
                    "type": "string"
                  }
                }
              },
              "status": {
                "enum": [
                  "violation",
                  "warning",
                  "waived",
                  "info"
                ]
              },
              "check": {
                "type": "string"
              },
              "summary": {
                "type": "string"
              },
              "fix": {
                "type": "string"
              },
              "found_by": {
                "enum": [
                  "probe",
                  "comparison"
                ]
              }
            }
          }
        }
      }
    }
  }
}""")

_REPORT_DEFS = REPORT_SCHEMA["$defs"]
_TEXT = {"type": ["string", "null"]}
_FLAG = {"type": ["boolean", "null"]}
_CERTIFICATE = {  # what a report keeps of a certificate, with the SHA-256 among the fingerprints
    "type": ["object", "null"],
    "required": ["subject", "issuer", "fingerprints", "not_before", "not_after", "days_left"],
    "properties": {
        **_REPORT_DEFS["certificate"]["properties"],
        "fingerprints": {"type": "object", "required": ["sha256"],
                         "properties": {"sha256": _REPORT_DEFS["certificate"]["properties"]["sha256"]}},
    },
}
_ENDPOINT_FIELDS = _REPORT_DEFS["endpoint"]["properties"]
_FINDING_FIELDS = _ENDPOINT_FIELDS["findings"]["items"]["properties"]
PROBE_RESULT_SCHEMA = {
    "type": "object",
    "properties": {"endpoints": {"type": ["array", "null"], "items": {"$ref": "#/$defs/endpoint"}}},
    "$defs": {
        "time": _REPORT_DEFS["time"],
        "endpoint": {
            "type": "object",
            "required": ["name", "address", "port", "protocol"],
            "properties": {
                **{name: _ENDPOINT_FIELDS[name] for name in ("name", "address", "port", "protocol", "seconds")},
                **{name: _TEXT for name in ("server_name", "sni", "label", "key_type", "key_type_requested",
                                            "tls_version", "cipher")},
                **{name: _FLAG for name in ("ok", "complete", "ordered", "trusted")},
                "error": _ENDPOINT_FIELDS["error"],
                "presented": {"type": ["array", "null"], "items": _CERTIFICATE},
                "root": _CERTIFICATE,
                "chain": {"type": ["array", "null"], "items": {  # _expiry reads these three of each certificate
                    "type": "object", "required": ["subject", "not_after", "days_left"],
                    "properties": {name: _CERTIFICATE["properties"][name]
                                   for name in ("subject", "not_after", "days_left")}}},
                "issues": {"type": ["array", "null"], "items": {
                    "type": "object", "required": ["code", "severity", "message"],
                    "properties": {name: _FINDING_FIELDS[name]
                                   for name in ("code", "severity", "message", "certificate")}}},
            },
        },
    },
}
