# SPDX-License-Identifier: GPL-3.0-or-later
"""The mailops.tls.deploy role against the lab, through real ansible-playbook runs of playbooks/deploy.yml.

The first three tests share one deployment of a messy pile to all three backends (module fixture
``deployed``) and only read what it left: served chains, a second run, a check-mode run. The failure tests
each change one backend and restore the lab afterwards (fixture ``restore_lab``). Every run uses the
inventory of tests/integration/deploy_inventory.py (one host per lab backend, local connection).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import deploy_inventory
import lab as lablib
import pki
import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "deploy.yml"
SERVICES = list(lablib.PORTS)
DEPLOY_TASK = "Deploy, validate, reload and verify every port live; roll back on failure"


def collections_root() -> Path:
    """The directory holding ansible_collections/mailops/tls (tests/conftest.py makes the link)."""
    for parent in REPO.parents:
        if parent.name == "ansible_collections":
            return parent.parent
    return REPO / "build" / "collections"


def fingerprint(der: bytes) -> str:
    """SHA-256 as the collection prints it: uppercase, colon-separated."""
    return hashlib.sha256(der).digest().hex(":").upper()


# ansible-core 2.19 has no JSON stdout callback of its own (it moved to ansible.posix): this one records every
# task result and the final stats as JSON lines in the file named by MAILOPS_TEST_EVENTS.
RECORDER = '''
import json, os
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mailops_record"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, event):
        with open(os.environ["MAILOPS_TEST_EVENTS"], "a") as stream:
            stream.write(json.dumps(event, default=str) + "\\n")

    def _result(self, result, status):
        self._write({"task": result.task_name, "host": result._host.get_name(), "status": status,
                     "result": result._result})

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        self._write({"stats": {host: stats.summarize(host) for host in sorted(stats.processed)}})
'''


class Run:
    """One ansible-playbook run, read from the recorded events."""

    def __init__(self, done: subprocess.CompletedProcess, events: Path):
        self.returncode = done.returncode
        self.stdout = done.stdout + done.stderr
        self.recorded = events.read_text() if events.exists() else ""
        lines = self.recorded.splitlines()
        self.events = [json.loads(line) for line in lines]
        stats = [event["stats"] for event in self.events if "stats" in event]
        if not stats:
            raise AssertionError(f"ansible-playbook recorded no stats (exit {done.returncode}):\n{self.stdout[-4000:]}")
        self.stats = stats[-1]

    def results(self, task_name: str, host: str) -> list:
        """The results of every task of that name on host (a task may run in several plays or batches)."""
        return [e["result"] for e in self.events if e.get("task") == task_name and e.get("host") == host]

    def failures(self, host: str) -> list:
        """The messages of the failed tasks of host."""
        return [e["result"].get("msg", "") for e in self.events
                if e.get("host") == host and e.get("status") == "failed"]

    def fact(self, host: str, name: str = "mail_tls_deploy_result"):
        """The last value set_fact gave a fact on host."""
        values = [e["result"]["ansible_facts"][name] for e in self.events
                  if e.get("host") == host and name in e.get("result", {}).get("ansible_facts", {})]
        return values[-1] if values else None

    def __str__(self) -> str:
        failed = {h: self.failures(h) for h in self.stats}
        return f"exit {self.returncode}, stats {self.stats}, failures {failed}\n{self.stdout[-3000:]}"


@pytest.fixture(scope="module", params=["host", "trixie"])
def lab(request, lab_on):
    """Every test runs on this machine's Postfix and Dovecot and on Debian 13's (Postfix 3.10, Dovecot 2.4), except
    those marked HOST_ONLY."""
    return lab_on(request.param)


# Tests of the role's own logic (refusals, rollback branches, messages), which no server version changes: on this
# machine's servers only, so the Debian 13 pass costs only what depends on the servers.
HOST_ONLY = pytest.mark.parametrize("lab", ["host"], indirect=True)


@pytest.fixture(scope="module")
def inventory(lab, tmp_path_factory) -> Path:
    return deploy_inventory.write_inventory(lab, tmp_path_factory.mktemp("deploy") / "inventory.yml")


@pytest.fixture(scope="module")
def playbook(inventory, tmp_path_factory):
    """Run playbooks/deploy.yml with extra vars; returns a Run."""
    work = tmp_path_factory.mktemp("runs")

    (work / "callback_plugins").mkdir()
    (work / "callback_plugins" / "mailops_record.py").write_text(RECORDER)
    count = iter(range(1000))

    def run(extra_vars: dict, *args: str, limit: str = "") -> Run:
        number = next(count)
        vars_file, events = work / f"vars-{number}.json", work / f"events-{number}.jsonl"
        vars_file.write_text(json.dumps(extra_vars))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_root()), MAILOPS_TEST_EVENTS=str(events),
                   ANSIBLE_CALLBACK_PLUGINS=str(work / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="mailops_record",
                   ANSIBLE_PIPELINING="1", ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
        argv = [str(Path(sys.executable).parent / "ansible-playbook"),
                "-i", str(inventory), str(PLAYBOOK), "-e", f"@{vars_file}", *args]
        if limit:
            argv += ["--limit", limit]
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
        return Run(done, events)

    return run


def make_pile(lab, directory: Path, *, key_of=None) -> dict:
    """A messy pile for a new leaf from the lab CA: intermediate first (wrong order), an unrelated
    certificate and the lab root in the same file, the leaf last; key (of key_of, when given) apart."""
    directory.mkdir(parents=True, exist_ok=True)
    names = [*lablib.SERVICE_NAMES, *(b.hostname for b in lab.backends)]
    leaf = lab.pki.intermediate.leaf(*names)
    unrelated = pki.hierarchy("old-mail.example.test").leaf
    (directory / "from-the-ca.pem").write_bytes(lab.pki.intermediate_pem + unrelated.pem + lab.pki.root_pem + leaf.pem)
    (directory / "mail.key").write_bytes((key_of or leaf).key_pem(fmt="traditional"))
    (directory / "root.pem").write_bytes(lab.pki.root_pem)
    return {"leaf": leaf, "vars": {"mail_tls_deploy_certificates": [str(directory / "from-the-ca.pem")],
                                   "mail_tls_deploy_private_key": str(directory / "mail.key"),
                                   "mail_tls_deploy_roots": [str(directory / "root.pem")],
                                   "mail_tls_deploy_system_roots": False}}


def watched_files(lab) -> list:
    """Every file the role may touch on a backend."""
    files = []
    for backend in lab.backends:
        files += [backend.cert_file, backend.key_file, backend.chain_key_file, backend.postfix_dir / "main.cf",
                  backend.postfix_dir / "master.cf", backend.dovecot_conf, deploy_inventory.dropin_path(backend)]
    return files


def snapshot(lab) -> dict:
    """path -> (mtime_ns, content) of every watched file (None when absent)."""
    found = {}
    for path in watched_files(lab):
        try:
            found[path] = (path.stat().st_mtime_ns, path.read_bytes())
        except FileNotFoundError:
            found[path] = None
    return found


def file_attributes(path) -> tuple:
    """(uid, gid, permission bits) of a file."""
    status = path.stat()
    return status.st_uid, status.st_gid, status.st_mode & 0o7777


def reload_counts(lab) -> dict:
    """backend name -> (Postfix reloads, Dovecot reloads) as their logs record them."""
    counts = {}
    for backend in lab.backends:
        postfix = backend.postfix_log.read_text(errors="replace").count("reload -- version")
        dovecot = backend.dovecot_log.read_text(errors="replace").count("SIGHUP received")
        counts[backend.name] = (postfix, dovecot)
    return counts


def served_leaves(address: str, times: int = 1) -> dict:
    """service -> set of leaf fingerprints seen in `times` handshakes."""
    return {service: {fingerprint(lablib.served_leaf(address, service)) for _n in range(times)} for service in SERVICES}


@pytest.fixture(scope="module")
def original_config(lab) -> dict:
    """The lab's config files before this module ran (restored at its end)."""
    return {path: data for path, data in snapshot(lab).items() if path.name in ("main.cf", "master.cf", "dovecot.conf")}


def restore(lab, original_config: dict) -> None:
    """Put the lab back as it was: config files, no drop-in, the default chain served everywhere."""
    for backend in lab.backends:
        changed = False
        for path in (backend.postfix_dir / "main.cf", backend.postfix_dir / "master.cf", backend.dovecot_conf):
            _mtime, content = original_config[path]
            if path.read_bytes() != content:
                lablib.write_file(path, content, backdate=path.name != "dovecot.conf")
                changed = True
        dropin = deploy_inventory.dropin_path(backend)
        if dropin.exists():
            dropin.unlink()
            changed = True
        if changed:
            backend.reload()
    lab.reset_chains()


@pytest.fixture
def restore_lab(lab, original_config):
    yield
    restore(lab, original_config)


@pytest.fixture(scope="module")
def deployed(lab, playbook, original_config, tmp_path_factory):
    """The messy pile deployed to all three backends (and the load balancer verified)."""
    pile = make_pile(lab, tmp_path_factory.mktemp("pile"))
    before = reload_counts(lab)
    run = playbook(pile["vars"])
    yield {"pile": pile, "run": run, "reloads_before": before}
    restore(lab, original_config)


def test_messy_pile_is_served_on_every_port_of_every_backend_and_the_front(lab, deployed):
    run, leaf = deployed["run"], deployed["pile"]["leaf"]
    assert run.returncode == 0, str(run)
    expected = [leaf.der, lab.pki.intermediate.der]
    for backend in lab.backends:
        assert run.stats[backend.name]["changed"] > 0, str(run)
        for service in SERVICES:
            assert lablib.served_chain(backend.address, service) == expected, f"{backend.name} {service}"
        result = run.fact(backend.name)
        assert result["succeeded"] and not result["rolled_back"]
        assert result["leaf_sha256"] == [fingerprint(leaf.der)]
        assert {"wrong_order", "unrelated_certificate", "root_included"} <= set(result["input_issues"])
        assert {v["port"] for v in result["verified"]} == set(lablib.PORTS.values())
        assert all(v["deployed"] for v in result["verified"])
        assert set(result["reloaded"]) == {"postfix", "dovecot"}
        dropin = deploy_inventory.dropin_path(backend).read_text().splitlines()
        assert [line for line in dropin if line and not line.startswith("#")] == [
            lab.dovecot_file_setting("ssl_cert", backend.cert_file),
            lab.dovecot_file_setting("ssl_key", backend.key_file)]
        assert f"!include_try {deploy_inventory.dropin_path(backend)}" in backend.dovecot_conf.read_text()
    balancer = run.fact(lab.backends[0].name, "mail_tls_deploy_load_balancer_result")
    assert balancer["passed"] and balancer["probes"] == len(SERVICES) * 2 * len(lab.backends), balancer
    # The front forwards round-robin: enough handshakes per port reach every backend.
    for service in SERVICES:
        for _n in range(2 * len(lab.backends)):
            assert lablib.served_chain(lab.front_address, service) == expected, f"front {service}"
    after = reload_counts(lab)
    assert all(after[name][0] == count[0] + 1 and after[name][1] == count[1] + 1
               for name, count in deployed["reloads_before"].items()), (deployed["reloads_before"], after)


def test_second_run_changes_nothing_and_reloads_nothing(lab, deployed, playbook):
    assert deployed["run"].returncode == 0, str(deployed["run"])
    files, reloads = snapshot(lab), reload_counts(lab)
    run = playbook(dict(deployed["pile"]["vars"], mail_tls_deploy_serial=3))  # reads only: all at once
    assert run.returncode == 0, str(run)
    assert {host: stats["changed"] for host, stats in run.stats.items()} == {b.name: 0 for b in lab.backends}
    assert snapshot(lab) == files
    assert reload_counts(lab) == reloads
    for backend in lab.backends:
        assert run.fact(backend.name)["reloaded"] == []


def test_check_mode_changes_no_file_and_reports_the_changes(lab, deployed, playbook, tmp_path):
    assert deployed["run"].returncode == 0, str(deployed["run"])
    new = make_pile(lab, tmp_path / "renewed")
    files, reloads = snapshot(lab), reload_counts(lab)
    run = playbook(dict(new["vars"], mail_tls_deploy_serial=3), "--check", "--diff")
    assert run.returncode == 0, str(run)
    assert snapshot(lab) == files
    assert reload_counts(lab) == reloads
    new_fingerprint = fingerprint(new["leaf"].der)
    for backend in lab.backends:
        assert run.stats[backend.name]["changed"] > 0, str(run)
        written = run.results(DEPLOY_TASK, backend.name)[-1]
        assert written["changed"] and set(written["written"]) == {
            str(backend.cert_file), str(backend.key_file), str(backend.chain_key_file)}
        assert new_fingerprint in json.dumps(written["diff"])
        assert fingerprint(lablib.served_leaf(backend.address, "imaps")) == fingerprint(deployed["pile"]["leaf"].der)
    key_line = new["leaf"].key_pem().decode().splitlines()[1]
    for text in (run.stdout, run.recorded):
        assert "PRIVATE KEY" not in text and key_line not in text


@HOST_ONLY
def test_key_not_matching_the_chain_is_refused_before_anything_changes(lab, playbook, restore_lab, tmp_path):
    other = lab.pki.intermediate.leaf("mail.example.test")
    pile = make_pile(lab, tmp_path / "pile", key_of=other)
    files, reloads = snapshot(lab), reload_counts(lab)
    run = playbook(pile["vars"], limit="mx1")
    assert run.returncode != 0, str(run)
    message = "\n".join(run.failures("mx1"))
    assert "not deployable, nothing was changed" in message and "key_mismatch" in message, message
    assert snapshot(lab) == files
    assert reload_counts(lab) == reloads
    (refused,) = run.results(DEPLOY_TASK, "mx1")
    assert refused["written"] == [] and refused["files"] == [], refused
    result = run.fact("mx1")
    assert not result["succeeded"] and not result["rolled_back"] and "key_mismatch" in result["failure"], result


def test_chain_failing_live_is_rolled_back_and_the_old_chain_served_again(lab, playbook, restore_lab, tmp_path):
    """Injection: mx2's Dovecot reload command exits 0 but reloads nothing (as `systemctl reload dovecot` does
    on a host where this Dovecot is a second instance that the unit does not manage). The files pass every
    check and Postfix serves the new chain, but Dovecot keeps the old one: only the live verification sees
    it, on the IMAP, POP3, ManageSieve and LMTP ports."""
    backend = lab.backend("mx2")
    pile = make_pile(lab, tmp_path / "pile")
    old = served_leaves(backend.address)
    assert all(len(leaves) == 1 for leaves in old.values())
    files = snapshot(lab)
    run = playbook(dict(pile["vars"], mail_tls_deploy_dovecot_reload_command=["true"],
                        mail_tls_deploy_verify_retries=3), limit="mx2")
    assert run.returncode != 0, str(run)
    message = "\n".join(run.failures("mx2"))
    assert "mx2: the deployment failed and was rolled back" in message, message
    assert f"{backend.address}:993 (mx2) imaps" in message and "old_chain_served" in message, message
    assert "every port serves the previous chain again" in message, message
    # One line per port and code, however many names each port was probed with.
    (final,) = [failure for failure in run.failures("mx2") if "was rolled back" in failure]
    findings = [line.split("]", 1)[0] for line in final.splitlines() if line.startswith(f"{backend.address}:")]
    assert findings and len(findings) == len(set(findings)), message
    # The deployed chain is the reference: Postfix's ports, which serve it, are never blamed, though most ports
    # (Dovecot's) still serve the old one.
    blamed = {int(line.split(" ", 1)[0].rsplit(":", 1)[1]) for line in final.splitlines()
              if line.startswith(f"{backend.address}:")}
    assert blamed == {lab.ports[s] for s in ("imap", "imaps", "pop3", "pop3s", "sieve", "lmtp")}, message
    assert served_leaves(backend.address, times=2) == old
    for path, before in files.items():
        if backend.name in path.parts:
            now = path.read_bytes() if path.exists() else None
            assert now == (before[1] if before else None), path
    result = run.fact("mx2")
    assert result["rolled_back"] and result["restored"] and not result["succeeded"]


def test_postfix_check_failure_rolls_back(lab, playbook, restore_lab, tmp_path):
    """Injection: an operator's typo in a main.cf parameter the role writes (the letter O in 1OO). The run also
    hands the key to Dovecot's group (0640), so the rollback must put back owner, group and mode, not only
    the content."""
    backend = lab.backend("mx3")
    pile = make_pile(lab, tmp_path / "pile")
    old = served_leaves(backend.address)
    files, reloads = snapshot(lab), reload_counts(lab)
    attributes = {path: file_attributes(path) for path in files if backend.name in path.parts and path.exists()}
    assert attributes[backend.key_file][1:] == (0, 0o600)
    run = playbook(dict(pile["vars"], mail_tls_deploy_postfix_extra_settings={"default_process_limit": "1OO"},
                        mail_tls_deploy_dovecot_key_group="dovecot"), limit="mx3")
    (written,) = run.results(DEPLOY_TASK, "mx3")
    changed = {entry["path"]: entry["changes"] for entry in written["files"]}
    assert "group root -> dovecot" in changed[str(backend.key_file)], changed
    assert run.returncode != 0, str(run)
    message = "\n".join(run.failures("mx3"))
    assert "postfix -c" in message and "check failed" in message, message
    assert "bad numerical configuration: default_process_limit = 1OO" in message, message
    assert "rolled back" in message, message
    for path, before in files.items():
        if backend.name in path.parts:
            now = path.read_bytes() if path.exists() else None
            assert now == (before[1] if before else None), path
    assert "default_process_limit" not in (backend.postfix_dir / "main.cf").read_text()
    assert {path: file_attributes(path) for path in attributes} == attributes
    assert served_leaves(backend.address, times=2) == old
    # Never reloaded with the broken configuration: only the rollback's reload of the restored one.
    assert reload_counts(lab)[backend.name][0] <= reloads[backend.name][0] + 1


@HOST_ONLY
def test_rollback_restores_owner_group_and_mode_when_only_they_changed(lab, playbook, restore_lab, tmp_path):
    """The pile deployed once; then the same pile with the key handed to Dovecot's group (only the key file's
    group and mode change, so no backup copy is made) and a failing `postfix check`: the rollback must put the
    key back to root:root 0600 from the attributes mail_tls_chain recorded."""
    backend = lab.backend("mx1")
    pile = make_pile(lab, tmp_path / "pile")
    first = playbook(pile["vars"], limit="mx1")
    # Only the load-balancer pass fails (mx2 and mx3 still serve the lab's chain): mx1 itself is deployed.
    assert first.fact("mx1")["succeeded"], str(first)
    (written,) = first.results(DEPLOY_TASK, "mx1")
    key_file = Path(next(entry["path"] for entry in written["files"] if entry["output"] == "key"))
    assert backend.name in key_file.parts, key_file  # Dovecot's key on mx1
    before = file_attributes(key_file)
    assert before[1:] == (0, 0o600), before
    run = playbook(dict(pile["vars"], mail_tls_deploy_postfix_extra_settings={"default_process_limit": "1OO"},
                        mail_tls_deploy_dovecot_key_group="dovecot"), limit="mx1")
    assert run.returncode != 0, str(run)
    (written,) = run.results(DEPLOY_TASK, "mx1")
    key_entry = next(entry for entry in written["files"] if entry["path"] == str(key_file))
    assert key_entry["changes"] == ["group root -> dovecot", "mode 0600 -> 0640"], key_entry
    assert key_entry["backup_file"] is None and key_entry["previous"]["mode"] == "0600", key_entry
    assert "rolled back" in "\n".join(run.failures("mx1"))
    assert file_attributes(key_file) == before


@HOST_ONLY
def test_load_balancer_failure_names_each_leaf_once(lab, playbook, restore_lab, tmp_path):
    """Only mx1 deployed: through the load balancer the probes of 9 ports see the new leaf from mx1 and the
    lab's old one from mx2 and mx3. The failure says so in one line per leaf (ports, probe counts, deployed
    or not), not one line per probe and port."""
    pile = make_pile(lab, tmp_path / "pile")
    run = playbook(pile["vars"], limit="mx1")
    assert run.returncode != 0 and run.fact("mx1")["succeeded"], str(run)
    (message,) = [m for m in run.failures("mx1") if "probes through the load balancer" in m]
    lines = message.splitlines()
    new_leaf = fingerprint(pile["leaf"].der)[:23]
    old_leaf = fingerprint(lablib.served_leaf(lab.backend("mx2").address, "imaps"))[:23]
    assert "2 different leaves" in lines[0], message
    (new_line,) = [line for line in lines if new_leaf in line]
    (old_line,) = [line for line in lines if old_leaf in line]
    assert "(deployed)" in new_line and "(NOT deployed)" in old_line, message
    ports = ", ".join(str(port) for port in sorted(set(lab.ports.values())))
    assert new_line.endswith(pile["leaf"].subject.rfc4514_string()) and f"port(s) {ports}:" in new_line, message
    assert "run the role on every backend (this play covered mx1)" in lines[-1], message
    assert len(lines) <= 4 and len(message) < 1500, message


@HOST_ONLY
def test_version_dependent_settings_rendered_where_those_versions_are_not_installed(
        lab, playbook, restore_lab, tmp_path):
    """Check mode with forced versions: Dovecot 2.4's drop-in and Postfix 3.3's separate certificate and key files
    (the installed 2.3 and 3.7 are checked after the real deploy). The certificates are read on the host."""
    backend = lab.backend("mx1")
    pile = make_pile(lab, tmp_path / "pile")
    files = snapshot(lab)
    run = playbook(dict(pile["vars"], mail_tls_deploy_dovecot_version="2.4.1", mail_tls_deploy_postfix_version="3.3.0",
                        mail_tls_deploy_certificates_on_host=True), "--check", "--diff", limit="mx1")
    assert run.returncode == 0, str(run)
    assert snapshot(lab) == files
    rendered = run.results(DEPLOY_TASK, "mx1")[-1]
    assert rendered["changed"] and rendered["dovecot_dropin_changed"], rendered
    (diff,) = [d for d in rendered["diff"] if d["after_header"] == str(deploy_inventory.dropin_path(backend))]
    lines = [line for line in diff["after"].splitlines() if line and not line.startswith("#")]
    assert lines == [f"ssl_server_cert_file = {backend.cert_file}", f"ssl_server_key_file = {backend.key_file}"]
    result = run.fact("mx1")
    assert result["dovecot_version"] == "2.4.1"
    assert result["postfix_settings"] == {"smtpd_tls_cert_file": str(backend.cert_file),
                                          "smtpd_tls_key_file": str(backend.key_file)}
    assert set(result["files"]) == {str(backend.cert_file), str(backend.key_file)}
    assert rendered["transferred"] == 0, rendered


def test_classic_mistakes_are_reported(lab, playbook, restore_lab, tmp_path):
    """Injection on mx1: the intermediate in smtpd_tls_CAfile and in Dovecot's ssl_ca (client-certificate settings
    that never reach clients), and a master.cf -o override of smtpd_tls_chain_files on the submission port (here
    naming the same file, so the deployment still succeeds and only the report shows it)."""
    backend = lab.backend("mx1")
    pile = make_pile(lab, tmp_path / "pile")
    cafile = tmp_path / "client-ca.pem"
    cafile.write_bytes(lab.pki.intermediate_pem)
    cafile.chmod(0o644)
    tmp_path.chmod(0o755)
    postconf = ["postconf", "-c", str(backend.postfix_dir)]
    subprocess.run(lab.distro.command([*postconf, "-e", f"smtpd_tls_CAfile={cafile}"]), check=True)
    subprocess.run(lab.distro.command(
        [*postconf, "-P", f"{backend.address}:587/inet/smtpd_tls_chain_files={backend.chain_key_file}"]), check=True)
    with backend.dovecot_conf.open("a") as conf:
        conf.write(lab.dovecot_file_setting("ssl_ca", cafile) + "\n")
    run = playbook(dict(pile["vars"], mail_tls_deploy_load_balancer={}), limit="mx1")  # mx2, mx3 keep their chain
    assert run.returncode == 0, str(run)
    result = run.fact("mx1")
    assert result["succeeded"], result
    found = {(w["code"], w["service"]) for w in result["warnings"]}
    assert found == {("intermediate_in_cafile", "postfix"), ("intermediate_in_cafile", "dovecot"),
                     ("setting_overridden", "postfix")}, result["warnings"]
    assert any(f"{backend.address}:587/inet" in w["message"] for w in result["warnings"])
    assert "WARNING [intermediate_in_cafile]" in run.stdout


def test_second_chain_is_deployed_beside_the_first(lab, playbook, restore_lab, tmp_path):
    """An ECDSA and an RSA chain on mx1: two key+chain files for Postfix, ssl_cert and ssl_alt_cert for Dovecot;
    the live verification asks every port for each key type."""
    backend = lab.backend("mx1")
    ecdsa = make_pile(lab, tmp_path / "ecdsa")
    names = [*lablib.SERVICE_NAMES, *(b.hostname for b in lab.backends)]
    rsa = lab.pki.intermediate.leaf(*names, key_type="rsa")
    (tmp_path / "rsa.pem").write_bytes(rsa.pem + lab.pki.intermediate_pem)
    (tmp_path / "rsa.key").write_bytes(rsa.key_pem())
    extra = {"mail_tls_deploy_alt_certificates": [str(tmp_path / "rsa.pem")],
             "mail_tls_deploy_alt_private_key": str(tmp_path / "rsa.key"), "mail_tls_deploy_load_balancer": {}}
    try:
        run = playbook(dict(ecdsa["vars"], **extra), limit="mx1")
        assert run.returncode == 0, str(run)
        result = run.fact("mx1")
        assert result["leaf_sha256"] == [fingerprint(ecdsa["leaf"].der), fingerprint(rsa.der)]
        assert {(v["port"], v["key_type"]) for v in result["verified"]} == {
            (port, key_type) for port in lablib.PORTS.values() for key_type in ("rsa", "ecdsa")}
        assert all(v["deployed"] for v in result["verified"])
        alt_chain = backend.tls_dir / "postfix-chain-alt.pem"
        assert result["postfix_settings"] == {"smtpd_tls_chain_files": f"{backend.chain_key_file}, {alt_chain}"}
        dropin = deploy_inventory.dropin_path(backend).read_text()
        assert lab.dovecot_file_setting("ssl_alt_cert", backend.tls_dir / "fullchain-alt.pem") in dropin
    finally:
        for name in ("postfix-chain-alt.pem", "fullchain-alt.pem", "key-alt.pem"):
            (backend.tls_dir / name).unlink(missing_ok=True)


def test_dovecot_setting_read_after_the_dropin_is_named_and_rolled_back(lab, playbook, restore_lab, tmp_path):
    """Injection on mx1: dovecot.conf includes the drop-in and then names the certificate files again (the lab's
    old ones), while the role writes new file names. Dovecot keeps serving the old chain: the role names the
    overriding setting (read from Dovecot 2.4's ssl_server filter on Debian 13), the live verification fails on
    Dovecot's ports and the deployment is rolled back."""
    backend = lab.backend("mx1")
    pile = make_pile(lab, tmp_path / "pile")
    with backend.dovecot_conf.open("a") as conf:
        conf.write(f"!include_try {deploy_inventory.dropin_path(backend)}\n"
                   f"{lab.dovecot_file_setting('ssl_cert', backend.cert_file)}\n"
                   f"{lab.dovecot_file_setting('ssl_key', backend.key_file)}\n")
    new_files = {"mail_tls_deploy_dovecot_cert_file": str(backend.tls_dir / "fullchain-new.pem"),
                 "mail_tls_deploy_dovecot_key_file": str(backend.tls_dir / "key-new.pem")}
    try:
        run = playbook(dict(pile["vars"], **new_files, mail_tls_deploy_load_balancer={}), limit="mx1")
        assert run.returncode != 0, str(run)
        result = run.fact("mx1")
        assert result["rolled_back"] and not result["succeeded"], result
        overridden = [w["message"] for w in result["warnings"]
                      if (w["code"], w["service"]) == ("setting_overridden", "dovecot")]
        cert_setting = lab.dovecot_file_setting("ssl_cert", "").split(" = ")[0]
        assert any(f"effective {cert_setting} is " in message and str(backend.cert_file) in message
                   for message in overridden), result["warnings"]
        assert served_leaves(backend.address) == {s: {fingerprint(lab.pki.leaf.der)} for s in SERVICES}
    finally:
        for path in new_files.values():
            Path(path).unlink(missing_ok=True)


# Every rollback branch, each against the real servers. The role runs with its own default reload commands (the
# lab's inventory sets only the config directory and file); a test that injects a failing reload wraps them.


def postconf(backend, name: str) -> str:
    """The value main.cf gives name explicitly ('' when it does not set it)."""
    done = subprocess.run(["postconf", "-c", str(backend.postfix_dir), "-n", "-h", name], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip()


def changed_files(backend, before: dict) -> list:
    """The watched files of backend whose content differs from before (None: absent)."""
    differ = []
    for path, was in before.items():
        if backend.name in path.parts:
            now = path.read_bytes() if path.exists() else None
            if now != (was[1] if was else None):
                differ.append(path)
    return differ


def once_then(command: str, first: str, mark) -> list:
    """A reload command that runs `first` on its first call and `command` on every later one."""
    return ["sh", "-c", f"if [ -e {mark} ]; then {command}; else touch {mark}; {first}; fi"]


@HOST_ONLY
def test_a_failing_reload_rolls_back_and_reloads_the_previous_files(lab, playbook, restore_lab, tmp_path):
    backend = lab.backend("mx1")
    pile = make_pile(lab, tmp_path / "pile")
    old, files = served_leaves(backend.address), snapshot(lab)
    reload = f"postfix -c {backend.postfix_dir} reload"
    failing = once_then(reload, "echo 'postfix/postfix-script: fatal: injected reload failure' >&2; exit 1",
                        tmp_path / "reloaded")
    run = playbook(dict(pile["vars"], mail_tls_deploy_postfix_reload_command=failing,
                        mail_tls_deploy_load_balancer={}), limit="mx1")
    assert run.returncode != 0, str(run)
    message = "\n".join(run.failures("mx1"))
    assert "the deployment failed and was rolled back" in message and "injected reload failure" in message, message
    assert "every port serves the previous chain again" in message, message
    assert changed_files(backend, files) == []
    assert served_leaves(backend.address, times=2) == old
    result = run.fact("mx1")
    assert result["rolled_back"] and result["restored"] and not result["succeeded"], result


@HOST_ONLY
def test_a_failing_doveconf_rolls_back_before_any_reload(lab, playbook, restore_lab, tmp_path):
    """Dovecot 2.4's setting names forced on the lab's Dovecot 2.3: `doveconf -n` rejects the drop-in before any
    reload. The drop-in and the include line did not exist before: the rollback removes them."""
    backend = lab.backend("mx2")
    pile = make_pile(lab, tmp_path / "pile")
    old, files = served_leaves(backend.address), snapshot(lab)
    run = playbook(dict(pile["vars"], mail_tls_deploy_dovecot_version="2.4.0", mail_tls_deploy_load_balancer={}),
                   limit="mx2")
    assert run.returncode != 0, str(run)
    message = "\n".join(run.failures("mx2"))
    assert f"doveconf -c {backend.dovecot_conf} -n failed" in message and "ssl_server_cert_file" in message, message
    assert "rolled back" in message, message
    assert not deploy_inventory.dropin_path(backend).exists()
    assert changed_files(backend, files) == []
    assert served_leaves(backend.address, times=2) == old


@HOST_ONLY
def test_a_changed_postfix_value_is_put_back(lab, playbook, restore_lab, tmp_path):
    """main.cf sets smtpd_tls_loglevel = 0; the run sets it to 1 with a typo in another parameter: the rollback
    puts 0 back (postconf -e), and removes the parameter that was not set (postconf -X)."""
    backend = lab.backend("mx3")
    subprocess.run(["postconf", "-c", str(backend.postfix_dir), "-e", "smtpd_tls_loglevel=0"], check=True)
    pile = make_pile(lab, tmp_path / "pile")
    run = playbook(dict(pile["vars"], mail_tls_deploy_load_balancer={},
                        mail_tls_deploy_postfix_extra_settings={"smtpd_tls_loglevel": "1",
                                                                "default_process_limit": "1OO"}), limit="mx3")
    assert run.returncode != 0, str(run)
    assert run.fact("mx3")["postfix_settings"] == {"smtpd_tls_loglevel": "1", "default_process_limit": "1OO"}
    assert "rolled back" in "\n".join(run.failures("mx3"))
    assert postconf(backend, "smtpd_tls_loglevel") == "0"
    assert postconf(backend, "default_process_limit") == ""


@HOST_ONLY
def test_the_previous_drop_in_comes_back_and_new_files_go(lab, playbook, restore_lab, tmp_path):
    """Deployed once (the drop-in exists); then a second chain beside the first, with a failing `postfix check`:
    the rollback restores the drop-in from its backup and smtpd_tls_chain_files, and removes the second chain's
    files, which did not exist before."""
    backend = lab.backend("mx1")
    pile = make_pile(lab, tmp_path / "pile")
    first = playbook(dict(pile["vars"], mail_tls_deploy_load_balancer={}), limit="mx1")
    assert first.returncode == 0, str(first)
    dropin = deploy_inventory.dropin_path(backend)
    before_dropin, before_files = dropin.read_bytes(), snapshot(lab)
    chain_files = postconf(backend, "smtpd_tls_chain_files")
    names = [*lablib.SERVICE_NAMES, *(b.hostname for b in lab.backends)]
    rsa = lab.pki.intermediate.leaf(*names, key_type="rsa")
    (tmp_path / "rsa.pem").write_bytes(rsa.pem + lab.pki.intermediate_pem)
    (tmp_path / "rsa.key").write_bytes(rsa.key_pem())
    run = playbook(dict(pile["vars"], mail_tls_deploy_load_balancer={},
                        mail_tls_deploy_alt_certificates=[str(tmp_path / "rsa.pem")],
                        mail_tls_deploy_alt_private_key=str(tmp_path / "rsa.key"),
                        mail_tls_deploy_postfix_extra_settings={"default_process_limit": "1OO"}), limit="mx1")
    assert run.returncode != 0, str(run)
    result = run.fact("mx1")
    assert result["rolled_back"] and result["dovecot_dropin_changed"], result
    alt_files = [backend.tls_dir / name for name in ("postfix-chain-alt.pem", "fullchain-alt.pem", "key-alt.pem")]
    assert {str(path) for path in alt_files} <= set(result["files"]), result["files"]
    assert [path for path in alt_files if path.exists()] == []
    assert dropin.read_bytes() == before_dropin
    assert postconf(backend, "smtpd_tls_chain_files") == chain_files
    assert changed_files(backend, before_files) == []
    assert [path.name for path in dropin.parent.iterdir() if path.name.startswith(dropin.name + ".")] == []


@HOST_ONLY
def test_a_rollback_that_cannot_restore_says_so_and_keeps_the_backups(lab, playbook, restore_lab, tmp_path):
    """Dovecot's reload does nothing (the new chain fails live there) and Postfix's reloads only once: after the
    rollback Postfix's running processes still serve the new chain. The role must say that not every port serves
    the previous chain and keep the backups of the replaced files."""
    backend = lab.backend("mx2")
    pile = make_pile(lab, tmp_path / "pile")
    reload_once = once_then("true", f"postfix -c {backend.postfix_dir} reload", tmp_path / "reloaded")
    run = playbook(dict(pile["vars"], mail_tls_deploy_load_balancer={}, mail_tls_deploy_verify_retries=2,
                        mail_tls_deploy_postfix_reload_command=reload_once,
                        mail_tls_deploy_dovecot_reload_command=["true"]), limit="mx2")
    assert run.returncode != 0, str(run)
    message = "\n".join(run.failures("mx2"))
    assert "NOT every port serves the previous chain again" in message, message
    assert f"{backend.address}:25 (mx2)" in message.split("NOT every port", 1)[1], message
    result = run.fact("mx2")
    assert result["rolled_back"] and not result["restored"], result
    backups = [path for path in backend.tls_dir.iterdir() if path.name.endswith("~")]
    assert backups, sorted(path.name for path in backend.tls_dir.iterdir())


@HOST_ONLY
def test_a_reload_that_fails_every_time_is_reported_and_the_backups_kept(lab, playbook, restore_lab, tmp_path):
    """Postfix's reload command fails for the deployment and again for the rollback: the files and settings are put
    back all the same, and the message says the reload of the previous configuration failed too."""
    backend = lab.backend("mx3")
    pile = make_pile(lab, tmp_path / "pile")
    files = snapshot(lab)
    failing = ["sh", "-c", "echo 'postfix/postfix-script: fatal: injected reload failure' >&2; exit 1"]
    run = playbook(dict(pile["vars"], mail_tls_deploy_postfix_reload_command=failing,
                        mail_tls_deploy_load_balancer={}, mail_tls_deploy_verify_retries=1), limit="mx3")
    assert run.returncode != 0, str(run)
    message = "\n".join(run.failures("mx3"))
    assert "Failure: Reload Postfix: sh -c" in message, message
    assert "reloaded dovecot; but: Reload Postfix with the previous files and configuration: sh -c" in message, message
    result = run.fact("mx3")
    assert result["rolled_back"] and not result["restored"], result
    assert changed_files(backend, files) == []
    assert [path for path in backend.tls_dir.iterdir() if path.name.endswith("~")], "the backups were removed"


@pytest.fixture(autouse=True)
def no_backups_left(lab):
    """Backups hold old keys: a test that keeps them on purpose must not leave them to the next one."""
    yield
    for backend in lab.backends:
        for path in backend.tls_dir.iterdir():
            if path.name.endswith("~"):
                path.unlink()
