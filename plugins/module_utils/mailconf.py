# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Postfix and Dovecot as the deploy module sees them: what is configured now, which settings point the servers at
the deployed files, and the mistakes that would keep a server on other files.

Everything here reads text (``postconf`` and ``doveconf`` output, dovecot.conf) and returns plans and warnings;
the commands are run by the caller's ``run`` function (argv in, (rc, stdout, stderr) out), so the rules are
testable on captured output. Warnings are dicts with ``code`` (findings.DEPLOY_CODES), ``service`` and ``message``.
"""
from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.errors import MailTlsError
from ansible_collections.mailops.tls.plugins.module_utils.load import read_file

Run = Callable[[Sequence[str]], "tuple[int, str, str]"]

_PARAMETER = re.compile(r"^([A-Za-z0-9_]+) =(?: (.*))?$")
# postconf -P: service/type/parameter, where the service may be an address:port.
_SERVICE_PARAMETER = re.compile(r"^(\S+/\w+/[A-Za-z0-9_]+) =(?: (.*))?$")
_INCLUDE = re.compile(r"^!include(?:_try)?[ \t]+(\S+)", re.M)
# Dovecot 2.4 prints the ssl_server filter block: "  cert_file = /path".
_FILTER_SETTING = re.compile(r"^ +(\w+) = (.*)$", re.M)
DOVECOT_SETTINGS = {
    True: {"cert": "ssl_server_cert_file", "key": "ssl_server_key_file", "alt_cert": "ssl_server_alt_cert_file",
           "alt_key": "ssl_server_alt_key_file", "ca": "ssl_server_ca_file"},
    False: {"cert": "ssl_cert", "key": "ssl_key", "alt_cert": "ssl_alt_cert", "alt_key": "ssl_alt_key",
            "ca": "ssl_ca"},
}
OUTPUT_LIMIT = 2000  # characters of a failed command's output kept in a message


class CommandError(MailTlsError):
    """A command the deployment relies on failed; the message names it, its exit code and what it printed."""


def version_tuple(text: str) -> tuple[int, ...]:
    """'3.7.11' or '2.3.19.1 (9b53102964)' as (3, 7, 11) or (2, 3, 19, 1); an unreadable version as ()."""
    first = text.split()[0] if text.split() else ""
    numbers = re.match(r"\d+(?:\.\d+)*", first)
    return tuple(int(part) for part in numbers.group(0).split(".")) if numbers else ()


def at_least(version: str, minimum: tuple[int, ...]) -> bool:
    return version_tuple(version) >= minimum


def parameters(text: str, pattern: re.Pattern = _PARAMETER) -> dict[str, str]:
    """`postconf` output (one `name = value` a line) as a dict."""
    found = {}
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            found[match.group(1)] = match.group(2) or ""
    return found


def command_output(argv: Sequence[str], result: tuple[int, str, str]) -> str:
    """What a failed command said, in one line: its argv, exit code, stderr and stdout."""
    rc, out, err = result
    said = re.sub(r"\s+", " ", f"{err} {out}").strip()
    if len(said) > OUTPUT_LIMIT:
        said = said[:OUTPUT_LIMIT] + "..."
    return f"{' '.join(argv)} failed (exit {rc}): {said}"


def checked(run: Run, argv: Sequence[str]) -> str:
    """The stdout of a command that must succeed."""
    result = run(argv)
    if result[0] != 0:
        raise CommandError(command_output(argv, result))
    return result[1]


@dataclass(frozen=True)
class Postfix:
    """What Postfix has now: its version, every effective parameter, those set in main.cf, master.cf's -o
    overrides (service/type/parameter -> value) and smtpd_tls_CAfile."""

    config_dir: str
    version: str
    effective: Mapping[str, str] = field(default_factory=dict)
    explicit: Mapping[str, str] = field(default_factory=dict)
    master: Mapping[str, str] = field(default_factory=dict)
    cafile: str = ""

    @property
    def chain_files(self) -> bool:
        """Postfix 3.4 and newer read one key+chain file per key type (smtpd_tls_chain_files), swapped atomically."""
        return at_least(self.version, (3, 4))


def read_postfix(run: Run, config_dir: str, version: str = "") -> Postfix:
    """Postfix's state from postconf (version: the operator's override of mail_version)."""
    postconf = ["postconf", "-c", config_dir]
    return Postfix(
        config_dir=config_dir,
        version=version or checked(run, [*postconf, "-h", "mail_version"]).strip() or "3.4",
        effective=parameters(checked(run, postconf)),
        explicit=parameters(checked(run, [*postconf, "-n"])),
        master=parameters(checked(run, [*postconf, "-P"]), _SERVICE_PARAMETER),
        cafile=checked(run, [*postconf, "-x", "-h", "smtpd_tls_CAfile"]).strip())


def postfix_file_settings(chain_files: bool, files: Mapping[str, str], alt: bool) -> dict[str, str]:
    """The main.cf parameters naming the deployed files (files: chain_file, alt_chain_file, cert_file, key_file,
    alt_cert_file, alt_key_file)."""
    if chain_files:
        names = [files["chain_file"]] + ([files["alt_chain_file"]] if alt else [])
        return {"smtpd_tls_chain_files": ", ".join(names)}
    settings = {"smtpd_tls_cert_file": files["cert_file"], "smtpd_tls_key_file": files["key_file"]}
    if alt:
        settings.update(smtpd_tls_eccert_file=files["alt_cert_file"], smtpd_tls_eckey_file=files["alt_key_file"])
    return settings


def postfix_desired(postfix: Postfix, file_settings: Mapping[str, str], manage_tlsproxy: bool,
                    extra: Mapping[str, str]) -> dict[str, str]:
    """Every parameter the deployment sets. postscreen's TLS proxy reads tlsproxy_tls_* (default: $smtpd_tls_*):
    one set explicitly to other files would keep serving the old chain on port 25 behind postscreen."""
    desired = dict(file_settings)
    if manage_tlsproxy:
        for name in file_settings:
            proxy = "tlsproxy_" + name[len("smtpd_"):]
            if proxy in postfix.explicit and postfix.explicit[proxy] != "$" + name:
                desired[proxy] = "$" + name
    desired.update({name: str(value) for name, value in extra.items()})
    return desired


def postfix_changes(postfix: Postfix, desired: Mapping[str, str]) -> dict[str, str]:
    """The desired parameters whose current value (main.cf's own where set, else the effective) differs."""
    current = dict(postfix.effective, **postfix.explicit)
    return {name: value for name, value in desired.items() if current.get(name) != value}


def postfix_warnings(postfix: Postfix, desired: Mapping[str, str], changes: Mapping[str, str]) -> list[dict]:
    """master.cf services that override a deployed parameter, and postscreen's proxy being pointed back."""
    warnings = []
    for service_parameter, value in postfix.master.items():
        parts = service_parameter.split("/")
        if parts[-1] in desired:
            warnings.append(_warning(
                "setting_overridden", "postfix",
                f"Postfix master.cf service {'/'.join(parts[:2])} overrides main.cf with -o "
                f"{parts[-1]}={value.strip()} in {postfix.config_dir}/master.cf: that service keeps its own files; "
                "remove the -o option or point it at the deployed files"))
    proxy = {name: value for name, value in changes.items() if name.startswith("tlsproxy_")}
    if proxy:
        warnings.append(_warning(
            "tlsproxy_overridden", "postfix",
            f"postscreen's TLS proxy had its own {', '.join(proxy)} in {postfix.config_dir}/main.cf and would have "
            f"kept serving the old chain on port 25; set to {', '.join(proxy.values())}"))
    return warnings


def set_parameters(run: Run, config_dir: str, values: Mapping[str, Optional[str]]) -> None:
    """One postconf call: set each parameter, or remove it from main.cf where its value is None."""
    to_set = [f"{name}={value}" for name, value in values.items() if value is not None]
    to_remove = [name for name, value in values.items() if value is None]
    if to_set:
        checked(run, ["postconf", "-c", config_dir, "-e", *to_set])
    if to_remove:
        checked(run, ["postconf", "-c", config_dir, "-X", *to_remove])


@dataclass(frozen=True)
class Dovecot:
    """What Dovecot has now: the version whose settings are written (the installed one unless the operator names
    another), the installed version (how doveconf answers), the main file's text and its client-CA setting."""

    config_file: str
    version: str
    installed: str
    conf: str = ""
    ca: str = ""

    @property
    def is_24(self) -> bool:
        return at_least(self.version, (2, 4))

    @property
    def installed_24(self) -> bool:
        return at_least(self.installed, (2, 4))

    @property
    def settings(self) -> dict[str, str]:
        return DOVECOT_SETTINGS[self.is_24]


def read_dovecot(run: Run, config_file: str, version: str = "") -> Dovecot:
    """Dovecot's state (version: the operator's override of `dovecot --version`)."""
    installed = (checked(run, ["dovecot", "--version"]).strip() or "2.3").split()[0]
    text = read_file(config_file).decode("utf-8", "replace")
    ca = effective_settings(run, config_file, at_least(installed, (2, 4)), ["ca"]).get("ca", "")
    return Dovecot(config_file, (version or installed).split()[0], installed, text, ca)


def effective_settings(run: Run, config_file: str, is_24: bool, keys: Sequence[str]) -> dict[str, str]:
    """Dovecot's effective values of the settings named by key (cert, key, alt_cert, alt_key, ca); {} when doveconf
    fails. 2.4 keeps them in its ssl_server filter, where `doveconf -h ssl_server_cert_file` finds nothing: it
    prints that block instead (cert_file = ..., key_file = ...)."""
    settings = DOVECOT_SETTINGS[is_24]
    if is_24:
        rc, out, _err = run(["doveconf", "-c", config_file, "ssl_server"])
        found = {"ssl_server_" + name: value for name, value in _FILTER_SETTING.findall(out)}
        return {key: found.get(settings[key], "").strip() for key in keys} if rc == 0 else {}
    names = [settings[key] for key in keys]
    rc, out, _err = run(["doveconf", "-c", config_file, "-h", *names])
    lines = out.splitlines()
    return {key: (lines[number] if number < len(lines) else "").strip()
            for number, key in enumerate(keys)} if rc == 0 else {}


def dropin_included(dovecot: Dovecot, dropin: str) -> bool:
    """Whether a top-level !include or !include_try line (not indented, so not inside a section) of the main file,
    its glob resolved against the main file's directory, names the drop-in."""
    directory = os.path.dirname(dovecot.config_file)
    for pattern in _INCLUDE.findall(dovecot.conf):
        absolute = pattern if pattern.startswith("/") else f"{directory}/{pattern}"
        if fnmatch.fnmatchcase(dropin, absolute) and dropin.count("/") == absolute.count("/"):
            return True
    return False


def dovecot_expected(dovecot: Dovecot, files: Mapping[str, str], alt: bool) -> dict[str, str]:
    """The drop-in's settings (files: cert, key, alt_cert, alt_key), as doveconf prints them back: 2.3 reads the
    file's content with a '<' before its path, 2.4 takes the path."""
    prefix = "" if dovecot.is_24 else "<"
    keys = ("cert", "key", "alt_cert", "alt_key") if alt else ("cert", "key")
    return {dovecot.settings[key]: prefix + files[key] for key in keys}


def dropin_text(dovecot: Dovecot, expected: Mapping[str, str]) -> str:
    series = "version 2.4 and newer" if dovecot.is_24 else "version 2.3"
    lines = ["# Managed by the mailops.tls deploy role: edit the role's variables instead of this file.",
             f"# The TLS certificate chain and key of this Dovecot ({series}). The files hold leaf + intermediates,",
             "# and the key."]
    return "\n".join(lines + [f"{name} = {value}" for name, value in expected.items()]) + "\n"


def with_include(conf: str, dropin: str) -> str:
    """The main file with an !include_try line for the drop-in at its end."""
    return conf + ("" if conf.endswith("\n") or not conf else "\n") + f"!include_try {dropin}\n"


def dovecot_overrides(dovecot: Dovecot, expected: Mapping[str, str], effective: Mapping[str, str],
                      dropin: str) -> list[dict]:
    """Each drop-in setting whose effective value (effective: by key) differs: a file read after it sets it again."""
    by_name = {dovecot.settings[key]: value for key, value in effective.items()}
    return [_warning("setting_overridden", "dovecot",
                     f"Dovecot's effective {name} is {by_name.get(name, '') or 'empty'}, not {value} as written to "
                     f"{dropin}: a file read after the drop-in (or a section) sets it again; remove that setting, or "
                     "make the drop-in the last file read")
            for name, value in expected.items() if by_name.get(name, "") != value]


def cafile_warning(service: str, setting: str, path: str, subjects: Sequence[str]) -> dict:
    """Intermediates of the deployed chain found in a client-CA file."""
    where = "smtpd_tls_CAfile" if service == "postfix" else f"Dovecot's {setting}"
    return _warning("intermediate_in_cafile", service,
                    f"{where} ({path}) holds the intermediate(s) {', '.join(subjects)} of the deployed chain. That "
                    "setting is for client certificates, and clients never receive it: the deployed chain files "
                    f"already send the intermediates, so remove them from {setting} (and never rely on it to complete "
                    "a chain)")


def _warning(code: str, service: str, message: str) -> dict:
    return {"code": code, "service": service, "message": message}
