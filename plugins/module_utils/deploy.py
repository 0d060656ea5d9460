# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""One backend's deployment as one call (mail_tls_deploy): build the chains, read Postfix and Dovecot, plan the
files and settings, write them as one transaction, validate, reload what changed, verify every port live, and on
any failure after the first write put everything back, reload again and prove the previous chain is served.

The steps run in one process on the backend, so a deployment costs a few Ansible tasks instead of one per step.
The caller gives ``run`` (argv -> (rc, stdout, stderr)) and ``prepare`` (each new file, before it is flushed);
probing goes through endpoints.probe_and_judge. Every failure is a DeployError whose ``result`` says what was done.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import chainfiles, fileset, mailconf
from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement, loaded_root
from ansible_collections.mailops.tls.plugins.module_utils.certs import sha256_hex
from ansible_collections.mailops.tls.plugins.module_utils.chain import DEFAULT_MAX_CHAIN_DEPTH
from ansible_collections.mailops.tls.plugins.module_utils.endpoint_args import (
    endpoints_from_params,
    samplings_from_params,
)
from ansible_collections.mailops.tls.plugins.module_utils.endpoints import probe_and_judge
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError, MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.load import Loaded, load_paths
from ansible_collections.mailops.tls.plugins.module_utils.module_args import judgement_from_params
from ansible_collections.mailops.tls.plugins.module_utils.policy import failure_message, gate

# Per chain (main, alt): the role's file variables by output.
POSTFIX_FILES = ("chain_file", "alt_chain_file", "cert_file", "key_file", "alt_cert_file", "alt_key_file")
DOVECOT_FILES = ("cert_file", "key_file", "alt_cert_file", "alt_key_file")


class DeployError(MailTlsError):
    """The deployment stopped; result holds what it did (and, after a write, what the rollback restored)."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


@dataclasses.dataclass
class Deployment:
    """The state of one call. params are mail_tls_deploy's options; the rest is filled as the steps run."""

    params: Mapping
    run: mailconf.Run
    prepare: Callable[[str, str], None] = lambda new, destination: None
    check_mode: bool = False
    sleep: Callable[[float], None] = time.sleep
    result: dict = dataclasses.field(default_factory=dict)
    postfix: Optional[mailconf.Postfix] = None
    dovecot: Optional[mailconf.Dovecot] = None
    plans: tuple = ()
    work: list = dataclasses.field(default_factory=list)  # (PlannedFile, target, FileState, Change)
    backups: dict = dataclasses.field(default_factory=dict)
    previous_settings: dict = dataclasses.field(default_factory=dict)
    before: list = dataclasses.field(default_factory=list)

    @property
    def alt(self) -> bool:
        return bool(self.params["alt_certificates"])

    @property
    def postfix_on(self) -> bool:
        return self.params["postfix"]["enabled"]

    @property
    def dovecot_on(self) -> bool:
        return self.params["dovecot"]["enabled"]


def deploy(deployment: Deployment) -> dict:
    """Plan, and outside check mode apply, validate, reload and verify; returns the result, raises DeployError."""
    d = deployment
    d.result = initial_result()
    try:
        read_servers(d)
        build_chains(d)
        plan_settings(d)
        plan_files(d)
        if d.check_mode:
            return d.result
        d.before = served_leaves(d, attempts=1) if d.params["verify"] else []
    except MailTlsError as exc:
        raise DeployError(f"not deployable, nothing was changed.\n{exc}", d.result) from None
    write(d)
    try:
        apply_settings(d)
        validate(d)
        d.result["reloaded"] = reload(d)[0]
        verify(d)
    except Exception as exc:  # whatever fails after the first write, everything is put back
        raise DeployError(roll_back(d, failure_text(exc)), d.result) from None
    d.result["succeeded"] = True
    if not d.params["keep_backups"]:
        remove_backups(d)
    return d.result


def failure_text(exc: Exception) -> str:
    """The library's own errors say what and where; anything else is named with its type."""
    return str(exc) if isinstance(exc, (MailTlsError, OSError)) else f"{type(exc).__name__}: {exc}"


def initial_result() -> dict:
    return {"changed": False, "succeeded": False, "rolled_back": False, "restored": False, "files": [],
            "written": [], "backup_files": [], "postfix_version": None, "postfix_settings": {},
            "dovecot_version": None, "dovecot_dropin_changed": False, "dovecot_include_added": False,
            "reloaded": [], "leaf_sha256": [], "chains": [], "fullchain_pem": [], "root_pem": "",
            "configuration_warnings": [], "verified": [], "failure": None, "diff": []}


def read_servers(d: Deployment) -> None:
    """What Postfix and Dovecot run with now (changes nothing)."""
    postfix, dovecot = d.params["postfix"], d.params["dovecot"]
    if d.postfix_on:
        d.postfix = mailconf.read_postfix(d.run, postfix["config_dir"], postfix["version"] or "")
        d.result["postfix_version"] = d.postfix.version
    if d.dovecot_on:
        d.dovecot = mailconf.read_dovecot(d.run, dovecot["config_file"], dovecot["version"] or "")
        d.result["dovecot_version"] = d.dovecot.version


def chain_outputs(d: Deployment, alt: bool) -> list[dict]:
    """The files of one chain as mail_tls_chain `chains` entries without inputs: Postfix 3.4+ reads one key+chain
    file per key type; Dovecot, and Postfix before 3.4, a certificate chain file and a key file."""
    prefix = "alt_" if alt else ""
    owner, postfix, dovecot = d.params["file_owner"], d.params["postfix"], d.params["dovecot"]
    chain_files = d.postfix is not None and d.postfix.chain_files
    first: dict = {}
    if d.postfix_on and chain_files:
        first.update(combined_path=postfix[prefix + "chain_file"], combined_owner=owner, combined_mode="0600")
    legacy = {"fullchain_path": postfix[prefix + "cert_file"], "fullchain_owner": owner, "fullchain_mode": "0644",
              "key_path": postfix[prefix + "key_file"], "key_owner": owner, "key_mode": "0600"}
    if d.dovecot_on:
        group = dovecot["key_group"] or None
        first.update(fullchain_path=dovecot[prefix + "cert_file"], fullchain_owner=owner, fullchain_mode="0644",
                     key_path=dovecot[prefix + "key_file"], key_owner=owner, key_group=group,
                     key_mode="0640" if group else "0600")
    elif d.postfix_on and not chain_files:
        first.update(legacy)
    entries = [first]
    if (d.postfix_on and not chain_files and d.dovecot_on
            and (legacy["fullchain_path"], legacy["key_path"]) != (first["fullchain_path"], first["key_path"])):
        entries.append(legacy)
    return entries


def chain_inputs(d: Deployment, alt: bool) -> dict:
    prefix = "alt_" if alt else ""
    return {"path": d.params[prefix + "certificates"], "private_key_path": d.params[prefix + "private_key"],
            "private_key_passphrase": d.params[prefix + "private_key_passphrase"],
            "pkcs12_passphrase": d.params["pkcs12_passphrase"]}


def build_chains(d: Deployment) -> None:
    """Analyse the inputs and render every chain file; refuse (InputError) a chain that is not deployable."""
    entries = [dict(output, **chain_inputs(d, alt)) for alt in ((False, True) if d.alt else (False,))
               for output in chain_outputs(d, alt)]
    d.plans = chainfiles.plan(dict(judging_params(d), chains=entries, force=False))
    firsts = [dataclasses.replace(d.plans[0], label="the chain")]
    if d.alt:
        firsts.append(dataclasses.replace(d.plans[len(entries) // 2], label="the second chain (alt_certificates)"))
    d.result["chains"] = [plan.as_dict() for plan in firsts]
    if any(not plan.verdict.passed for plan in d.plans):
        refused = [failure_message(plan.verdict.violations, plan.label) for plan in firsts if not plan.verdict.passed]
        raise InputError("\n".join(refused))
    d.result["leaf_sha256"] = [sha256_hex(plan.analysis.chain[0].der) for plan in firsts]
    d.result["fullchain_pem"] = [b"".join(chainfiles.pem_certificate(entry.der) for entry in plan.analysis.chain
                                          ).decode() for plan in firsts]
    roots = [plan.analysis.root.der for plan in firsts if plan.analysis.root]
    d.result["root_pem"] = "".join(chainfiles.pem_certificate(der).decode() for der in dict.fromkeys(roots))


def judging_params(d: Deployment) -> dict:
    """The judging options of mail_tls_chain: the deployment's own, the rest at their defaults."""
    given = {name: d.params[name] for name in ("pool", "roots", "system_roots", "names", "expires_soon_days",
                                               "fail_on", "ignore")}
    return dict(given, valid_at=None, expiry_warning=None, expiry_critical=None, cn_fallback=False,
                max_chain_depth=DEFAULT_MAX_CHAIN_DEPTH)


def intermediates(d: Deployment) -> dict[str, str]:
    """SHA-256 -> subject of every intermediate of the deployed chains."""
    return {sha256_hex(entry.der): entry.info.subject for plan in d.plans for entry in plan.analysis.chain[1:]}


def cafile_intermediates(path: str, wanted: Mapping[str, str]) -> list[str]:
    """The subjects of the wanted certificates found in a client-CA file (unreadable: none)."""
    try:
        loaded = load_paths([path])
    except MailTlsError:
        return []
    return [wanted[fingerprint] for fingerprint in dict.fromkeys(sha256_hex(c.der) for c in loaded.certificates)
            if fingerprint in wanted]


def plan_settings(d: Deployment) -> None:
    """The Postfix parameters to set and the Dovecot drop-in, with the warnings about either."""
    warnings, wanted = d.result["configuration_warnings"], intermediates(d)
    if d.postfix:
        files = {name: d.params["postfix"][name] for name in POSTFIX_FILES}
        desired = mailconf.postfix_desired(d.postfix, mailconf.postfix_file_settings(d.postfix.chain_files, files,
                                                                                     d.alt),
                                           d.params["postfix"]["manage_tlsproxy"],
                                           d.params["postfix"]["extra_settings"] or {})
        d.result["postfix_settings"] = mailconf.postfix_changes(d.postfix, desired)
        warnings.extend(mailconf.postfix_warnings(d.postfix, desired, d.result["postfix_settings"]))
        found = cafile_intermediates(d.postfix.cafile, wanted) if d.postfix.cafile else []
        if found:
            warnings.append(mailconf.cafile_warning("postfix", "smtpd_tls_CAfile", d.postfix.cafile, found))
    if d.dovecot:
        dropin = d.params["dovecot"]["dropin"]
        if not mailconf.dropin_included(d.dovecot, dropin) and not d.params["dovecot"]["add_include"]:
            raise InputError(
                f"{d.dovecot.config_file} has no !include for {dropin}, so Dovecot would never read the TLS settings; "
                "set mail_tls_deploy_dovecot_dropin to a file it includes (such as conf.d/99-mailops-tls.conf), or "
                "let the role add the include line (mail_tls_deploy_dovecot_add_include: true)")
        ca = d.dovecot.ca[1:] if d.dovecot.ca.startswith("<") else d.dovecot.ca
        found = cafile_intermediates(ca, wanted) if ca.startswith("/") else []
        if found:
            setting = mailconf.DOVECOT_SETTINGS[d.dovecot.installed_24]["ca"]
            warnings.append(mailconf.cafile_warning("dovecot", setting, d.dovecot.ca, found))


def dovecot_expected(d: Deployment) -> dict[str, str]:
    files = {key: d.params["dovecot"][f"{key}_file"] for key in ("cert", "key", "alt_cert", "alt_key")}
    return mailconf.dovecot_expected(d.dovecot, files, d.alt)


def config_files(d: Deployment) -> list[chainfiles.PlannedFile]:
    """Dovecot's drop-in, and its main file with an include line where it has none; mode and owner kept."""
    if not d.dovecot:
        return []
    dropin, owner = d.params["dovecot"]["dropin"], d.params["file_owner"]
    planned = [chainfiles.PlannedFile(chainfiles.Output("dropin", dropin, owner, None, 0o644),
                                      mailconf.dropin_text(d.dovecot, dovecot_expected(d)).encode())]
    if not mailconf.dropin_included(d.dovecot, dropin):
        mode = stat.S_IMODE(os.stat(d.dovecot.config_file).st_mode)
        planned.append(chainfiles.PlannedFile(chainfiles.Output("include", d.dovecot.config_file, None, None, mode),
                                              mailconf.with_include(d.dovecot.conf, dropin).encode()))
    return planned


def plan_files(d: Deployment) -> None:
    """Compare every file to write with what is on disk; fill files, written and the diff."""
    planned = [f for plan in d.plans for f in plan.files] + config_files(d)
    d.work = []
    for item in planned:
        # Planned as check mode plans: the TLS directory may not exist yet (write() creates it, then checks again).
        config = item.output.kind in ("dropin", "include")
        target = fileset.destination(item.output.path, config, item.output.holds_key, check_mode=True)
        current = chainfiles.read_state(target)
        d.work.append((item, target, current, chainfiles.compare(item, current)))
    for item, _target, current, change in d.work:
        kind, path = item.output.kind, item.output.path
        if kind == "dropin":
            d.result["dovecot_dropin_changed"] = change.changed
        elif kind == "include":
            d.result["dovecot_include_added"] = True
        else:
            previous = ({"uid": current.uid, "gid": current.gid, "mode": f"{current.mode:04o}"}
                        if current.exists else None)
            d.result["files"].append({"output": kind, "path": path, "changed": change.changed,
                                      "changes": change.describe() if change.changed else [], "backup_file": None,
                                      "previous": previous})
            if change.changed:
                d.result["written"].append(path)
        if change.changed:
            d.result["diff"].append(file_diff(item, current))
    if d.result["postfix_settings"]:
        d.result["diff"].append(settings_diff(d))
    d.result["changed"] = bool(d.result["diff"])


def file_diff(item: chainfiles.PlannedFile, current: chainfiles.FileState) -> dict:
    path = item.output.path
    expected = chainfiles.expected_state(item, current, *chainfiles.default_owner(path))
    if item.output.kind in ("dropin", "include"):
        before, after = (current.data or b"").decode("utf-8", "replace"), item.data.decode()
    else:
        before, after = chainfiles.listing(current, path), chainfiles.listing(expected, path)
    return {"before_header": path, "after_header": path, "before": before, "after": after}


def settings_diff(d: Deployment) -> dict:
    main_cf = f"{d.postfix.config_dir}/main.cf"
    current = dict(d.postfix.effective, **d.postfix.explicit)
    changes = d.result["postfix_settings"]
    return {"before_header": f"{main_cf} (parameters)", "after_header": f"{main_cf} (parameters)",
            "before": "".join(f"{name} = {current[name]}\n" for name in changes if name in current),
            "after": "".join(f"{name} = {value}\n" for name, value in changes.items())}


def write(d: Deployment) -> None:
    """Write every changed file as one transaction (a failure leaves every file as it was)."""
    tls_dir = d.params["tls_dir"]
    if tls_dir and not os.path.isdir(tls_dir):
        os.makedirs(tls_dir, int(d.params["tls_dir_mode"], 8))
        os.chmod(tls_dir, int(d.params["tls_dir_mode"], 8))
        owner = chainfiles.user_id(d.params["file_owner"])
        if owner is not None:
            os.chown(tls_dir, owner, -1)
    d.work = [(item, fileset.destination(item.output.path, item.output.kind in ("dropin", "include"),
                                         item.output.holds_key), current, change)
              for item, _target, current, change in d.work]
    changed = [(item, target, current, change) for item, target, current, change in d.work if change.changed]
    targets = [target for _item, target, _current, _change in d.work]
    try:
        with fileset.FileSet(targets, prepare=d.prepare) as files:
            d.backups = files.commit([chainfiles.new_file(item, target, current, change, True)
                                      for item, target, current, change in changed])
    except (fileset.WriteError, OSError) as exc:
        raise DeployError(f"not deployable, nothing was changed: writing the files failed: {exc}", d.result) from None
    by_path = {entry["path"]: entry for entry in d.result["files"]}
    for item, target, _current, _change in changed:
        if target in d.backups and item.output.path in by_path:
            by_path[item.output.path]["backup_file"] = d.backups[target]
    d.result["backup_files"] = sorted(d.backups.values())


def touched(d: Deployment) -> list[str]:
    """The services whose files or settings this call changed."""
    changed = {item.output.path for item, _target, _current, change in d.work if change.changed}
    postfix = d.params["postfix"]
    postfix_paths = ({postfix["chain_file"], postfix["alt_chain_file"]} if d.postfix and d.postfix.chain_files
                     else {postfix[name] for name in POSTFIX_FILES[2:]})
    dovecot_paths = {d.params["dovecot"][name] for name in DOVECOT_FILES} | {d.params["dovecot"]["dropin"]}
    if d.dovecot:
        dovecot_paths.add(d.dovecot.config_file)
    services = []
    if d.postfix_on and (changed & postfix_paths or d.previous_settings):
        services.append("postfix")
    if d.dovecot_on and changed & dovecot_paths:
        services.append("dovecot")
    return services


def apply_settings(d: Deployment) -> None:
    changes = d.result["postfix_settings"]
    if changes:
        d.previous_settings = {name: d.postfix.explicit.get(name) for name in changes}
        mailconf.set_parameters(d.run, d.postfix.config_dir, changes)


def validate(d: Deployment) -> None:
    """Each changed service's own check of its configuration, then Dovecot's effective settings."""
    services = touched(d)
    if "postfix" in services:
        command = list(d.params["postfix"]["check_command"])
        # postfix prints its fatal errors only to a terminal: give it one where script(1) exists.
        argv = (["script", "-qec", " ".join(map(shlex.quote, command)), "/dev/null"] if shutil.which("script")
                else command)
        result = d.run(argv)
        if result[0] != 0:
            raise mailconf.CommandError(mailconf.command_output(command, result))
    if "dovecot" in services:
        mailconf.checked(d.run, d.params["dovecot"]["check_command"])
        expected = dovecot_expected(d)
        if d.dovecot.is_24 == d.dovecot.installed_24:
            keys = [key for key, name in d.dovecot.settings.items() if name in expected]
            effective = mailconf.effective_settings(d.run, d.dovecot.config_file, d.dovecot.is_24, keys)
            if effective:
                overrides = mailconf.dovecot_overrides(d.dovecot, expected, effective, d.params["dovecot"]["dropin"])
                d.result["configuration_warnings"].extend(overrides)


def reload(d: Deployment, when: str = "") -> tuple[list[str], list[str]]:
    """Reload (never restart) each changed service: the services reloaded and, when rolling back (when is not ''),
    the failures; a failure of the deployment's own reload raises."""
    failures, done = [], []
    for service in touched(d):
        command = d.params[service]["reload_command"]
        result = d.run(command)
        if result[0] == 0:
            done.append(service)
            continue
        failure = f"Reload {service.capitalize()}{when}: {mailconf.command_output(command, result)}"
        if not when:
            raise mailconf.CommandError(failure)
        failures.append(failure)
    return done, failures


def verify_params(d: Deployment) -> dict:
    """The probe options of mail_tls_endpoint_info for this backend's endpoints."""
    defaults = {"send_sni": True, "proxy_protocol": None, "every_address": False, "backends": None, "probes": None}
    return {"endpoints": [dict(defaults, **endpoint) for endpoint in d.params["endpoints"]],
            "key_types": ["rsa", "ecdsa"] if d.alt else [],
            "timeout": d.params["timeout"], "concurrency": 16, "expected_leaves": d.result["leaf_sha256"]}


def probe(d: Deployment, judgement: Judgement) -> list:
    params = verify_params(d)
    return probe_and_judge(endpoints_from_params(params), judgement, params["timeout"], params["concurrency"],
                           params["key_types"], samplings_from_params(params), params["expected_leaves"])


def served_leaves(d: Deployment, attempts: int, expected: Sequence[dict] = ()) -> list[dict]:
    """Which leaf each endpoint serves (None: nothing), probed until it matches expected or attempts run out."""
    judgement = Judgement()
    for attempt in range(attempts):
        if attempt:
            d.sleep(d.params["verify_delay"])
        found = [{"name": report.name, "leaf": report.chain_id[0] if report.chain_id else None}
                 for report in probe(d, judgement)]
        if not expected or not not_restored(expected, found):
            break
    return found


def not_restored(before: Sequence[dict], now: Sequence[dict]) -> list[str]:
    """Each endpoint that served a leaf before and serves another (or none) now."""
    if len(now) != len(before):
        return [f"{len(now)} endpoints answered, {len(before)} before"]
    return [f"{then['name']} serves {(found['leaf'][:23] + '...') if found['leaf'] else 'nothing'}, before: "
            f"{then['leaf'][:23]}..."
            for then, found in zip(before, now) if then["leaf"] and found["leaf"] != then["leaf"]]


def verify(d: Deployment) -> None:
    """Every port, each public name as SNI and identity, serves the deployed chain; retried while the services
    pick up the reload. The deployed leaves are the reference (old_chain_served)."""
    if not d.params["verify"]:
        return
    params = dict(judging_params(d), roots=[], pool=[], system_roots=False, names=[])
    judgement = dataclasses.replace(judgement_from_params(params),
                                    roots=deployed_roots(d))
    fail_on = list(dict.fromkeys(d.params["fail_on"] + d.params["verify_fail_on"]))
    ignore = list(dict.fromkeys(d.params["ignore"] + d.params["verify_ignore"]))
    for attempt in range(d.params["verify_retries"] + 1):
        if attempt:
            d.sleep(d.params["verify_delay"])
        reports = probe(d, judgement)
        judged = gate([(report.name, report.findings) for report in reports], fail_on, ignore)
        if all(verdict.passed for _name, verdict in judged):
            break
    d.result["verified"] = [verified_entry(d, report) for report in reports]
    if not all(verdict.passed for _name, verdict in judged):
        raise MailTlsError(
            f"{d.params['verify_address']}: live verification failed after {d.params['verify_retries']} retries:\n"
            + "\n".join(violation_lines(judged)))


def deployed_roots(d: Deployment) -> Loaded:
    """The roots the deployed chains end in, the only anchors of the live verification."""
    roots = Loaded()
    for plan in d.plans:
        if plan.analysis.root:
            roots = roots + loaded_root(plan.analysis.root, "the root of the deployed chain")
    return roots


def verified_entry(d: Deployment, report) -> dict:
    endpoint = report.probe.endpoint
    leaf = report.chain_id[0] if report.chain_id else None
    return {"endpoint": report.name, "port": endpoint.port, "server_name": endpoint.server_name,
            "key_type": report.probe.key_type, "leaf_sha256": leaf, "deployed": leaf in d.result["leaf_sha256"],
            "issues": [finding.code for finding in report.findings]}


def violation_lines(judged) -> list[str]:
    """One line per endpoint and code: a port probed with each name as SNI reports the same finding once per
    name (service_mismatch, name_mismatch), which the line counts instead of repeating."""
    lines: dict[str, list] = {}
    for name, verdict in judged:
        for finding in verdict.violations:
            lines.setdefault(f"{name}: [{finding.code}]", [finding.message, 0])[1] += 1
    return [f"{key} {message}" + (f" (and {count - 1} more like it on this port)" if count > 1 else "")
            for key, (message, count) in lines.items()]


def roll_back(d: Deployment, failure: str) -> str:
    """Put back every file and setting, reload what changed, and say whether every port serves the previous chain
    again; returns the failure message."""
    d.result.update(rolled_back=True, failure=failure)
    problems = restore_files(d) + restore_settings(d)
    reloaded, failures = reload(d, " with the previous files and configuration")
    problems += failures
    restoring = f"restored the previous files and settings, reloaded {' and '.join(reloaded) or 'nothing'}"
    if problems:
        restoring = f"{restoring}; but: {'; '.join(problems)}"
    checked = [entry for entry in d.before if entry["leaf"]]
    missing = not_restored(d.before, served_leaves(d, d.params["verify_retries"] + 1, d.before)) if checked else []
    d.result["restored"] = not missing and not problems
    if missing:
        proof = f"NOT every port serves the previous chain again: {'; '.join(missing)}"
    else:
        proof = f"every port serves the previous chain again ({len(checked)} checks)"
    if d.result["restored"] and not d.params["keep_backups"]:
        remove_backups(d)
    return f"the deployment failed and was rolled back.\nFailure: {failure}\nRollback: {restoring}; {proof}"


def restore_files(d: Deployment) -> list[str]:
    """Each changed file back: its old inode from the backup (which stays, as a second link, until the rollback is
    proven), its old owner, group and mode, or no file at all."""
    problems = []
    for _item, target, current, change in d.work:
        if not change.changed:
            continue
        backup = d.backups.get(target)
        try:
            if backup:
                restoring = f"{target}.mailtls-restore"
                os.link(backup, restoring)
                os.replace(restoring, target)
            elif current.exists:
                os.chown(target, current.uid, current.gid)
                os.chmod(target, current.mode)
            else:
                os.unlink(target)
        except OSError as exc:
            problems.append(f"{target} could not be restored: {exc.strerror}")
    return problems


def restore_settings(d: Deployment) -> list[str]:
    if not d.previous_settings:
        return []
    try:
        mailconf.set_parameters(d.run, d.postfix.config_dir, d.previous_settings)
    except MailTlsError as exc:
        return [str(exc)]
    return []


def remove_backups(d: Deployment) -> None:
    for backup in list(d.backups.values()):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(backup)
    d.backups = {}
    d.result["backup_files"] = []
