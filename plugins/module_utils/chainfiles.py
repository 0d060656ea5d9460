# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The files mail_tls_chain writes: which ones, their bytes, their modes, and what changes, as facts.

Pure logic but for telling whether two output paths name one file: the module reads the current files and
writes them (through fileset). Key material appears only in the
bytes of the files planned here; listings (the diff) name a key by type, size and SPKI fingerprint.
"""
from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils import certs as certlib
from ansible_collections.mailops.tls.plugins.module_utils import fileset
from ansible_collections.mailops.tls.plugins.module_utils.analysis import (
    Analysis,
    Request,
    analyze,
    loaded_certificates,
    loaded_root,
)
from ansible_collections.mailops.tls.plugins.module_utils.deps import CRYPTOGRAPHY_IMPORT_ERROR
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.findings import Finding
from ansible_collections.mailops.tls.plugins.module_utils.load import Loaded, LoadedKey, load_bytes
from ansible_collections.mailops.tls.plugins.module_utils.module_args import request_from_params
from ansible_collections.mailops.tls.plugins.module_utils.policy import Verdict, evaluate, failure_message

if CRYPTOGRAPHY_IMPORT_ERROR is None:
    from cryptography.hazmat.primitives import serialization

# Output kinds in the order they are written and reported.
KINDS = ("fullchain", "chain", "combined", "key", "root")
KEY_KINDS = frozenset({"combined", "key"})
DEFAULT_MODES = {kind: 0o600 if kind in KEY_KINDS else 0o644 for kind in KINDS}
# Per-chain options: what one chain is made of (the rest of the chain inputs are shared by every chain).
CHAIN_OPTIONS = ("path", "content", "private_key_path", "private_key_passphrase", "pkcs12_passphrase")
OUTPUT_OPTIONS = tuple(f"{kind}_{attribute}" for kind in KINDS for attribute in ("path", "owner", "group", "mode"))
PATH_OPTIONS = tuple(f"{kind}_path" for kind in KINDS)


@dataclass(frozen=True)
class Output:
    """One file to write: what it holds (kind), where, and its owner, group and mode."""

    kind: str
    path: str
    owner: Optional[str] = None
    group: Optional[str] = None
    mode: int = 0o644

    @property
    def holds_key(self) -> bool:
        return self.kind in KEY_KINDS


@dataclass(frozen=True)
class PlannedFile:
    """An output and the exact bytes it must hold."""

    output: Output
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ChainPlan:
    """One chain: its analysis, the policy verdict on what would be deployed, and the files (once allowed)."""

    label: str
    analysis: Analysis
    verdict: Verdict
    outputs: tuple[Output, ...]
    files: tuple[PlannedFile, ...] = ()

    def as_dict(self) -> dict:
        return dict(self.analysis.as_dict(), violations=[f.as_dict() for f in self.verdict.violations],
                    waived=[f.as_dict() for f in self.verdict.waived])


@dataclass(frozen=True)
class FileState:
    """A file as it is on disk; data is None when there is no file."""

    data: Optional[bytes] = field(default=None, repr=False)
    uid: Optional[int] = None
    gid: Optional[int] = None
    mode: Optional[int] = None

    @property
    def exists(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class Change:
    """What writing one planned file changes: the content, and each attribute as 'mode 0644 -> 0600'."""

    content: bool
    attributes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.content or bool(self.attributes)

    def describe(self) -> list[str]:
        return (["content"] if self.content else []) + list(self.attributes)


def parse_mode(value, option: str) -> int:
    """A mode as Ansible's file module takes it: an octal string ('0600') or the number YAML makes of 0600."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(f"{option} must be an octal mode such as '0600', not {value!r}")
    if isinstance(value, int):
        mode = value
    else:
        text = value.strip().lower()
        digits = text[2:] if text.startswith("0o") else text
        if not digits or any(ch not in "01234567" for ch in digits):
            raise InputError(f"{option} {value!r} is not an octal mode: give it quoted, such as '0600' (symbolic "
                             "modes like u=rw are not supported)")
        mode = int(digits, 8)
    if mode < 0 or mode & ~0o777:
        hint = (f" (YAML read the unquoted {value} as a decimal number, which is octal {mode:o}): quote it, "
                f"such as '0{value}'" if isinstance(value, int) and 0 <= value <= 777 and
                all(ch in "01234567" for ch in str(value)) else ": give a mode such as '0644'")
        raise InputError(f"{option} {value!r} sets bits other than read, write and execute{hint}")
    return mode


def outputs_from_params(params: Mapping, where: str = "") -> tuple[Output, ...]:
    """The outputs named in params (<kind>_path, _owner, _group, _mode), with modes checked."""
    outputs = []
    for kind in KINDS:
        path = params.get(f"{kind}_path")
        option = f"{where}{kind}_mode"
        if not path:
            for attribute in ("owner", "group", "mode"):
                if params.get(f"{kind}_{attribute}") is not None:
                    raise InputError(f"{where}{kind}_{attribute} is set but {where}{kind}_path is not: name the "
                                     "file, or drop the option")
            continue
        if "\x00" in path:
            raise InputError(f"{where}{kind}_path {certlib.printable(path)} contains a NUL character, which no file "
                             "name can hold")
        given_mode = params.get(f"{kind}_mode")
        mode = DEFAULT_MODES[kind] if given_mode is None else parse_mode(given_mode, option)
        output = Output(kind, path, params.get(f"{kind}_owner"), params.get(f"{kind}_group"), mode)
        check_mode(output, option)
        for attribute, lookup in (("owner", user_id), ("group", group_id)):
            try:
                lookup(params.get(f"{kind}_{attribute}"))
            except InputError as exc:
                raise InputError(f"{where}{kind}_{attribute}: {exc}") from None
        outputs.append(output)
    return tuple(outputs)


def check_mode(output: Output, option: str) -> None:
    """Refuse a mode that gives other users any access to a file holding a private key."""
    if output.holds_key and output.mode & 0o007:
        raise InputError(f"{option} {output.mode:04o} would let every user on the host read or change the private "
                         f"key in {output.path}: use '0600', or '0640' with a group that the mail service runs as")


def chain_params(params: Mapping) -> list[tuple[str, str, dict]]:
    """(label, option prefix, options) for each chain: the top-level options, or each chains entry over the
    shared ones."""
    if not params.get("chains"):
        return [("the chain to write", "", dict(params))]
    per_chain = (*CHAIN_OPTIONS, *OUTPUT_OPTIONS)
    shared = {name: value for name, value in params.items() if name not in per_chain}
    return [(f"chains[{number}]", f"chains[{number}].", dict(shared, **{name: entry.get(name) for name in per_chain}))
            for number, entry in enumerate(params["chains"])]


def plan(params: Mapping) -> tuple[ChainPlan, ...]:
    """Analyse every chain, judge what would be deployed, and render the files of chains allowed to be written.

    A chain is allowed when its verdict passes or params['force'] is set; when any chain is refused, no chain
    is rendered, so nothing is written.
    """
    definitions = chain_params(params)
    outputs = [outputs_from_params(options, prefix) for _label, prefix, options in definitions]
    fileset.check_distinct([(f"{output.kind} output", output.path)
                            for chain_outputs in outputs for output in chain_outputs])
    plans, requests = [], []
    for (label, _prefix, options), chain_outputs in zip(definitions, outputs):
        request = request_from_params(options)
        analysis = analyze(request)
        verdict = evaluate(blocking_findings(analysis, request), params.get("fail_on") or (),
                           params.get("ignore") or ())
        plans.append(ChainPlan(label, analysis, verdict, chain_outputs))
        requests.append(request)
    if not params.get("force") and any(not p.verdict.passed for p in plans):
        return tuple(plans)
    return tuple(replace(p, files=tuple(PlannedFile(o, render(o, p.analysis, r.keys)) for o in p.outputs))
                 for p, r in zip(plans, requests))


def refusal_message(plans: Sequence[ChainPlan]) -> str:
    """Each refused chain's violations, one per line, and how to proceed."""
    parts = [failure_message(p.verdict.violations, p.label) for p in plans if not p.verdict.passed]
    return "\n".join(parts) + ("\nNothing was written: fix the inputs, waive codes with ignore, or set force: true "
                               "to write anyway")


def blocking_findings(analysis: Analysis, request: Request) -> tuple[Finding, ...]:
    """Findings about what the files would hold, plus the input's parse errors.

    The chain to write is analysed again as a server would serve it: in serving order, without the pool,
    with the root (if any) available only as a candidate issuer. So findings the writing fixes (wrong
    order, intermediates taken from the pool, a root or unrelated certificates in the bundle, duplicates)
    do not block, and everything about the deployed chain (incomplete, untrusted, expired, names, key) does.
    """
    if not analysis.chain:
        return analysis.findings
    # Messages name each certificate by its place in what would be written and by the input it came from.
    root = loaded_root(analysis.root, "the root of the chain to write") if analysis.root else Loaded()
    deployed = analyze(Request(
        certificates=loaded_certificates([entry.der for entry in analysis.chain], "the chain to write",
                                         [entry.source for entry in analysis.chain]),
        pool=root, roots=request.roots, system_roots=request.system_roots, keys=request.keys,
        names=request.names, valid_at=analysis.valid_at, expiry=request.expiry, rules=request.rules))
    parse_errors = tuple(f for f in analysis.findings if f.code == "parse_error")
    return parse_errors + deployed.findings


def matched_key(analysis: Analysis, keys: Sequence[LoadedKey]) -> Optional[LoadedKey]:
    """The first key that belongs to the leaf, or None."""
    if not analysis.chain:
        return None
    leaf = certlib.load_der(analysis.chain[0].der)
    return next((key for key in keys if certlib.key_matches(key.key, leaf)), None)


def pem_certificate(der: bytes) -> bytes:
    """One certificate as PEM, 64 base64 characters a line, as OpenSSL writes it."""
    text = base64.b64encode(der)
    lines = [text[start:start + 64] for start in range(0, len(text), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def pem_key(key: LoadedKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM, which Postfix and Dovecot read without a prompt."""
    return key.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


def render(output: Output, analysis: Analysis, keys: Sequence[LoadedKey]) -> bytes:
    """The bytes of one output; raises InputError when the root or the leaf's key it needs is not there."""
    if not analysis.chain:
        raise InputError(f"{output.path} cannot be written: no certificate was found in the input")
    chain = b"".join(pem_certificate(entry.der) for entry in analysis.chain)
    if output.kind == "fullchain":
        return chain
    if output.kind == "chain":
        return b"".join(pem_certificate(entry.der) for entry in analysis.chain[1:])
    if output.kind == "root":
        if analysis.root is None:
            raise InputError(f"{output.path} cannot be written: the chain of '{analysis.chain[0].info.subject}' "
                             "ends in no root (it is incomplete); give the missing intermediates and the root in "
                             "pool or roots, or drop root_path")
        return pem_certificate(analysis.root.der)
    key = matched_key(analysis, keys)
    if key is None:
        raise InputError(f"{output.path} cannot be written: it needs the private key of "
                         f"'{analysis.chain[0].info.subject}', and no key given belongs to it; give it in "
                         "private_key_path (with private_key_passphrase if it is encrypted)")
    return pem_key(key) + (chain if output.kind == "combined" else b"")


def user_id(owner: Optional[str]) -> Optional[int]:
    """The uid of a user name or number, or None when no owner is wanted."""
    if owner is None:
        return None
    try:
        return int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
    except (KeyError, ValueError):  # ValueError: a NUL in the name, or digits int() does not read (Unicode ones)
        raise InputError(f"owner {owner!r} is not a user on this host") from None


def group_id(group: Optional[str]) -> Optional[int]:
    """The gid of a group name or number, or None when no group is wanted."""
    if group is None:
        return None
    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except (KeyError, ValueError):  # ValueError: a NUL in the name, or digits int() does not read (Unicode ones)
        raise InputError(f"group {group!r} is not a group on this host") from None


def compare(planned: PlannedFile, current: FileState) -> Change:
    """What writing planned over current changes (an absent file changes in content only)."""
    if not current.exists:
        return Change(True)
    output, attributes = planned.output, []
    uid, gid = user_id(output.owner), group_id(output.group)
    if uid is not None and uid != current.uid:
        attributes.append(f"owner {_user_name(current.uid)} -> {_user_name(uid)}")
    if gid is not None and gid != current.gid:
        attributes.append(f"group {_group_name(current.gid)} -> {_group_name(gid)}")
    if current.mode is not None and current.mode & 0o7777 != output.mode:
        attributes.append(f"mode {current.mode & 0o7777:04o} -> {output.mode:04o}")
    return Change(current.data != planned.data, tuple(attributes))


def expected_state(planned: PlannedFile, current: FileState, default_uid: int, default_gid: int) -> FileState:
    """The state after writing: given owner, group and mode, else the current ones, else the defaults."""
    output = planned.output
    uid = user_id(output.owner)
    gid = group_id(output.group)
    return FileState(planned.data, uid if uid is not None else current.uid if current.exists else default_uid,
                     gid if gid is not None else current.gid if current.exists else default_gid, output.mode)


def listing(state: FileState, source: str, passphrases: Sequence[bytes] = ()) -> str:
    """What a file holds, for a diff: attributes, each key by type, size and SPKI SHA-256, each certificate by
    position, subject, validity and SHA-256. Never key material. An absent file lists as ''."""
    if not state.exists:
        return ""
    lines = [f"owner={_user_name(state.uid)} group={_group_name(state.gid)} mode="
             + (f"{state.mode & 0o7777:04o}" if state.mode is not None else "?")]
    if not (state.data or b"").strip():
        return "\n".join((*lines, "(empty)")) + "\n"
    loaded = load_bytes(state.data or b"", source, passphrases)
    for key in loaded.keys:
        lines.append(describe_key(key))
    for position, certificate in enumerate(loaded.certificates, 1):
        lines.extend(_describe_certificate(position, certificate.der))
    lines.extend(f"{problem.code}: {problem.message}" for problem in loaded.findings)
    return "\n".join(lines) + "\n"


def describe_key(key: LoadedKey) -> str:
    """A private key as facts only: type, size and the SHA-256 of its public key."""
    public = key.key.public_key()
    key_type, size, curve = certlib.key_description(public)
    spki = certlib.colon_hex(hashlib.sha256(certlib.spki_of_public_key(public)).digest())
    return f"private key ({key_type}{f' {curve}' if curve else ''}, {size} bits, SPKI SHA-256 {spki})"


def _describe_certificate(position: int, der: bytes) -> list[str]:
    try:
        cert = certlib.load_der(der)
        subject = certlib.read_name(cert, "subject").rfc4514_string()
    except ValueError as exc:
        return [f"[{position}] damaged certificate ({exc}), SHA-256 {certlib.sha256_hex(der)}"]
    return [f"[{position}] subject: {subject}",
            f"    valid: {certlib.not_before(cert):%Y-%m-%dT%H:%M:%SZ} to {certlib.not_after(cert):%Y-%m-%dT%H:%M:%SZ}",
            f"    SHA-256: {certlib.sha256_hex(der)}"]


def _user_name(uid: Optional[int]) -> str:
    if uid is None:
        return "?"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: Optional[int]) -> str:
    if gid is None:
        return "?"
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def read_state(path: str) -> FileState:
    """The file a resolved output path names, as it is now (no file: an empty state)."""
    found = fileset.existing(path)
    status = found.status
    if status is None:
        return FileState()
    return FileState(found.data, status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode))


def default_owner(path: str) -> tuple[int, int]:
    """Who owns a new file: the module's user, and the directory's group when it is set-group-ID."""
    try:
        directory = os.stat(os.path.dirname(path))
    except FileNotFoundError:  # check mode: a directory an earlier task creates
        return os.geteuid(), os.getegid()
    return os.geteuid(), directory.st_gid if directory.st_mode & stat.S_ISGID else os.getegid()


def new_file(planned: PlannedFile, target: str, current: FileState, change: Change,
             backup: bool) -> fileset.Write:
    """The write that makes target what planned asks: its bytes, owner, group and mode."""
    expected = expected_state(planned, current, *default_owner(target))
    return fileset.Write(target, planned.data, planned.output.mode, expected.uid, expected.gid,
                         backup and current.exists and change.content)


def keep_selinux_context(module):
    """A new file's SELinux context: the one of the file it replaces, else the policy's default for its path."""
    def prepare(new: str, destination: str) -> None:
        if module.selinux_enabled():
            context = (module.selinux_context(destination) if os.path.exists(destination)
                       else module.selinux_default_context(destination))
            module.set_context_if_different(new, context, False)
    return prepare
