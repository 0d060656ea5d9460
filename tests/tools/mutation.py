# SPDX-License-Identifier: GPL-3.0-or-later
"""Mutation testing of path building, path rules, checks and names (make mutation).

Each mutant changes one thing in one module (a comparison flipped, a boolean operator swapped, a `not` dropped, a
number moved by one, a constant True/False inverted, a `continue`/`return` guard removed) in a copy of the repository,
and the unit tests of that module run against it; a mutant no test kills survives. mutmut cannot be used as is: it
mutates a copy that the collection's import path (ansible_collections.mailops.tls -> the repository) never reaches.

    python tests/tools/mutation.py [--module chain] [--limit N] [--jobs 2]

Prints every surviving mutant as file:line, the change and the line, so each can be killed by a test or listed with
its reason in docs/validation.md.
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UTILS = "plugins/module_utils"
TESTS = "tests/unit/plugins/module_utils"
# module -> the tests that judge it (the differential and fuzz tests are left out: they take minutes per mutant)
TARGETS = {
    "chain": ["test_chain.py", "test_pathrules.py", "test_checks.py"],
    "pathrules": ["test_pathrules.py", "test_checks.py"],
    "checks": ["test_checks.py", "test_pathrules.py", "test_chain.py"],
    "names": ["test_names.py"],
}
DESELECT = ["-k", "not mutated_extensions and not randomly_damaged"]
COMPARISONS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
               ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


@dataclass(frozen=True)
class Mutant:
    module: str
    line: int
    change: str
    source: str  # the whole mutated module


class _Mutator(ast.NodeTransformer):
    """Applies the n-th possible change of a module (counting every site in order) and records what it was."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.seen = 0
        self.done: tuple[int, str] | None = None

    def _site(self, node: ast.AST, change: str) -> bool:
        hit = self.seen == self.target
        self.seen += 1
        if hit:
            self.done = (node.lineno, change)
        return hit

    def visit_FunctionDef(self, node):  # decorators, defaults and annotations are never mutated
        node.body = [self.visit(statement) for statement in node.body]
        return node

    def visit_ClassDef(self, node):  # nor a class's decorators (dataclass(frozen=True)) and field declarations
        node.body = [statement if isinstance(statement, ast.AnnAssign) else self.visit(statement)
                     for statement in node.body]
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        operator = type(node.ops[0])
        if operator in COMPARISONS and self._site(node, f"{operator.__name__} -> {COMPARISONS[operator].__name__}"):
            node.ops[0] = COMPARISONS[operator]()
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._site(node, f"{type(node.op).__name__} -> {other.__name__}"):
            node.op = other()
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._site(node, "not x -> x"):
            return node.operand
        return node

    def visit_Constant(self, node):
        if isinstance(node.value, bool):
            if self._site(node, f"{node.value} -> {not node.value}"):
                return ast.copy_location(ast.Constant(not node.value), node)
        elif isinstance(node.value, int) and self._site(node, f"{node.value} -> {node.value + 1}"):
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_If(self, node):
        self.generic_visit(node)
        if len(node.body) == 1 and isinstance(node.body[0], ast.Continue) and self._site(node, "guard removed"):
            return ast.copy_location(ast.Pass(), node)
        return node


def mutants(module: str):
    source = (REPO / UTILS / f"{module}.py").read_text(encoding="utf-8")
    number = 0
    while True:
        mutator = _Mutator(number)
        tree = mutator.visit(ast.parse(source))
        if mutator.done is None:
            return
        yield Mutant(module, mutator.done[0], mutator.done[1], ast.unparse(ast.fix_missing_locations(tree)))
        number += 1


def _copy_repository(into: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv*", "build", "__pycache__", ".pytest_cache", ".ruff_cache")
    shutil.copytree(REPO, into, ignore=ignore, symlinks=True)


def killed(mutant: Mutant, workdir: Path, timeout: int) -> bool:
    """Run the module's tests on a copy holding the mutant; True when a test fails (or the run hangs)."""
    (workdir / UTILS / f"{mutant.module}.py").write_text(mutant.source, encoding="utf-8")
    tests = [f"{TESTS}/{name}" for name in TARGETS[mutant.module]]
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *DESELECT,
                               *tests], cwd=workdir, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return True
    return done.returncode != 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--module", action="append", choices=sorted(TARGETS))
    parser.add_argument("--every", type=int, default=1, help="only every n-th mutant of each module (a sample)")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args(argv)
    started = time.monotonic()
    survivors, total = [], 0
    with tempfile.TemporaryDirectory(prefix="mailops-mutation-") as temp:
        copies = [Path(temp) / f"copy{job}" for job in range(args.jobs)]
        for copy in copies:
            _copy_repository(copy)
        for module in args.module or sorted(TARGETS):
            todo = list(mutants(module))
            todo = todo[::args.every]
            total += len(todo)
            original = (REPO / UTILS / f"{module}.py").read_text(encoding="utf-8")
            results = _batched(todo, copies, args.timeout)
            for copy in copies:
                (copy / UTILS / f"{module}.py").write_text(original, encoding="utf-8")
            lines = original.splitlines()
            print(f"{module}: {len(todo)} mutants, {sum(not r for r in results)} survived", flush=True)
            for mutant, was_killed in zip(todo, results):
                if not was_killed:
                    survivors.append(f"{module}.py:{mutant.line}: {mutant.change}: {lines[mutant.line - 1].strip()}")
                    print("SURVIVED", survivors[-1], flush=True)
    print(f"{total} mutants, {len(survivors)} survived, {time.monotonic() - started:.0f} s")
    return 0


def _batched(todo, copies, timeout) -> list[bool]:
    """Each copy of the repository runs one mutant at a time."""
    results: list[bool] = [False] * len(todo)
    with concurrent.futures.ThreadPoolExecutor(len(copies)) as pool:
        for offset in range(0, len(todo), len(copies)):
            batch = list(enumerate(todo[offset:offset + len(copies)]))
            for position, outcome in zip(batch, pool.map(lambda item: killed(item[1], copies[item[0]], timeout),
                                                         batch)):
                results[offset + position[0]] = outcome
    return results


if __name__ == "__main__":
    sys.exit(main())
