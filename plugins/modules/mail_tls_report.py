#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
module: mail_tls_report
short_description: Judge the probe results of many mail hosts and write audit reports (JSON, JUnit XML, HTML)
version_added: 1.0.0
description:
  - Takes the results of M(mailops.tls.mail_tls_endpoint_info), one per host, compares the chains of every host
    (endpoints of different hosts answering for one name on one port with different chains get C(backend_mismatch)),
    judges every endpoint under one policy (every C(error) finding, plus O(fail_on), minus O(ignore), as
    M(mailops.tls.mail_tls_assert) does) and writes the reports.
  - The JSON report has a C(schema_version) and is documented in the collection's C(docs/audit.md) and
    C(docs/audit-report-schema.json). The JUnit XML report has one test case per endpoint and check, so CI systems
    show failures natively. The HTML report is one self-contained page (no script, no external resource) with a
    matrix of hosts by service, each cell's verdict, expiry countdown and chain summary, and every finding with its
    fix.
  - Never fails because of the policy. It returns RV(passed) so that the play can fail after the reports are
    written, as the C(mailops.tls.audit) role does.
  - The reports of one call are written as one transaction (see M(mailops.tls.mail_tls_chain)). After a failure,
    or a kill and the next call, they are all new or all as before. Each is replaced only when its content
    changes; the reports include the time they were made, so each run changes them. A new report without O(mode)
    gets C(0644) less the umask, never a mode others can write. A symbolic link at a report path is refused
    unless O(follow=true). In check mode, a report whose directory does not exist yet is one that would be
    created. Diff mode shows how each endpoint's verdict changed since the JSON report that
    O(json_path) held.
  - Usually run once on the controller (C(run_once) and C(delegate_to localhost)).
  - With O(merge) instead of O(hosts), it puts together the JSON reports of the slices of one audit (AWX or
    Automation Platform job slicing), compares the hosts of every slice again, judges them under this call's
    policy and writes the reports of the whole fleet, as if one run had probed every host.
author:
  - mailops.tls maintainers (@mailops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - ansible.builtin.files
attributes:
  action_group:
    support: full
    membership:
      - mailops.tls.policy
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
requirements:
  - Python >= 3.9 on the host that runs the module
options:
  hosts:
    description:
      - One entry per audited host, in the order the report lists them.
      - Exactly one of O(hosts) and O(merge) is required.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The host's name, for example its inventory name.
        type: str
        required: true
      address:
        description:
          - The address it was probed at, shown next to its name.
        type: str
      result:
        description:
          - The host's registered M(mailops.tls.mail_tls_endpoint_info) result (its C(endpoints) are used), or
            V(null) when the host could not be probed.
          - A M(mailops.tls.mail_tls_dane_info) result works too; its endpoints bring the C(dane) and C(mta_sts)
            checks, which are skipped for the others.
        type: dict
      error:
        description:
          - Why the host was not probed, when O(hosts[].result) is V(null).
        type: str
  merge:
    description:
      - JSON reports this module wrote for the slices of one audit, to merge into one report, in the order their
        hosts are listed.
      - Each host must be in one of them only. C(backend_mismatch) findings that a slice's comparison of hosts
        added are dropped and found again over all hosts; the probes' own findings are kept; C(days_left) stays as
        each slice measured it.
      - Exactly one of O(hosts) and O(merge) is required.
    type: list
    elements: path
  json_path:
    description:
      - Where to write the JSON report. Its directory must exist.
    type: path
  follow:
    description:
      - Write the file a symbolic link at a report path points to, instead of refusing the link.
    type: bool
    default: false
  junit_path:
    description:
      - Where to write the JUnit XML report.
    type: path
  html_path:
    description:
      - Where to write the HTML report.
    type: path
  prometheus_path:
    description:
      - Where to write the report as Prometheus text format, for example into the directory of node_exporter's
        textfile collector (a name ending in C(.prom)).
      - Gauges per endpoint with labels C(host), C(endpoint) and C(service) - C(mail_tls_endpoint_verdict) (1 for
        its C(verdict), 0 for the others), C(mail_tls_endpoint_up), C(mail_tls_endpoint_expiry_timestamp_seconds),
        C(mail_tls_certificate_expiry_timestamp_seconds) (per certificate sent, by C(position), C(subject) and
        C(sha256)) and C(mail_tls_endpoint_findings) (by C(code), C(severity) and C(status)) - and
        C(mail_tls_audit_timestamp_seconds) and C(mail_tls_audit_passed).
    type: path
  title:
    description:
      - The reports' title.
    type: str
    default: Mail TLS audit
  fail_on:
    description:
      - Issue codes that fail the policy even when their severity is C(warning) or C(info), as in
        M(mailops.tls.mail_tls_assert). Unknown codes are refused.
    type: list
    elements: str
    default: []
  ignore:
    description:
      - Issue codes waived by the policy, even when their severity is C(error). Waived findings stay in the reports.
    type: list
    elements: str
    default: []
seealso:
  - module: mailops.tls.mail_tls_endpoint_info
  - module: mailops.tls.mail_tls_assert
"""

EXAMPLES = r"""
- name: Probe every endpoint of each host (hosts in parallel, through forks)
  mailops.tls.mail_tls_endpoint_info:
    endpoints:
      - {address: "{{ ansible_host }}", port: 993, server_name: imap.example.org, label: "{{ inventory_hostname }}"}
      - {address: "{{ ansible_host }}", port: 25, server_name: mail.example.org, label: "{{ inventory_hostname }}"}
  delegate_to: localhost
  register: probe

- name: Write the reports on the controller
  mailops.tls.mail_tls_report:
    hosts:
      - {name: mx1, address: 192.0.2.11, result: "{{ hostvars['mx1'].probe }}"}
      - {name: mx2, address: 192.0.2.12, result: "{{ hostvars['mx2'].probe }}"}
    json_path: /var/lib/audits/mail-tls.json
    junit_path: /var/lib/audits/mail-tls.xml
    html_path: /var/www/html/mail-tls.html
    fail_on: [expires_soon]
  run_once: true
  delegate_to: localhost
  register: report

- name: Fail the pipeline when the policy fails (the reports are written)
  ansible.builtin.assert:
    that: report.passed
    fail_msg: "{{ report.summary_lines }}"
  run_once: true

- name: Merge the JSON reports of the job slices of one audit into the fleet's reports
  mailops.tls.mail_tls_report:
    merge: "{{ query('ansible.builtin.fileglob', '/var/lib/audits/slices/mail-tls-*.json') | sort }}"
    json_path: /var/lib/audits/mail-tls.json
    html_path: /var/www/html/mail-tls.html
  delegate_to: localhost
  run_once: true

- name: Write the audit as metrics for node_exporter's textfile collector
  mailops.tls.mail_tls_report:
    hosts:
      - {name: mx1, address: 192.0.2.11, result: "{{ hostvars['mx1'].probe }}"}
      - {name: mx2, address: 192.0.2.12, result: "{{ hostvars['mx2'].probe }}"}
    prometheus_path: /var/lib/prometheus/node-exporter/mail_tls.prom
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
passed:
  description: Whether every host and endpoint meets the policy.
  returned: always
  type: bool
summary:
  description: The counts of the JSON report's C(summary) (hosts, endpoints, reachable, pass, warn, fail,
    violations, warnings, waived, codes, soonest_expiry).
  returned: always
  type: dict
summary_lines:
  description: A few lines for the console, the overall verdict first.
  returned: always
  type: list
  elements: str
violations:
  description: Every finding that fails the policy.
  returned: always
  type: list
  elements: dict
  contains:
    host:
      description: The host.
      type: str
    endpoint:
      description: The endpoint, as C(address:port (label) protocol).
      type: str
    code:
      description: The issue code.
      type: str
    severity:
      description: Its severity.
      type: str
    message:
      description: What is wrong, where, and how to fix it.
      type: str
written:
  description: The reports whose content changed (in check mode, would change). When writing fails, the ones that
    still changed after every report was put back (normally none).
  returned: always
  type: list
  elements: str
  sample: [/var/lib/audits/mail-tls.json]
files:
  description: The reports written (or, in check mode, that would be), format to path.
  returned: always
  type: dict
  sample: {json: /var/lib/audits/mail-tls.json, junit: /var/lib/audits/mail-tls.xml}
"""

import datetime
import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError, MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.files import read_existing
from ansible_collections.mailops.tls.plugins.module_utils.fileset import (
    WriteError,
    check_distinct,
    destination,
    write_public,
)
from ansible_collections.mailops.tls.plugins.module_utils.load import read_file
from ansible_collections.mailops.tls.plugins.module_utils.metrics import prometheus_text
from ansible_collections.mailops.tls.plugins.module_utils.report import (
    build_report,
    hosts_from_reports,
    html_page,
    junit_xml,
    summary_lines,
    verdict_lines,
    violations,
)

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "dict", "options": {
        "name": {"type": "str", "required": True},
        "address": {"type": "str"},
        "result": {"type": "dict"},
        "error": {"type": "str"},
    }},
    "merge": {"type": "list", "elements": "path"},
    "json_path": {"type": "path"},
    "junit_path": {"type": "path"},
    "html_path": {"type": "path"},
    "prometheus_path": {"type": "path"},
    "title": {"type": "str", "default": "Mail TLS audit"},
    "fail_on": {"type": "list", "elements": "str", "default": []},
    "ignore": {"type": "list", "elements": "str", "default": []},
    "follow": {"type": "bool", "default": False},
}


def previous_document(path) -> dict:
    """The JSON report path holds now, when it is one (for diff mode), else an empty dict."""
    try:
        data = read_existing(path) if path else None
        document = json.loads(data) if data else {}
    except (InputError, ValueError):
        return {}
    return document if isinstance(document, dict) and document.get("schema_version") else {}


def slice_reports(paths) -> list:
    """(path, document) of each JSON report to merge."""
    reports = []
    for path in paths:
        data = read_file(path)
        try:
            reports.append((path, json.loads(data)))
        except ValueError as exc:
            raise InputError(f"{path} is not JSON ({exc}): give the JSON reports of the audit's slices") from None
        except RecursionError:
            raise InputError(f"{path} nests its JSON too deeply to be an audit report: give the JSON reports of the "
                             "audit's slices") from None
    return reports


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, add_file_common_args=True, supports_check_mode=True,
                           required_one_of=[("hosts", "merge")], mutually_exclusive=[("hosts", "merge")])
    params = module.params
    if params["hosts"] is None and params["merge"] is None:  # required_one_of counts an option given as null
        module.fail_json(msg="hosts and merge are both null: give hosts (the probe results) or merge (JSON reports)")
    outputs = {kind: params[f"{kind}_path"] for kind in ("json", "junit", "html", "prometheus")
               if params[f"{kind}_path"]}
    try:
        check_distinct([(f"{kind}_path", path) for kind, path in outputs.items()])
        targets = {kind: destination(path, params["follow"], check_mode=module.check_mode)
                   for kind, path in outputs.items()}
        before = previous_document(targets.get("json"))
        hosts = params["hosts"] if params["merge"] is None else hosts_from_reports(slice_reports(params["merge"]))
        document = build_report(hosts, params["fail_on"], params["ignore"], params["title"],
                                datetime.datetime.now(datetime.timezone.utc))
        rendered = {"json": json.dumps(document, indent=2, sort_keys=False) + "\n", "junit": junit_xml(document),
                    "html": html_page(document), "prometheus": prometheus_text(document)}
        changed, attributes_changed = write_public(
            [(targets[kind], rendered[kind].encode("utf-8")) for kind in outputs], module.check_mode,
            lambda path: module.set_fs_attributes_if_different(module.load_file_common_arguments(params, path=path),
                                                               False))
    except WriteError as exc:
        module.fail_json(msg=f"writing the reports failed: {exc}", changed=bool(exc.changed),
                         written=[outputs[kind] for kind in outputs if targets[kind] in exc.changed])
    except MailTlsError as exc:
        module.fail_json(msg=str(exc), changed=False, written=[])
    written = [outputs[kind] for kind in outputs if targets[kind] in changed]
    result = {"changed": bool(written) or attributes_changed, "written": written, "passed": document["passed"],
              "summary": document["summary"], "summary_lines": summary_lines(document, outputs),
              "violations": violations(document), "files": outputs}
    if module._diff:
        result["diff"] = {"before": "".join(line + "\n" for line in verdict_lines(before)),
                          "after": "".join(line + "\n" for line in verdict_lines(document)),
                          "before_header": outputs.get("json", "previous audit"),
                          "after_header": "this audit"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
