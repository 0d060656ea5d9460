# SPDX-License-Identifier: GPL-3.0-or-later
"""Generate test PKIs at test time: roots, intermediates, cross-signs and leaves of every key type.

One builder for the unit tests, the probe tests, the lab and the demo, so every test speaks of
certificates the same way. Nothing here is part of the collection.
"""
from __future__ import annotations

import datetime
import ipaddress
import random
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


def new_key(key_type: str = "ecdsa", size: int = 2048):
    """Return a private key of key_type: rsa, ecdsa (P-256), ecdsa384, ed25519 or ed448."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ecdsa384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type}")


def name(common_name: Optional[str], organization: str = "mailops test") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)]
    if common_name is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


@dataclass
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: object
    children: list = field(default_factory=list)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def key_pem(self, passphrase: Optional[bytes] = None, fmt: str = "pkcs8") -> bytes:
        """The private key as PEM: pkcs8, or traditional (PKCS#1 for RSA, SEC1 for EC)."""
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        private_format = (serialization.PrivateFormat.PKCS8 if fmt == "pkcs8"
                          else serialization.PrivateFormat.TraditionalOpenSSL)
        return self.key.private_bytes(serialization.Encoding.PEM, private_format, encryption)

    @property
    def subject(self) -> x509.Name:
        return self.cert.subject

    def issue(self, common_name: Optional[str] = None, *, ca: bool = False, key=None, key_type: str = "ecdsa",
              **options) -> Issued:
        """Issue a child certificate signed by this one (see build_cert for options)."""
        child_key = key or new_key(key_type)
        subject = options.pop("subject", None)  # an empty Name (no attributes) is a subject too
        cert = build_cert(subject=name(common_name) if subject is None else subject, public_key=child_key.public_key(),
                          issuer=self, ca=ca, **options)
        issued = Issued(cert, child_key)
        self.children.append(issued)
        return issued

    def leaf(self, *dns_names: str, **options) -> Issued:
        """Issue a server certificate for dns_names (first one is also the CN unless common_name is given)."""
        common_name = options.pop("common_name", dns_names[0] if dns_names else None)
        return self.issue(common_name, ca=False, dns_names=dns_names, **options)


def build_cert(*, subject: x509.Name, public_key, issuer: Optional[Issued], ca: bool,
               dns_names: Sequence[str] = (), ip_addresses: Sequence[str] = (),
               not_before: Optional[datetime.datetime] = None, not_after: Optional[datetime.datetime] = None,
               path_length: Optional[int] = None, key_ids: bool = True, basic_constraints: bool = True,
               key_usage: Optional[str] = "default", server_auth: bool = True, pss: bool = False,
               hash_algorithm=None, aia_ca_issuers: Optional[str] = None, serial: Optional[int] = None,
               signing_key=None, subject_key_id: Optional[bytes] = None,
               raw_extensions: Sequence[tuple[x509.ObjectIdentifier, bytes]] = (),
               extensions: Sequence[tuple[x509.ExtensionType, bool]] = (), basic_constraints_critical: bool = True,
               san_critical: bool = False) -> x509.Certificate:
    """Build one certificate; issuer None makes it self-signed. subject_key_id replaces the SKI derived from
    public_key (to build look-alike CAs); raw_extensions adds (OID, DER value) extensions as they are, even values
    that do not parse as that OID's extension; extensions adds (extension, critical) pairs (name constraints, a CA's
    extendedKeyUsage). server_auth None gives a leaf no extendedKeyUsage at all."""
    signer_key = signing_key or (issuer.key if issuer else None)
    issuer_name = issuer.cert.subject if issuer else subject
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_name)
               .public_key(public_key)
               .serial_number(serial or x509.random_serial_number())
               .not_valid_before(not_before or NOW - DAY)
               .not_valid_after(not_after or NOW + 365 * DAY))
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                                        critical=basic_constraints_critical)
    if key_usage == "default":
        builder = builder.add_extension(_key_usage(ca), critical=True)
    elif key_usage == "encipher_only":
        builder = builder.add_extension(_key_usage(False, signature=False), critical=True)
    if not ca and server_auth:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca and server_auth is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    alt_names = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=san_critical)
    if key_ids:
        ski = x509.SubjectKeyIdentifier(subject_key_id) if subject_key_id else \
            x509.SubjectKeyIdentifier.from_public_key(public_key)
        builder = builder.add_extension(ski, critical=False)
        authority_key = (issuer.key.public_key() if issuer else public_key) if signing_key is None \
            else signing_key.public_key()
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key),
                                        critical=False)
    for oid, value in raw_extensions:
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    if aia_ca_issuers:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_ca_issuers))]),
            critical=False)
    return _sign(builder, signer_key or _self_key_required(), hash_algorithm, pss)


def _self_key_required():
    raise ValueError("a self-signed certificate needs signing_key")


def _key_usage(ca: bool, signature: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=signature, content_commitment=False, key_encipherment=not ca and signature,
                         data_encipherment=False, key_agreement=not signature, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=not signature, decipher_only=False)


def _sign(builder: x509.CertificateBuilder, key, hash_algorithm, pss: bool) -> x509.Certificate:
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return builder.sign(key, None)
    algorithm = hash_algorithm or hashes.SHA256()
    if pss:
        pss_padding = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        return builder.sign(key, algorithm, rsa_padding=pss_padding)
    return builder.sign(key, algorithm)


def root(common_name: str = "Test Root CA", key_type: str = "ecdsa", **options) -> Issued:
    """A self-signed root CA."""
    key = options.pop("key", None) or new_key(key_type)
    cert = build_cert(subject=options.pop("subject", None) or name(common_name), public_key=key.public_key(),
                      issuer=None, ca=True, signing_key=key, **options)
    return Issued(cert, key)


def cross_sign(subject: Issued, by: Issued, **options) -> Issued:
    """A second certificate for subject's name and key, signed by another CA (a cross-sign)."""
    return by.issue(subject=subject.cert.subject, ca=True, key=subject.key, **options)


def lookalike(ca: Issued, by: Issued, **options) -> Issued:
    """A CA certificate with ca's subject and subject key identifier but a new key, issued by by: a decoy that
    only a signature check tells apart from ca."""
    ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    return by.issue(subject=ca.cert.subject, ca=True, subject_key_id=ski, **options)


@dataclass
class Hierarchy:
    """root -> intermediate(s) -> leaf, the common shape of a public mail server's PKI."""

    root: Issued
    intermediates: list
    leaf: Issued

    @property
    def served_chain(self) -> list:
        """Leaf then intermediates in order, root excluded: what a server must send."""
        return [self.leaf, *reversed(self.intermediates)]


def hierarchy(*dns_names: str, depth: int = 1, key_type: str = "ecdsa", leaf_key_type: Optional[str] = None,
              **leaf_options) -> Hierarchy:
    """A root, depth intermediates and a leaf for dns_names (default mail.example.test)."""
    names = dns_names or ("mail.example.test",)
    top = root(key_type=key_type)
    intermediates = []
    issuer = top
    for level in range(depth):
        issuer = issuer.issue(f"Test Intermediate CA {level + 1}", ca=True, key_type=key_type)
        intermediates.append(issuer)
    leaf = issuer.leaf(*names, key_type=leaf_key_type or key_type, **leaf_options)
    return Hierarchy(top, intermediates, leaf)


# For raw_extensions: a SET where CRLDistributionPoints has a SEQUENCE, DER that cryptography parses only when the
# extensions are read.
UNPARSABLE_EXTENSION = ((x509.oid.ExtensionOID.CRL_DISTRIBUTION_POINTS, b"\x31\x00"),)


def resigned(issued: Issued, signer: Issued, edit: Callable[[bytes], bytes]) -> Issued:
    """issued (an ECDSA-with-SHA-256 certificate, the default here) with its tbsCertificate changed by edit and
    signed again by signer, an ECDSA CA: a certificate with a valid signature that no builder makes, such as one
    whose public key cannot be used."""
    tbs = edit(issued.cert.tbs_certificate_bytes)
    der = issued.der
    after_tbs = _header_length(der) + len(issued.cert.tbs_certificate_bytes)
    algorithm = der[after_tbs:after_tbs + _element_length(der[after_tbs:])]
    signature = signer.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return Issued(x509.load_der_x509_certificate(_tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature))),
                  issued.key)


def _header_length(der: bytes) -> int:
    return 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)


def _element_length(der: bytes) -> int:
    header = _header_length(der)
    return header + (int.from_bytes(der[2:header], "big") if header > 2 else der[1])


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def version_1(issued: Issued, signer: Issued) -> Issued:
    """issued as an X.509 version 1 certificate (its version field left out, as v1 has it), signed again by signer."""
    def edit(tbs: bytes) -> bytes:
        body = tbs[_header_length(tbs):]
        version = bytes.fromhex("a003020102")
        assert body.startswith(version)
        return _tlv(0x30, body[len(version):])
    return resigned(issued, signer, edit)


def mangled(data: bytes, rng: random.Random, most: int = 16) -> bytes:
    """data with 1 to 3 random changes, for fuzzing parsers: a byte replaced, up to most bytes cut, or up to most random
    bytes inserted (anywhere, the end included)."""
    changed = bytearray(data)
    for _change in range(rng.randint(1, 3)):
        at = rng.randrange(len(changed) + 1)
        kind = rng.randrange(3) if at < len(changed) else 2
        if kind == 0:
            changed[at] = rng.randrange(256)
        elif kind == 1:
            del changed[at:at + rng.randint(1, most)]
        else:
            changed[at:at] = rng.randbytes(rng.randint(1, most))
    return bytes(changed)


def openssl_ca(tmp_path: Path, issuer: Optional[Issued], common_name: str, digest: str = "sha1") -> Issued:
    """A CA certificate signed with digest by the openssl command (cryptography refuses to sign with SHA-1)."""
    key = new_key()
    stem = tmp_path / common_name.replace(" ", "_")
    key_file, csr, out, ext = (stem.with_suffix(suffix) for suffix in (".key", ".csr", ".pem", ".ext"))
    key_file.write_bytes(Issued(None, key).key_pem())
    ext.write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    subprocess.run(["openssl", "req", "-new", "-key", key_file, "-subj", f"/O=mailops test/CN={common_name}",
                    "-out", csr], check=True, capture_output=True)
    if issuer is None:
        signer = ["-signkey", key_file]
    else:
        (tmp_path / "issuer.pem").write_bytes(issuer.pem)
        (tmp_path / "issuer.key").write_bytes(issuer.key_pem())
        signer = ["-CA", tmp_path / "issuer.pem", "-CAkey", tmp_path / "issuer.key", "-set_serial", "4711"]
    subprocess.run(["openssl", "x509", "-req", "-in", csr, *signer, f"-{digest}", "-days", "400", "-extfile", ext,
                    "-out", out], check=True, capture_output=True)
    return Issued(x509.load_pem_x509_certificate(out.read_bytes()), key)


def pem_bundle(*issued: Issued) -> bytes:
    return b"".join(item.pem for item in issued)
