# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared pieces of make bench: paths, timing samples, peak memory, the machine description."""
from __future__ import annotations

import contextlib
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
COLLECTIONS = REPO / "build" / "collections"


def add_paths() -> None:
    """tests/ for pki, tests/lab for lab, build/collections for the ansible_collections/mailops/tls link
    (make collection-link)."""
    for path in (str(TESTS), str(TESTS / "lab"), str(COLLECTIONS)):
        if path not in sys.path:
            sys.path.insert(0, path)


add_paths()


@dataclass(frozen=True)
class Sample:
    """Seconds per run: median with min and max over runs."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, seconds: list[float]) -> Sample:
        return cls(statistics.median(seconds), min(seconds), max(seconds), len(seconds))

    def ms(self) -> str:
        """'12.3 (11.9-14.0)' in milliseconds."""
        return f"{_num(self.median * 1e3)} ({_num(self.low * 1e3)}-{_num(self.high * 1e3)})"


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds (this process and the children it waited for) of the same runs."""

    wall: Sample
    cpu: Sample

    @classmethod
    def of(cls, runs: list[tuple[float, float]]) -> Timing:
        return cls(Sample.of([wall for wall, _cpu in runs]), Sample.of([cpu for _wall, cpu in runs]))


def cpu_seconds() -> float:
    """CPU time of this process plus that of its finished children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def clock(function: Callable[[], object]) -> tuple[tuple[float, float], object]:
    """(wall, CPU) seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = function()
    return (time.perf_counter() - wall, cpu_seconds() - cpu), result


def in_turn(names: list[str], turn: int) -> list[str]:
    """The order of the tools in round turn: each round starts with the next tool."""
    return names[turn % len(names):] + names[:turn % len(names)]


def interleaved(tools: dict[str, Callable[[], object]], runs: int) -> tuple[dict[str, Timing], dict[str, object]]:
    """Time every tool runs times, taking turns (each round starts with the next tool) so that load on a shared
    machine falls on all of them alike; returns timings and each tool's last result."""
    seconds: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
    results: dict[str, object] = {}
    for run in range(runs):
        for name in in_turn(list(tools), run):
            elapsed, results[name] = clock(tools[name])
            seconds[name].append(elapsed)
    return {name: Timing.of(values) for name, values in seconds.items()}, results


@dataclass(frozen=True)
class AnsibleCommand:
    """`ansible localhost` with the local connection, through the project's own virtualenv (.venv, or $VENV): the
    ansible-core users of the collection get, finding the collection through build/collections."""

    base: tuple[str, ...]
    environment: dict

    @classmethod
    def find(cls) -> Optional[AnsibleCommand]:
        """None when .venv has no ansible (make venv)."""
        venv = Path(os.environ.get("VENV", REPO / ".venv"))
        ansible = venv / "bin" / "ansible"
        if not ansible.exists():
            return None
        environment = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
                       "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
                       "ANSIBLE_NOCOLOR": "true"}
        base = (str(ansible), "localhost", "-i", "localhost,", "-c", "local", "-e",
                f"ansible_python_interpreter={venv / 'bin' / 'python'}")
        return cls(base, environment)

    def module(self, name: str, arguments: str = "", library: Optional[Path] = None) -> list[str]:
        """The command running module name (from library, a directory of modules, when given)."""
        return [*self.base, *(["-M", str(library)] if library else []), "-m", name,
                *(["-a", arguments] if arguments else [])]

    def run(self, command: list[str]) -> tuple[bool, str]:
        """Run command once: (True, its output) when it succeeds, else (False, the end of its output and errors)."""
        done = subprocess.run(command, capture_output=True, text=True, env=self.environment, check=False)
        return (True, done.stdout) if done.returncode == 0 else (False, (done.stdout + done.stderr).strip()[-400:])

    def runner(self, command: list[str]) -> Callable[[], object]:
        """A call that runs command (output discarded), for clock() and interleaved()."""
        return lambda: subprocess.run(command, capture_output=True, env=self.environment, check=True)

    def version(self) -> Optional[str]:
        return command_version([self.base[0], "--version"], r"core [0-9.]+")


@contextlib.contextmanager
def running_lab(prefix: str, backends: int = 3):
    """A lab of backends (tests/lab) on a free loopback base in a temporary directory, installed first, brought
    down and removed afterwards. Raises RuntimeError (lab.LabError among them) with the reason it did not come up."""
    import lab as labmod  # tests/lab/lab.py

    install = subprocess.run(["sh", str(TESTS / "lab" / "install.sh")], capture_output=True, text=True, check=False)
    if install.returncode:
        raise RuntimeError(f"tests/lab/install.sh failed: {install.stderr.strip()[-300:]}")
    base, lock = labmod.claim_base(backends)
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)  # Postfix needs every directory above its files searchable
    lab = labmod.Lab(directory, base=base)
    try:
        lab.up(backends=backends)
        yield lab
    finally:
        lab.down(check=False)
        lock.close()
        shutil.rmtree(directory, ignore_errors=True)


def rss_kib() -> int:
    """This process's resident set now (KiB)."""
    return _status_kib("VmRSS")


def reset_peak() -> bool:
    """Reset this process's peak resident set (Linux: clear_refs 5); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def peak_kib() -> int:
    """This process's peak resident set since start or the last reset_peak() (KiB)."""
    return _status_kib("VmHWM")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_peak_kib(command: list[str]) -> tuple[int, int]:
    """Run a command (output discarded); return its whole-process peak resident set (KiB) and exit code."""
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss, process.returncode


def command_version(command: list[str], pattern: str = r"[0-9][0-9.a-z+~-]*") -> Optional[str]:
    """The first version-looking word a command prints, or None when it is missing."""
    executable = shutil.which(command[0], path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if executable is None:
        return None
    result = subprocess.run([executable, *command[1:]], capture_output=True, text=True, check=False, timeout=30)
    match = re.search(pattern, result.stdout + result.stderr)
    return match.group(0) if match else None


def package_version(name: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """What the numbers ran on: CPU, cores, memory, OS, Python, and the load when asked."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = round(int(Path("/proc/meminfo").read_text(encoding="ascii").split()[1]) / 1024 / 1024, 1)
    os_name = platform.platform()
    try:
        release = Path("/etc/os-release").read_text(encoding="utf-8")
        os_name = re.search(r'^PRETTY_NAME="?([^"\n]*)', release, re.MULTILINE).group(1)
    except (OSError, AttributeError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory, "os": os_name,
            "kernel": platform.release(), "python": platform.python_version()}


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"
