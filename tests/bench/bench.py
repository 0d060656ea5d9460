# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench: time to build one leaf's chain from pools of decoy intermediates, printed as a table.

Each pool holds the real intermediate among decoys: most are unrelated CAs, some share the issuer's
subject name, a few also share its key identifier (so only a signature can tell them apart). Timings are
medians of several runs with min-max, taken in one run of this script; the floor is bulk-parsing the same
pool with cryptography, so the ratio says how much building costs beyond reading.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

# tests/ for pki; build/collections holds the ansible_collections/mailops/tls link (`make collection-link`).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "build" / "collections"))

import pki
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.mailops.tls.plugins.module_utils import analysis, load

POOL_SIZES = (100, 1_000, 10_000)
RUNS = 5


def decoy_pool(size: int, company: pki.Hierarchy) -> bytes:
    """size certificates: the real intermediate plus decoys; 5% share its name, 1% also its key id."""
    real = company.intermediates[-1]
    signer = pki.root("Decoy Root")
    shared_key = ec.generate_private_key(ec.SECP256R1())
    ski = real.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    pems = [real.pem]
    for number in range(size - 1):
        if number % 100 == 0:
            cert = pki.build_cert(subject=real.subject, public_key=shared_key.public_key(), issuer=signer, ca=True,
                                  key_ids=False)
            cert = _with_key_id(cert, ski, signer)
        elif number % 20 == 0:
            cert = pki.build_cert(subject=real.subject, public_key=shared_key.public_key(), issuer=signer, ca=True)
        else:
            cert = pki.build_cert(subject=pki.name(f"Decoy CA {number}"), public_key=shared_key.public_key(),
                                  issuer=signer, ca=True)
        pems.append(pki.Issued(cert, shared_key).pem)
    return b"".join(pems[::-1])


def _with_key_id(cert: x509.Certificate, ski: x509.SubjectKeyIdentifier, signer: pki.Issued) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
               .public_key(cert.public_key()).serial_number(cert.serial_number)
               .not_valid_before(pki.NOW - pki.DAY).not_valid_after(pki.NOW + 365 * pki.DAY)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(ski, critical=False))
    return builder.sign(signer.key, pki.hashes.SHA256())


def timed(function, *args, runs: int = RUNS):
    samples = []
    result = None
    for _run in range(runs):
        start = time.perf_counter()
        result = function(*args)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples), max(samples), result


def build(leaf_pem: bytes, pool_pem: bytes, roots_pem: bytes):
    request = analysis.Request(certificates=load.load_bytes(leaf_pem, "leaf.pem"),
                               pool=load.load_bytes(pool_pem, "pool.pem", check=False),
                               roots=load.load_bytes(roots_pem, "root.pem"))
    return analysis.analyze(request)


def bulk_parse(pool_pem: bytes):
    end = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(block + end) for block in pool_pem.split(end) if b"BEGIN" in block]


def main() -> None:
    company = pki.hierarchy("mail.example.test", depth=2)
    roots_pem = company.root.pem
    leaf_pem = company.leaf.pem
    print(f"{'pool':>7} | {'build median (min-max) ms':>28} | {'bulk parse ms':>13} | {'ratio':>5} | sig checks | ok")
    print("-" * 84)
    for size in POOL_SIZES:
        pool_pem = decoy_pool(size, company) + company.intermediates[0].pem
        build_median, build_min, build_max, result = timed(build, leaf_pem, pool_pem, roots_pem)
        parse_median = timed(bulk_parse, pool_pem)[0]
        ok = result.trusted and len(result.chain) == 3
        print(f"{size:>7} | {build_median * 1e3:>10.1f} ({build_min * 1e3:.1f}-{build_max * 1e3:.1f}) "
              f"| {parse_median * 1e3:>13.1f} | {build_median / parse_median:>5.2f} | "
              f"{result.signature_checks:>10} | {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
