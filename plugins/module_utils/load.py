# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Bytes to certificates and private keys: PEM with any surrounding text, DER, PKCS#7 and PKCS#12.

Damage never stops the load: each damaged part becomes a parse_error finding naming the file, the block
and the reason, and every intact certificate is still returned. Passphrases never appear in messages.
"""
from __future__ import annotations

import base64
import binascii
import functools
import itertools
import os
import re
import stat
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from ansible_collections.mailops.tls.plugins.module_utils import certs as certlib
from ansible_collections.mailops.tls.plugins.module_utils import der as derlib
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.findings import Finding, finding

# cryptography's serialization, PKCS#7 and PKCS#12 code is imported where keys and envelopes are read: it adds
# about 30 ms to the start of every module run, and most runs read plain PEM certificates only.

_BEGIN = b"-----BEGIN "
_END = b"-----END "
_DASHES = b"-----"
_LABEL = re.compile(rb"[A-Z0-9 #]+")
_WHITESPACE = b" \t\r\n\v\f"
# Decodes what base64.b64decode(validate=True) accepts and raises for anything it would not (strict_mode: 3.11).
_strict_base64 = (functools.partial(binascii.a2b_base64, strict_mode=True) if sys.version_info >= (3, 11)
                  else functools.partial(base64.b64decode, validate=True))
_CERTIFICATE_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_PKCS7_LABELS = {b"PKCS7", b"CMS", b"PKCS #7 SIGNED DATA"}
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}
_IGNORED_LABELS = {b"EC PARAMETERS", b"DH PARAMETERS", b"X509 CRL", b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST",
                   b"PUBLIC KEY"}
# The most one input file may hold: a pool of 10,000 certificates is about 15 MiB of PEM, a system CA bundle 0.2 MiB.
MAX_INPUT_BYTES = 64 * 1024 * 1024
CERTIFICATE_SUFFIXES = (".pem", ".crt", ".cer", ".der", ".p7b", ".p7c", ".p12", ".pfx", ".ca-bundle", ".0")


def located(source: str, position: Optional[int] = None, unit: str = "block") -> str:
    """Where something was read, as every message names it: 'block 2 of fullchain.pem', 'certificate 2 of the chain
    sent by ...', or the source alone when it has no positions."""
    return f"{unit} {position} of {source}" if position else source


class LoadedCertificate(NamedTuple):
    """One certificate as DER, with where it came from (file and 1-based block number).

    A named tuple, not a frozen dataclass: a pool of thousands makes one per certificate, a named tuple is made
    about twice as fast, and frozen dataclass records were about a quarter of reading a plain PEM pool."""

    der: bytes
    source: str
    block: Optional[int]  # None: the source is one certificate ("the root of the chain to write")
    unit: str = "block"  # what a position is called: a block of a file, a certificate of a served chain
    # Where the certificate was read first, when it is analysed again in a chain built from the inputs: the
    # location of the input it came from, so messages about it point at what to fix.
    origin: str = ""

    @property
    def location(self) -> str:
        here = located(self.source, self.block, self.unit)
        return f"{here}, from {self.origin}" if self.origin else here


@dataclass(frozen=True)
class LoadedKey:
    """A private key and where it came from; the key object is never printed."""

    key: object = field(repr=False)
    source: str = ""


@dataclass(frozen=True)
class Loaded:
    certificates: tuple[LoadedCertificate, ...] = ()
    keys: tuple[LoadedKey, ...] = ()
    findings: tuple[Finding, ...] = ()

    def __add__(self, other: Loaded) -> Loaded:
        return Loaded(self.certificates + other.certificates, self.keys + other.keys,
                      self.findings + other.findings)


def _parse_error(source: str, block: Optional[int], reason: str, severity: Optional[str] = None) -> Finding:
    return finding("parse_error", f"{located(source, block)} cannot be read: {reason}", severity=severity)


def load_bytes(data: bytes, source: str, passphrases: Sequence[Optional[bytes]] = (), check: bool = True) -> Loaded:
    """Read every certificate and private key in data. check=False skips the full parse of certificates
    (pools: they are parsed when they become candidates)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"-----BEGIN " in data:
        return _load_pem(data, source, passphrases, check)
    if not data.strip():
        return Loaded(findings=(_parse_error(source, None, "it is empty: it holds no certificate or key; write the "
                                             "certificate (or key) into it again"),))
    return _load_binary(data, source, passphrases, check)


def _load_pem(data: bytes, source: str, passphrases, check: bool) -> Loaded:
    if not check:
        plain = _plain_certificates(data, source)
        if plain is not None:
            return plain
    certificates: list[LoadedCertificate] = []
    keys: list[LoadedKey] = []
    findings: list[Finding] = []
    for number, (label, body, end_label) in enumerate(_pem_blocks(data), start=1):
        if end_label is None:
            findings.append(_parse_error(source, number, f"the {label.decode()} block is truncated: it has no "
                                         "END line; copy the whole block again"))
            continue
        if end_label != label:
            findings.append(_parse_error(source, number, f"BEGIN {label.decode()} ends with END "
                                         f"{certlib.printable(end_label.decode('ascii', 'backslashreplace'))}"))
            continue
        if label in _KEY_LABELS:
            loaded = _load_pem_key(_canonical_pem(label, body), source, number, passphrases)
            keys.extend(loaded.keys)
            findings.extend(loaded.findings)
            continue
        if label in _IGNORED_LABELS:
            findings.append(finding("ignored_block", f"{located(source, number)} is a {label.decode()} and was "
                                    "skipped"))
            continue
        try:
            der = _base64(body)
        except ValueError as exc:
            findings.append(_parse_error(source, number, str(exc)))
            continue
        if label in _CERTIFICATE_LABELS:
            result = _certificate(der, source, number, check, trusted=label == b"TRUSTED CERTIFICATE")
        elif label in _PKCS7_LABELS:
            result = _pkcs7(der, source, number)
        else:
            result = Loaded(findings=(finding("ignored_block", f"{located(source, number)} is a "
                                              f"{label.decode()} and was skipped"),))
        certificates.extend(result.certificates)
        findings.extend(result.findings)
    return Loaded(tuple(certificates), tuple(keys), tuple(findings))


def _plain_certificates(data: bytes, source: str) -> Optional[Loaded]:
    """What _load_pem returns for a file of nothing but intact CERTIFICATE blocks (with any text between them
    that has no '-----'), read with a few bulk operations; None for anything else, which the block-by-block
    reader then explains. A CA bundle or pool of thousands of certificates is read this way."""
    parts = data.split(_DASHES)
    count = len(parts) // 4
    if (not count or len(parts) != 4 * count + 1 or parts[1::4].count(b"BEGIN CERTIFICATE") != count
            or parts[3::4].count(b"END CERTIFICATE") != count):
        return None
    bodies = parts[2::4]
    # Strict decoding: any character besides base64 and the whitespace removed (headers, damage) raises.
    # map() over C functions: no Python frame per certificate.
    try:  # the usual LF-only lines first
        ders = list(map(_strict_base64, map(bytes.replace, bodies, itertools.repeat(b"\n"), itertools.repeat(b""))))
    except (binascii.Error, ValueError):
        try:
            ders = list(map(_strict_base64, map(bytes.translate, bodies, itertools.repeat(None),
                                                itertools.repeat(_WHITESPACE))))
        except (binascii.Error, ValueError):
            return None  # the block reader explains what is wrong
    return Loaded(tuple(map(LoadedCertificate, ders, itertools.repeat(source), itertools.count(1))))


def _pem_blocks(data: bytes):
    """Yield (label, body, END label or None when the block is truncated) for each PEM block in data.

    Plain find() instead of one regular expression over the file: a CA bundle of thousands of
    certificates is scanned at C speed. Text that only looks like a BEGIN line is surrounding text.
    Linear in the size of data: the next END line found is kept while later blocks start before it, so
    thousands of blocks without an END line do not each search the rest of the data again."""
    position = 0
    end = end_label_end = -1  # the END line after the current block, as last found
    searched_to = 0  # no END line starts at or after this position when end < 0
    while True:
        begin = data.find(_BEGIN, position)
        if begin < 0:
            return
        label_end = data.find(_DASHES, begin + len(_BEGIN))
        label = data[begin + len(_BEGIN):label_end]
        if label_end < 0 or not _LABEL.fullmatch(label):
            position = begin + len(_BEGIN)
            continue
        body_start = label_end + len(_DASHES)
        if end < body_start and (end >= 0 or searched_to <= body_start):
            end = data.find(_END, body_start)
            end_label_end = data.find(_DASHES, end + len(_END)) if end >= 0 else -1
            searched_to = len(data) if end < 0 else end
        following = data.find(_BEGIN, body_start)
        if end < 0 or end_label_end < 0 or 0 <= following < end:
            stop = following if following >= 0 else len(data)
            yield label, data[body_start:stop], None
            position = stop
            continue
        yield label, data[body_start:end], data[end + len(_END):end_label_end]
        position = end_label_end + len(_DASHES)


def _base64(body: bytes) -> bytes:
    payload = body.translate(None, _WHITESPACE)
    if b":" in payload:  # RFC 1421 headers such as Proc-Type; rare outside legacy keys
        lines = [line.strip() for line in body.replace(b"\r", b"").split(b"\n")]
        payload = b"".join(line for line in lines if line and b":" not in line)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"its base64 text is damaged ({exc}); copy the block again") from None


def _canonical_pem(label: bytes, body: bytes) -> bytes:
    """The block as every cryptography version reads it: LF line ends, no indentation or trailing blanks,
    headers (Proc-Type, DEK-Info) kept, base64 in 64-character lines."""
    lines = [line.strip() for line in body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")]
    headers = b"".join(line + b"\n" for line in lines if b":" in line)
    payload = b"".join(line for line in lines if line and b":" not in line)
    wrapped = b"".join(payload[i:i + 64] + b"\n" for i in range(0, len(payload), 64))
    return (b"-----BEGIN " + label + b"-----\n" + (headers + b"\n" if headers else b"") + wrapped
            + b"-----END " + label + b"-----\n")


def _certificate(der: bytes, source: str, block: int, check: bool, trusted: bool = False) -> Loaded:
    try:
        length = derlib.element_length(der) if trusted else len(der)
        der = der[:length]
        if check:
            derlib.parse_certificate(der)
            certlib.load_der(der)
    except ValueError as exc:
        return Loaded(findings=(_parse_error(source, block, f"the certificate is damaged ({exc}); "
                                             "get a fresh copy from the CA"),))
    return Loaded(certificates=(LoadedCertificate(der, source, block),))


def _pkcs7(der: bytes, source: str, block: int) -> Loaded:
    try:
        certs = _pkcs7_certificates(der)
    except ValueError as exc:
        return Loaded(findings=(_parse_error(source, block, f"the PKCS#7 structure is damaged or holds no "
                                             f"certificates ({exc})"),))
    return Loaded(certificates=tuple(LoadedCertificate(_der(cert), source, block) for cert in certs))


def _pkcs7_certificates(der: bytes) -> list:
    """The certificates of a PKCS#7 SignedData; ValueError for damage, another PKCS#7 content type (cryptography:
    UnsupportedAlgorithm), a certificate with an invalid version (InvalidVersion) or, with cryptography 36, some
    damage OpenSSL reports without a reason (InternalError)."""
    from cryptography import x509
    from cryptography.exceptions import InternalError, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import pkcs7

    try:
        return pkcs7.load_der_pkcs7_certificates(der)
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"it is not a certificate bundle (SignedData): {exc}") from None
    except (InternalError, x509.InvalidVersion) as exc:
        raise ValueError(str(exc)) from None


def _der(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.DER)


def _load_pem_key(block: bytes, source: str, number: int, passphrases) -> Loaded:
    from cryptography.hazmat.primitives import serialization

    key, reason = _try_passphrases(lambda pw: serialization.load_pem_private_key(block, pw), passphrases)
    if key is None:
        return Loaded(findings=(_parse_error(source, number, reason),))
    return Loaded(keys=(LoadedKey(key, located(source, number)),))


_ENCRYPTED = "the private key is encrypted: give its passphrase (private_key_passphrase)"
_WRONG_PASSPHRASE = "the passphrase given does not decrypt the private key"


def _try_passphrases(loader, passphrases):
    """Return (key, None) or (None, reason), trying no passphrase and then, if the key is encrypted, each given one."""
    try:
        return loader(None), None
    except TypeError:
        pass  # cryptography's way of saying the key is encrypted
    except ValueError as exc:
        return None, f"the private key is damaged or in an unsupported format ({_no_secrets(exc)})"
    except Exception as exc:  # cryptography raises backend-specific errors for odd keys
        return None, f"the private key cannot be read ({type(exc).__name__})"
    reason = _ENCRYPTED
    for passphrase in [p for p in passphrases if p]:
        try:
            return loader(passphrase), None
        except (TypeError, ValueError):
            reason = _WRONG_PASSPHRASE
        except Exception as exc:  # never the exception text: it could echo the passphrase
            reason = f"the private key cannot be read ({type(exc).__name__})"
    return None, reason


def _no_secrets(exc: Exception) -> str:
    return str(exc).split("\n", maxsplit=1)[0][:200]


def _load_binary(data: bytes, source: str, passphrases, check: bool) -> Loaded:
    from cryptography.hazmat.primitives import serialization

    reasons = []
    try:
        derlib.parse_certificate(data)
        return _certificate(data, source, 1, check)
    except ValueError as exc:
        reasons.append(f"not a DER certificate ({exc})")
    try:
        return Loaded(certificates=tuple(LoadedCertificate(_der(c), source, n)
                                         for n, c in enumerate(_pkcs7_certificates(data), 1)))
    except ValueError:
        reasons.append("not PKCS#7")
    pkcs12_result = _pkcs12(data, source, passphrases)
    if pkcs12_result is not None:
        return pkcs12_result
    if _looks_like_pkcs12(data):
        return Loaded(findings=(_parse_error(source, None, "it is a PKCS#12 file that cannot be opened: its passphrase "
                                             "is missing or wrong (give pkcs12_passphrase), or it is damaged"),))
    key, key_reason = _try_passphrases(lambda pw: serialization.load_der_private_key(data, pw), passphrases)
    if key is not None:
        return Loaded(keys=(LoadedKey(key, source),))
    if key_reason in (_ENCRYPTED, _WRONG_PASSPHRASE):
        return Loaded(findings=(_parse_error(source, None, key_reason),))
    reasons.append("not PKCS#12 (or its passphrase is missing or wrong: give pkcs12_passphrase)")
    return Loaded(findings=(_parse_error(source, None, "it is neither PEM nor DER, PKCS#7, PKCS#12 or a DER private "
                                         "key: " + "; ".join(reasons)),))


def _pkcs12(data: bytes, source: str, passphrases) -> Optional[Loaded]:
    from cryptography.hazmat.primitives.serialization import pkcs12

    for passphrase in (None, b"", *[p for p in passphrases if p]):
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase)
        except (ValueError, TypeError):
            continue
        certs = ([cert] if cert is not None else []) + list(extra or [])
        return Loaded(certificates=tuple(LoadedCertificate(_der(c), source, n) for n, c in enumerate(certs, 1)),
                      keys=(LoadedKey(key, source),) if key is not None else ())
    return None


def _looks_like_pkcs12(data: bytes) -> bool:
    """True when data starts like a PFX (RFC 7292): SEQUENCE { version INTEGER 3, authSafe ContentInfo, ... }."""
    try:
        tag, start, end = derlib.read_tlv(data, 0)
        parts = list(derlib.children(data, start, end)) if tag == derlib.SEQUENCE else []
    except ValueError:
        return False
    return (len(parts) >= 2 and parts[0][0] == derlib.INTEGER and data[parts[0][1]:parts[0][2]] == b"\x03"
            and parts[1][0] == derlib.SEQUENCE)


def may_hold_private_key(text: str) -> bool:
    """Whether option text may hold a private key: a PEM key block, or text that is not PEM at all."""
    return "PRIVATE KEY" in text or _BEGIN.decode() not in text


def read_file(path: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """Read a regular file the operator named, of at most limit bytes, or raise InputError saying why it cannot be
    read. Opened without blocking, so a FIFO is refused instead of waiting for a writer forever."""
    if "\x00" in path:
        raise InputError(f"{certlib.printable(path)} contains a NUL character, which no file name can hold")
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist: check the path (on the managed host, not the controller)") from None
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}") from None
    try:
        mode = os.fstat(handle).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{path} is a directory; name a file, or use pool/roots, which take directories")
        if not stat.S_ISREG(mode):
            raise InputError(f"{path} is {_file_kind(mode)}, not a regular file: name a file of certificates or keys")
        data = _read_up_to(handle, limit + 1)
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(handle)
    if len(data) > limit:
        raise InputError(f"{path} is larger than {limit / (1024 * 1024):g} MiB, the most a certificate, key or pool "
                         "file may hold: split it, or name the directory of its certificates as pool")
    return data


def _read_up_to(handle: int, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = os.read(handle, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "a special file")


HASHED_NAME = re.compile(r"^[0-9a-f]{8}\.\d+$")
"""How OpenSSL names the certificates of a hashed directory (c_rehash, SSL_CERT_DIR): subject hash and a number."""


def files_in(path: str) -> list[str]:
    """The path itself, or the certificate files of a directory (sorted, each real file once)."""
    if not os.path.isdir(path):
        return [path]
    seen = set()
    files = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        real = os.path.realpath(full)
        if real in seen or not os.path.isfile(real):
            continue
        if name.lower().endswith(CERTIFICATE_SUFFIXES) or HASHED_NAME.match(name):
            seen.add(real)
            files.append(full)
    return files


def load_paths(paths: Iterable[str], passphrases: Sequence[Optional[bytes]] = (), check: bool = True) -> Loaded:
    """Load every file named, expanding directories."""
    result = Loaded()
    for path in paths:
        for name in files_in(path):
            result = result + load_bytes(read_file(name), name, passphrases, check)
    return result
