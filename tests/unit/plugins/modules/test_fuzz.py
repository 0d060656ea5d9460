# SPDX-License-Identifier: GPL-3.0-or-later
"""The module fuzz harness: every module, called in-process through AnsibleModule with option values generated from
its own argument spec (valid, boundary and hostile: wrong types, huge numbers, NUL and control characters, deep
nesting, special files), a few hundred calls per module with a fixed seed. Each call must end in exit_json, or in
fail_json with a message: never an exception, a traceback or a hang, and never a passphrase or key in the output.

Live endpoints are only ever loopback addresses of 127.0.70.0/24 on ports found closed, so probes are refused at
once; write destinations are only ever inside the test's temporary directory. MAILOPS_FUZZ_CALLS sets the calls per
module (250), MAILOPS_FUZZ_VERBOSE=1 prints each failure's message (with pytest -s)."""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import random
import signal
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import pki
from ansible_adhoc import ANSIBLE_BIN

pytestmark = pytest.mark.skipif(not ANSIBLE_BIN.exists(),
                                reason="ansible-core is not installed in this interpreter's environment "
                                       "(make unit installs it; make unit-oldest tests the library only)")

MODULES = ("mail_tls_chain_facts", "mail_tls_assert", "mail_tls_chain", "mail_tls_endpoint_info",
           "mail_tls_root_info", "mail_tls_root_files", "mail_tls_report", "mail_tls_deploy")
CALLS = int(os.environ.get("MAILOPS_FUZZ_CALLS", "250"))
SEED = 20261203
SECONDS_PER_CALL = 60
PASSPHRASE = "fuzz-passphrase-Qx7-never-printed"
NAME = "mail.example.test"
# Options a module writes to: their values are only ever paths inside the temporary directory.
OUTPUTS = {"fullchain_path", "chain_path", "combined_path", "key_path", "root_path", "json_path", "junit_path",
           "html_path", "dest", "tls_dir", "chain_file", "alt_chain_file", "cert_file", "key_file", "alt_cert_file",
           "alt_key_file"}
DIRECTORIES = {"dest", "tls_dir"}
# Options a module reads from: the generated inputs, special files and paths that cannot be read.
INPUTS = {"path", "pool", "roots", "private_key_path", "merge", "certificates", "private_key"}
# Two faults of ansible-core 2.19's own argument validation, which runs before any module code and which no module
# can work around (docs/input-guarantees.md):
# - check_type_int converts through int(Decimal(value)): an infinite or NaN float given to an int option raises
#   OverflowError or ValueError. The generator gives such floats to float and str options only.
# - _list_no_log_values gives up on every no_log value when a list-of-dicts option (endpoints, hosts, chains)
#   holds an item that is not a dict: the failure's invocation then shows the passphrases at -vvv. A leak is
#   counted, not failed, only with the messages of exactly that failure.
UPSTREAM_LEAK_MESSAGES = ("in the sub parameter field", "dictionary requested, could not parse JSON or key=value",
                          "unable to evaluate string as dictionary")


class Workspace:
    """The files, results and closed ports the generated values are drawn from, made once per test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        company = pki.hierarchy(NAME, "imap.example.test", depth=2)
        upper, lower = company.intermediates
        self.key_pem = company.leaf.key_pem(PASSPHRASE.encode())
        files = {"bundle.pem": pki.pem_bundle(company.leaf, lower, upper), "root.pem": company.root.pem,
                 "leaf.key": self.key_pem, "plain.key": company.leaf.key_pem(), "leaf.der": company.leaf.der,
                 "empty.pem": b"", "junk.pem": b"-----BEGIN CERTIFICATE-----\n" * 500,
                 "certs/upper.pem": upper.pem, "certs/lower.crt": lower.pem}
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        self.secret_line = self.key_pem.decode().splitlines()[3]
        self.plain_key_line = company.leaf.key_pem().decode().splitlines()[3]
        os.mkfifo(root / "fifo")
        (root / "trap").mkdir()  # a destination directory whose files are FIFOs
        for name in ("root.pem", "root.crt", "root.cer", "report.json", "fullchain.pem"):
            os.mkfifo(root / "trap" / name)
        (root / "loop").symlink_to(root / "loop")
        (root / "out").mkdir()
        self.bundle, self.root_pem = files["bundle.pem"].decode(), company.root.pem.decode()
        self.root_sha256 = company.root.cert.fingerprint(pki.hashes.SHA256()).hex()
        self.ports = _closed_ports(4)
        self.report = self._report()
        self.result = self._result(company)

    def _result(self, company: pki.Hierarchy) -> dict:
        """A host's mail_tls_endpoint_info result, made by the library from a probe of a chain."""
        from ansible_collections.mailops.tls.plugins.module_utils.analysis import Judgement, loaded_certificates
        from ansible_collections.mailops.tls.plugins.module_utils.endpoints import endpoint_results, judge
        from ansible_collections.mailops.tls.plugins.module_utils.probe import Endpoint, ProbeResult

        judgement = Judgement(roots=loaded_certificates([company.root.der], "the test roots"))
        probe = ProbeResult(Endpoint("127.0.70.1", 993, "imaps", server_name=NAME), True,
                            (company.leaf.der, *(c.der for c in reversed(company.intermediates))), "TLSv1.3",
                            "TLS_AES_256_GCM_SHA384", seconds=0.02, key_type="ecdsa")
        return json.loads(json.dumps(endpoint_results([judge(probe, judgement)])))

    def _report(self) -> Path:
        """A slice report written by the library, for merge."""
        from ansible_collections.mailops.tls.plugins.module_utils.report import build_report
        path = self.root / "slice.json"
        path.write_text(json.dumps(build_report([{"name": "mx1", "address": "127.0.70.1", "result": None,
                                                  "error": "not probed"}])))
        return path

    def working(self, module: str) -> dict:
        """Arguments with which the module succeeds."""
        root, out = self.root, self.root / "out"
        inputs = {"path": [str(root / "bundle.pem")], "roots": [str(root / "root.pem")], "system_roots": False,
                  "names": [NAME], "private_key_path": str(root / "leaf.key"), "private_key_passphrase": PASSPHRASE}
        return {
            "mail_tls_chain_facts": inputs, "mail_tls_assert": inputs,
            "mail_tls_chain": dict(inputs, fullchain_path=str(out / "fullchain.pem"), key_path=str(out / "key.pem")),
            "mail_tls_endpoint_info": {"endpoints": [{"address": "127.0.70.1", "port": self.ports[0]}],
                                       "timeout": 1.0, "system_roots": False},
            "mail_tls_root_info": {"path": [str(root / "root.pem")], "system_roots": False},
            "mail_tls_root_files": {"content": self.root_pem, "dest": str(out), "basename": "root"},
            "mail_tls_report": {"hosts": [{"name": "mx1", "address": "127.0.70.1", "result": self.result}],
                                "json_path": str(out / "report.json"), "html_path": str(out / "report.html")},
            "mail_tls_deploy": {"certificates": [str(root / "bundle.pem")], "private_key": str(root / "leaf.key"),
                                "private_key_passphrase": PASSPHRASE, "roots": [str(root / "root.pem")],
                                "system_roots": False, "names": [NAME], "tls_dir": str(out), "verify": False},
        }[module]

    def confined(self, module: str, args: dict) -> dict:
        """mail_tls_deploy's servers as the test's own files and harmless commands, whatever was generated: the
        host's Postfix and Dovecot are never read, changed or reloaded."""
        if module != "mail_tls_deploy":
            return args
        conf = self.root / "dovecot.conf"
        conf.touch()
        dovecot = args.get("dovecot") if isinstance(args.get("dovecot"), dict) else {}
        return dict(args, postfix={"enabled": False},
                    dovecot=dict(dovecot, config_file=str(conf), dropin=str(self.root / "out" / "dropin.conf"),
                                 check_command=["true"], reload_command=["true"], version="2.3.0"))

    def readable(self) -> list:
        return [str(self.root / name) for name in ("bundle.pem", "root.pem", "leaf.key", "leaf.der", "certs")]

    def unreadable(self) -> list:
        return [str(self.root / name) for name in ("fifo", "loop", "missing.pem", "empty.pem", "junk.pem", "trap")] + [
            "/dev/zero", "/dev/null", "/proc/self/mem", "/etc/shadow", "", "\x00", "/"]

    def destinations(self) -> list:
        root = self.root
        return [str(root / "out" / "a.pem"), str(root / "out" / "b.pem"), str(root / "out"), str(root / "fifo"),
                str(root / "trap" / "fullchain.pem"), str(root / "trap" / "report.json"), str(root / "trap"),
                str(root / "missing-dir" / "x.pem"), str(root / "loop"), str(root / "out" / "a\x00b"), ""]


def _closed_ports(count: int) -> list:
    """Ports of 127.0.70.1 nothing listens on: bound, then released."""
    ports = []
    for _number in range(count):
        with socket.socket() as probe:
            probe.bind(("127.0.70.1", 0))
            ports.append(probe.getsockname()[1])
    return ports


def _deep(depth: int):
    value: object = "x"
    for _level in range(depth):
        value = [value]
    return value


HOSTILE_ANY = [None, True, 0, -1, 2 ** 64, -(2 ** 63), 1e308, float("inf"), float("nan"), "", " ", "\x00",
               "a\x00b", "\x1b[2J\x1b[31m", "line\nbreak", "é" * 10, "A" * 100000, [], [None], [[]], {}, {"": None},
               {"x": [1, {"y": "z"}]}, _deep(60), "0x10", "1e999", "-0", "True", "{{ lookup('pipe', 'id') }}"]


class Generator:
    """Option values for one module call: mostly valid, with a few options given hostile values."""

    def __init__(self, rng: random.Random, space: Workspace) -> None:
        self.rng = rng
        self.space = space

    def arguments(self, module: str, spec: dict, hostile_share: float) -> dict:
        """The module's working call (most of the time), then some options valid, some hostile."""
        args = self.space.working(module) if self.rng.random() < 0.8 else {}
        for name, option in spec.items():
            roll = self.rng.random()
            if roll < hostile_share:
                args[name] = self.hostile(name, option)
            elif (option.get("required") and name not in args) or roll < hostile_share + 0.08:
                args[name] = self.valid(name, option)
        if self.rng.random() < 0.05:
            args["not_an_option"] = self.rng.choice(HOSTILE_ANY)
        return args

    def valid(self, name: str, option: dict):
        rng, space = self.rng, self.space
        kind = option.get("type", "str")
        if option.get("choices"):
            choices = list(option["choices"])
            return rng.sample(choices, rng.randint(0, len(choices))) if kind == "list" else rng.choice(choices)
        if name in OUTPUTS:
            return rng.choice(space.destinations()[:3]) if name not in DIRECTORIES else str(space.root / "out")
        if name in INPUTS:
            if name == "merge":
                return [str(space.report)]
            if name == "private_key_path":
                return str(space.root / rng.choice(["leaf.key", "plain.key"]))
            picked = rng.sample(space.readable(), rng.randint(1, 2))
            return picked if kind == "list" else picked[0]
        value = self._named(name)
        if value is not None:
            return value
        if kind == "list":
            elements = option.get("elements", "str")
            return [self.valid(name, {"type": elements, "options": option.get("options")})
                    for _item in range(rng.randint(0, 2))]
        if kind == "dict":
            return {key: self.valid(key, sub) for key, sub in (option.get("options") or {}).items()
                    if sub.get("required") or rng.random() < 0.4}
        return {"str": "x", "int": 1, "float": 0.5, "bool": rng.choice([True, False]), "path": str(space.root / "x"),
                "raw": "0644"}.get(kind, "x")

    def _named(self, name: str):
        rng, space = self.rng, self.space
        values = {
            "content": [space.bundle, space.root_pem, space.key_pem.decode() + space.bundle],
            "names": [[NAME], [NAME, "imap.example.test"], ["192.0.2.1"]],
            "valid_at": ["2026-06-01", "2031-01-01T00:00:00Z", "9999-12-31", "0001-01-01"],
            "expires_soon_days": [0, 30, 36500],
            "private_key_passphrase": [PASSPHRASE], "pkcs12_passphrase": [PASSPHRASE],
            "timeout": [0.5, 1.0, 3600.0], "concurrency": [1, 4, 1024],
            "address": ["127.0.70.1", "127.0.70.2"], "port": space.ports,
            "server_name": [NAME, "imap.example.test", "127.0.70.1"],
            "sha256": [space.root_sha256, space.root_sha256.upper()],
            "basename": ["root", "company-root"], "title": ["audit"], "fail_on": [["expires_soon"]],
            "ignore": [["wildcard_used"]], "label": ["mx1"],
            "result": [None, {"endpoints": []}, space.result],
            "mode": ["0600", "0640", 0o600], "owner": [None], "group": [None],
        }
        for suffix in ("_mode", "_owner", "_group"):
            if name.endswith(suffix):
                name = suffix[1:]
        if name in values:
            return rng.choice(values[name])
        return None

    def hostile(self, name: str, option: dict):
        rng, space = self.rng, self.space
        kind = option.get("type", "str")
        if name in OUTPUTS:
            return rng.choice([*space.destinations(), [space.destinations()[0]], {"a": 1}, None])
        if name in INPUTS:
            bad = rng.choice(space.unreadable() + HOSTILE_ANY[:12])
            return [bad] if kind == "list" and rng.random() < 0.7 else bad
        if name == "address":
            return rng.choice(["", "\x00", "127.0.70.1\x00evil", "a b", "\x1b", "a" * 300, 7, None, [], "::1%"])
        if kind == "list" and rng.random() < 0.5:
            element = {"type": option.get("elements", "str"), "options": option.get("options")}
            return [self.hostile(name, element) if rng.random() < 0.5 else self.valid(name, element)
                    for _item in range(rng.randint(1, 3))]
        if kind == "dict" and option.get("options") and rng.random() < 0.6:
            valid = self.valid(name, option)
            key = rng.choice(list(option["options"]))
            valid[key] = self.hostile(key, option["options"][key])
            return valid
        if kind == "int":
            return rng.choice([value for value in HOSTILE_ANY if not _non_finite(value)])
        return rng.choice(HOSTILE_ANY)


def _non_finite(value) -> bool:
    return isinstance(value, float) and not float("-inf") < value < float("inf")


@contextlib.contextmanager
def _deadline(seconds: int):
    def hang(_signum, _frame):
        raise TimeoutError(f"the module call did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(module, args: dict, check_mode: bool, diff: bool) -> tuple[dict, str]:
    """One call of the module's main(), as AnsiballZ makes it: the result and the raw output."""
    from ansible.module_utils.testing import patch_module_args

    internal = {"_ansible_check_mode": check_mode, "_ansible_diff": diff, "_ansible_verbosity": 3}
    output = io.StringIO()
    with patch_module_args(dict(args, **internal)), contextlib.redirect_stdout(output), \
            _deadline(SECONDS_PER_CALL), pytest.raises(SystemExit):
        module.main()
    text = output.getvalue()
    return json.loads(text), text


def _spec_of(module) -> dict:
    """The argument spec the module gives AnsibleModule, seen by running it once without arguments."""
    from ansible.module_utils import basic

    seen = {}
    original = basic.AnsibleModule.__init__

    def record(self, argument_spec, *args, **kwargs):
        seen.update(argument_spec)
        original(self, argument_spec, *args, **kwargs)

    basic.AnsibleModule.__init__ = record
    try:
        run(module, {}, False, False)
    finally:
        basic.AnsibleModule.__init__ = original
    return seen


@pytest.mark.parametrize("name", MODULES)
def test_every_call_ends_in_a_result_or_a_clear_failure(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    module = importlib.import_module(f"ansible_collections.mailops.tls.plugins.modules.{name}")
    space = Workspace(tmp_path)
    spec = _spec_of(module)
    rng = random.Random(f"{SEED}-{name}")
    generator = Generator(rng, space)
    problems, outcomes = [], {"ok": 0, "failed": 0, "upstream_leaks": 0}
    for call in range(CALLS):
        args = space.confined(name, generator.arguments(name, spec, hostile_share=rng.choice([0.0, 0.05, 0.15])))
        check_mode, diff = rng.random() < 0.5, rng.random() < 0.5
        where = f"call {call}: {json.dumps(args, default=repr)[:600]}"
        try:
            result, text = run(module, args, check_mode, diff)
        except Exception as exc:  # the harness's whole point: any exception is a finding
            problems.append(f"{where}\n  raised {type(exc).__name__}: {str(exc)[:300]}")
            continue
        if result.get("failed"):
            outcomes["failed"] += 1
            if os.environ.get("MAILOPS_FUZZ_VERBOSE"):
                print(name, call, str(result.get("msg"))[:160])
            if not isinstance(result.get("msg"), str) or not result["msg"].strip() or "Traceback" in result["msg"]:
                problems.append(f"{where}\n  failed without a clear message: {result.get('msg')!r:.300}")
        else:
            outcomes["ok"] += 1
        upstream = result.get("failed") and any(words in result["msg"] for words in UPSTREAM_LEAK_MESSAGES)
        for secret in (PASSPHRASE, space.secret_line, space.plain_key_line):
            if secret in text and upstream:
                outcomes["upstream_leaks"] += 1
            elif secret in text:
                at = text.index(secret)
                problems.append(f"{where}\n  printed a secret ({result.get('msg')!r:.200}): "
                                f"...{text[max(at - 100, 0):at + 40]}")
    print(name, outcomes)
    assert not problems, f"{len(problems)} of {CALLS} calls:\n" + "\n".join(problems[:15])
    # The generator reaches past the argument checks: some calls succeed, some fail (mail_tls_chain, with its
    # many options that must all be valid and its outputs, succeeds least often: 11 of 250 with this seed).
    assert outcomes["ok"] >= CALLS // 40 and outcomes["failed"] >= CALLS // 40, outcomes
