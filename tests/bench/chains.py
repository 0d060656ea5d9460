# SPDX-License-Identifier: GPL-3.0-or-later
"""Sections 1 and 2 of make bench: chain building for one leaf from decoy pools, and the floor.

Tools, each cold (read the files, parse, build) and warm (pool already loaded, the next leaf):
- ours: the collection's library as its modules call it (analysis.load_request + analyze; warm: a
  Judgement whose pool index is reused, Judgement.request + analyze);
- community.crypto: the functions of its certificate_complete_chain module (parse_pem_list, CertificateSet,
  find_parent), driven the way its main() drives them; installed in the bench virtualenv only;
- verifier: cryptography's PolicyBuilder server verifier (x509.verification), pool bulk-parsed;
- openssl: `openssl verify -CAfile root -untrusted pool leaf`, one process per call (warm: the cost of each
  further leaf on one command line).
The floor: cryptography's bulk PEM parse of the pool, plus one signature check per link of the chain.

Run as a script (`chains.py memory TOOL SIZE DIR`) it measures one tool's peak memory in a fresh process.
"""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import common
from common import Sample, Timing
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store
from pools import SERVER_NAME, Workspace

from ansible_collections.mailops.tls.plugins.module_utils import analysis, certs, load

TOOLS = ("ours", "community.crypto", "verifier", "openssl")
RUNS = {10: 15, 100: 15, 1000: 9, 3000: 7, 10000: 5}
WARM_BLOCK = 10  # leaves each tool takes in a row per turn of the warm section


@dataclass
class PoolResult:
    """Everything measured for one pool size."""

    size: int
    cold: dict[str, Timing] = field(default_factory=dict)
    warm: dict[str, Timing] = field(default_factory=dict)
    ok: dict[str, bool] = field(default_factory=dict)
    signatures: dict[str, Optional[str]] = field(default_factory=dict)
    memory_kib: dict[str, Optional[int]] = field(default_factory=dict)
    bulk_parse: Optional[Timing] = None
    link_checks: Optional[Timing] = None
    floor: Optional[Timing] = None


# ---- ours


def ours_cold(space: Workspace, pool: Path) -> analysis.Analysis:
    request = analysis.load_request(paths=[str(space.leaf)], pool=[str(pool)], roots=[str(space.root)],
                                    system_roots=False)
    return analysis.analyze(request)


def ours_judgement(space: Workspace, pool: Path) -> analysis.Judgement:
    """The pool and roots loaded once; its index is built by the first analysis and kept."""
    return analysis.load_judgement(pool=[str(pool)], roots=[str(space.root)], system_roots=False)


def ours_warm(judgement: analysis.Judgement, leaf: bytes) -> analysis.Analysis:
    return analysis.analyze(judgement.request(load.load_bytes(leaf, "leaf.pem")))


def ours_ok(result: analysis.Analysis, space: Workspace) -> bool:
    return result.trusted and len(result.chain) == space.chain_length - 1


class SignatureCounter:
    """Counts every signature verification the library makes (paths and self-signatures) while active."""

    def __init__(self) -> None:
        self.count = 0
        self._original = certs.signature_verifies

    def __enter__(self) -> SignatureCounter:
        def counting(*args, **kwargs):
            self.count += 1
            return self._original(*args, **kwargs)

        certs.signature_verifies = counting
        return self

    def __exit__(self, *exc_info) -> None:
        certs.signature_verifies = self._original


# ---- community.crypto


class _ModuleStub:
    """What certificate_complete_chain's functions need from AnsibleModule: warn and fail_json."""

    def warn(self, message: str) -> None:
        raise RuntimeError(f"community.crypto warned: {message}")

    def fail_json(self, **result) -> None:
        raise RuntimeError(f"community.crypto failed: {result.get('msg')}")


def community_crypto():
    """The installed module (bench virtualenv only), or None."""
    try:
        from ansible_collections.community.crypto.plugins.modules import certificate_complete_chain
    except ImportError:
        return None
    return certificate_complete_chain


def cc_sets(module, space: Workspace, pool: Path):
    stub = _ModuleStub()
    intermediates = module.CertificateSet(stub)
    intermediates.load(str(pool))
    roots = module.CertificateSet(stub)
    roots.load(str(space.root))
    return intermediates, roots


def cc_complete(module, leaf_text: str, intermediates, roots) -> list:
    """Complete the chain of leaf_text as the module's main() does: the input chain parsed, then at each step
    a root that issued the current certificate ends the chain, else an intermediate that did extends it."""
    chain = module.parse_pem_list(_ModuleStub(), leaf_text, source="input chain")
    current, completed = chain[-1], []
    while current is not None:
        root = roots.find_parent(current)
        if root is not None:
            completed.append(root)
            break
        current = intermediates.find_parent(current)
        if current is None:
            raise RuntimeError("community.crypto could not complete the chain")
        completed.append(current)
    return chain + completed


def cc_cold(module, space: Workspace, pool: Path) -> list:
    intermediates, roots = cc_sets(module, space, pool)
    return cc_complete(module, space.leaf.read_text(encoding="ascii"), intermediates, roots)


class ParentCounter:
    """Counts the signature verifications certificate_complete_chain's is_parent makes (the names match)."""

    def __init__(self, module) -> None:
        self.module = module
        self.count = 0
        self._original = module.is_parent

    def __enter__(self) -> ParentCounter:
        def counting(stub, cert, parent):
            if cert.cert.issuer == parent.cert.subject:
                self.count += 1
            return self._original(stub, cert, parent)

        self.module.is_parent = counting
        return self

    def __exit__(self, *exc_info) -> None:
        self.module.is_parent = self._original


# ---- cryptography's verifier


def verifier_for(space: Workspace):
    root = x509.load_pem_x509_certificate(space.root.read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    return PolicyBuilder().store(Store([root])).time(now).build_server_verifier(x509.DNSName(SERVER_NAME))


def verifier_cold(space: Workspace, pool: Path) -> list:
    verifier = verifier_for(space)
    intermediates = x509.load_pem_x509_certificates(pool.read_bytes())
    return verifier.verify(x509.load_pem_x509_certificate(space.leaf.read_bytes()), intermediates)


# ---- openssl


def openssl_verify(space: Workspace, pool: Path, leaves: list[Path]) -> bool:
    result = subprocess.run(["openssl", "verify", "-CAfile", str(space.root), "-untrusted", str(pool),
                             *map(str, leaves)], capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.count(": OK") == len(leaves)


# ---- the floor


def bulk_parse(pool: Path) -> list:
    return x509.load_pem_x509_certificates(pool.read_bytes())


def link_checks(links: list[tuple[x509.Certificate, x509.Certificate]]) -> int:
    """One ECDSA signature check per link of the chain (certificates already parsed)."""
    for child, parent in links:
        parent.public_key().verify(child.signature, child.tbs_certificate_bytes,
                                   ec.ECDSA(child.signature_hash_algorithm))
    return len(links)


def chain_links(space: Workspace) -> list[tuple[x509.Certificate, x509.Certificate]]:
    company = space.company
    path = [company.leaf, *reversed(company.intermediates), company.root]
    return [(path[n].cert, path[n + 1].cert) for n in range(len(path) - 1)]


# ---- one pool


def measure_pool(space: Workspace, size: int, runs: Optional[int] = None, memory: bool = True) -> PoolResult:
    """Cold, warm, floor, signature counts and peak memory of every tool for the pool of size."""
    pool = space.pools[size]
    runs = runs or RUNS.get(size, 5)
    result = PoolResult(size)
    module = community_crypto()
    cold: dict[str, Callable[[], object]] = {
        "ours": lambda: ours_cold(space, pool),
        "verifier": lambda: verifier_cold(space, pool),
        "openssl": lambda: openssl_verify(space, pool, [space.leaf]),
        "bulk parse": lambda: bulk_parse(pool),
    }
    if module is not None:
        cold["community.crypto"] = lambda: cc_cold(module, space, pool)
    samples, outcomes = common.interleaved(cold, runs)
    result.bulk_parse = samples.pop("bulk parse")
    result.cold = samples
    result.ok["ours"] = ours_ok(outcomes["ours"], space)
    result.ok["verifier"] = len(outcomes["verifier"]) == space.chain_length
    result.ok["openssl"] = bool(outcomes["openssl"])
    if module is not None:
        result.ok["community.crypto"] = len(outcomes["community.crypto"]) == space.chain_length
    links = chain_links(space)
    result.link_checks = common.interleaved({"links": lambda: link_checks(links)}, max(runs, 15))[0]["links"]
    result.floor = Timing(_sum(result.bulk_parse.wall, result.link_checks.wall),
                          _sum(result.bulk_parse.cpu, result.link_checks.cpu))
    _warm(space, size, result, module)
    _signatures(space, pool, result, module)
    if memory:
        for tool in TOOLS:
            if tool != "community.crypto" or module is not None:
                result.memory_kib[tool] = peak_memory(tool, size, space.directory)
    return result


def _sum(first: Sample, second: Sample) -> Sample:
    return Sample(first.median + second.median, first.low + second.low, first.high + second.high, first.runs)


def _warm(space: Workspace, size: int, result: PoolResult, module) -> None:
    """Time each further leaf with the pool already loaded: every tool gets the same leaves in turn."""
    pool = space.pools[size]
    leaves = [path.read_bytes() for path in space.warm_leaves]
    judgement = ours_judgement(space, pool)
    ours_warm(judgement, space.leaf.read_bytes())  # builds the index, as a first leaf would
    verifier = verifier_for(space)
    intermediates = x509.load_pem_x509_certificates(pool.read_bytes())
    tools: dict[str, Callable[[bytes], object]] = {
        "ours": lambda leaf: ours_warm(judgement, leaf),
        "verifier": lambda leaf: verifier.verify(x509.load_pem_x509_certificate(leaf), intermediates),
    }
    if module is not None:
        sets = cc_sets(module, space, pool)
        tools["community.crypto"] = lambda leaf: cc_complete(module, leaf.decode("ascii"), *sets)
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
    # A warm path is a tool's steady state: each tool takes a block of consecutive leaves per turn, so the
    # other tools' work evicts its CPU caches once per block, not before every leaf (see docs/performance.md).
    blocks = [leaves[start:start + WARM_BLOCK] for start in range(0, len(leaves), WARM_BLOCK)]
    for turn, block in enumerate(blocks):
        for name in common.in_turn(list(tools), turn):
            for leaf in block:
                elapsed, outcome = common.clock(lambda tool=tools[name], leaf=leaf: tool(leaf))
                seconds[name].append(elapsed)
                if name == "ours" and not ours_ok(outcome, space):
                    result.ok["ours warm"] = False
    result.warm = {name: Timing.of(values) for name, values in seconds.items()}
    # openssl: one process per call, so a further leaf costs what one more file on the command line costs.
    one, many = [], []
    for _run in range(5):
        one.append(common.clock(lambda: openssl_verify(space, pool, space.warm_leaves[:1]))[0])
        many.append(common.clock(lambda: openssl_verify(space, pool, space.warm_leaves))[0])
    extra = [tuple(max((m - o) / (len(leaves) - 1), 0.0) for o, m in zip(first, second))
             for first, second in zip(sorted(one), sorted(many))]
    result.warm["openssl"] = Timing.of(extra)


def _signatures(space: Workspace, pool: Path, result: PoolResult, module) -> None:
    with SignatureCounter() as counter:
        found = ours_cold(space, pool)
    links = space.chain_length - 1
    self_signed = counter.count - found.signature_checks
    extra = f" +{self_signed} root self-signature" if self_signed else ""
    result.signatures["ours"] = f"{found.signature_checks}{extra}"
    result.signatures["chain links"] = str(links)
    if module is not None:
        with ParentCounter(module) as parents:
            cc_cold(module, space, pool)
        result.signatures["community.crypto"] = str(parents.count)
    result.signatures["verifier"] = "n/a (inside Rust, not observable)"
    result.signatures["openssl"] = "n/a (not reported)"


def plain_signatures(space: Workspace) -> dict[int, int]:
    """Our signature checks on pools whose decoys share the issuer's name but not its key identifier."""
    return {size: ours_cold(space, pool).signature_checks for size, pool in space.plain_pools.items()}


# ---- peak memory, each tool in a fresh process


def peak_memory(tool: str, size: int, directory: Path) -> Optional[int]:
    """Peak resident memory one cold build adds (KiB): Python tools in a fresh interpreter after their imports,
    openssl as its whole process."""
    if tool == "openssl":
        space_dir = Path(directory)
        peak, _code = common.run_peak_kib(["openssl", "verify", "-CAfile", str(space_dir / "root.pem"),
                                           "-untrusted", str(space_dir / f"pool-{size}.pem"),
                                           str(space_dir / "leaf.pem")])
        return peak  # whether or not it verified: it did the same work
    completed = subprocess.run([sys.executable, __file__, "memory", tool, str(size), str(directory)],
                               capture_output=True, text=True, check=False, timeout=600)
    if completed.returncode:
        print(f"memory of {tool} at {size}: {completed.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(completed.stdout)["kib"]


def _memory_worker(tool: str, size: int, directory: Path) -> None:
    from pools import Workspace as Space

    space = Space(directory, company=None)
    pool = directory / f"pool-{size}.pem"
    module = community_crypto()
    run = {"ours": lambda: ours_cold(space, pool), "verifier": lambda: verifier_cold_files(directory, pool),
           "community.crypto": lambda: cc_cold(module, space, pool)}[tool]
    before = common.rss_kib()
    if not common.reset_peak():
        raise SystemExit("cannot reset the peak memory counter (/proc/self/clear_refs)")
    run()
    print(json.dumps({"kib": max(common.peak_kib() - before, 0)}))


def verifier_cold_files(directory: Path, pool: Path) -> list:
    root = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
    verifier = (PolicyBuilder().store(Store([root])).time(datetime.datetime.now(datetime.timezone.utc))
                .build_server_verifier(x509.DNSName(SERVER_NAME)))
    leaf = x509.load_pem_x509_certificate((directory / "leaf.pem").read_bytes())
    return verifier.verify(leaf, x509.load_pem_x509_certificates(pool.read_bytes()))


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "memory":
    _memory_worker(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
