# SPDX-License-Identifier: GPL-3.0-or-later
"""The benchmark's inputs: one PKI, pools of decoy intermediates around its real one, and extra leaves.

Each pool holds the real issuing intermediate among decoys: most are unrelated CAs, 5% share the issuer's
subject name (with their own key identifier), 1% share its name and its key identifier (look-alikes only a
signature can tell apart). The real intermediate sits in the middle of the pool, its own issuer at the end:
neither best nor worst case for a tool that takes the first issuer that verifies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import common  # noqa: F401 # pylint: disable=unused-import # importing it adds tests/ (pki) to sys.path
import pki
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

SERVER_NAME = "mail.example.test"
WARM_LEAVES = 40  # medians of a noisy shared machine need more than a dozen samples


@dataclass
class Workspace:
    """Files every tool reads: leaf.pem, root.pem, pool-N.pem (and pool-N-plain.pem), leaf-K.pem."""

    directory: Path
    company: pki.Hierarchy
    pools: dict[int, Path] = field(default_factory=dict)
    plain_pools: dict[int, Path] = field(default_factory=dict)
    warm_leaves: list[Path] = field(default_factory=list)

    @property
    def leaf(self) -> Path:
        return self.directory / "leaf.pem"

    @property
    def root(self) -> Path:
        return self.directory / "root.pem"

    @property
    def chain_length(self) -> int:
        """Certificates in the path leaf..root."""
        return len(self.company.intermediates) + 2


def prepare(directory: Path, sizes: list[int], plain_sizes: list[int]) -> Workspace:
    """Write the PKI and one pool per size (decoys drawn from one list, so pools differ only in size)."""
    directory.mkdir(parents=True, exist_ok=True)
    company = pki.hierarchy(SERVER_NAME, depth=2)
    space = Workspace(directory, company)
    space.leaf.write_bytes(company.leaf.pem)
    space.root.write_bytes(company.root.pem)
    issuer = company.intermediates[-1]
    for number in range(WARM_LEAVES):
        path = directory / f"leaf-{number + 1}.pem"
        path.write_bytes(issuer.leaf(f"mx{number + 1}.example.test", SERVER_NAME).pem)
        space.warm_leaves.append(path)
    decoys = _decoys(max(sizes) - 1, issuer, look_alikes=True)
    plain = _decoys(max(plain_sizes, default=1) - 1, issuer, look_alikes=False)
    for size in sizes:
        space.pools[size] = _write(directory / f"pool-{size}.pem", decoys[:size - 1], company)
    for size in plain_sizes:
        space.plain_pools[size] = _write(directory / f"pool-{size}-plain.pem", plain[:size - 1], company)
    return space


def _write(path: Path, decoys: list[bytes], company: pki.Hierarchy) -> Path:
    middle = len(decoys) // 2
    path.write_bytes(b"".join([*decoys[:middle], company.intermediates[-1].pem, *decoys[middle:],
                               company.intermediates[0].pem]))
    return path


def _decoys(count: int, real: pki.Issued, look_alikes: bool) -> list[bytes]:
    """count decoy CA certificates from one decoy root (PEM); see the module docstring for the mix."""
    signer = pki.root("Decoy Root")
    shared_key = ec.generate_private_key(ec.SECP256R1())
    ski = real.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    pems = []
    for number in range(count):
        if number % 100 == 0 and look_alikes:
            cert = _look_alike(real.subject, shared_key, ski, signer)
        elif number % 20 == 0:
            cert = pki.build_cert(subject=real.subject, public_key=shared_key.public_key(), issuer=signer, ca=True)
        else:
            cert = pki.build_cert(subject=pki.name(f"Decoy CA {number}"), public_key=shared_key.public_key(),
                                  issuer=signer, ca=True)
        pems.append(pki.Issued(cert, shared_key).pem)
    return pems


def _look_alike(subject: x509.Name, key, ski: x509.SubjectKeyIdentifier, signer: pki.Issued) -> x509.Certificate:
    """A CA certificate with the real issuer's subject and subject key identifier but another key."""
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(signer.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(pki.NOW - pki.DAY).not_valid_after(pki.NOW + 365 * pki.DAY)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(ski, critical=False))
    return builder.sign(signer.key, pki.hashes.SHA256())
