# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the kind of certificate pile operators really hold, mistakes included, for `make demo`.

The pile: the leaf's file also holds the root and an old unrelated certificate, the intermediates come
as a separate file in the wrong order, one intermediate is only in a CA bundle (the pool), and the
private CA's root sits apart. Usage: make_pile.py DIRECTORY
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pki


def write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pool").mkdir(exist_ok=True)
    company = pki.hierarchy("mail.example.test", "imap.example.test", "smtp.example.test", depth=2)
    upper, lower = company.intermediates
    stale = pki.hierarchy("old-mail.example.test").leaf
    (directory / "from-the-ca.pem").write_bytes(
        b"Bag Attributes\n    friendlyName: mail\nsubject=CN=mail.example.test\n"
        + company.leaf.pem + company.root.pem + stale.pem)
    (directory / "intermediates.pem").write_bytes(upper.pem)
    (directory / "pool" / "ca-bundle.pem").write_bytes(lower.pem)
    (directory / "private-root.pem").write_bytes(company.root.pem)
    key = directory / "mail.key"
    key.write_bytes(company.leaf.key_pem(fmt="traditional"))
    key.chmod(0o600)


if __name__ == "__main__":
    write(Path(sys.argv[1]))
