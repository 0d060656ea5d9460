# SPDX-License-Identifier: GPL-3.0-or-later
"""A mail client on Python's ssl with the default context, for the client matrix: smtplib (STARTTLS), imaplib
(implicit TLS) or poplib (STLS), trusting only the given root as ssl.create_default_context(cafile=...) does.

usage: python3 python_client.py smtp|imap|pop3 HOST PORT ROOT_PEM
Prints "accepted" and exits 0 when the handshake verified; prints the error and exits 1 otherwise.
"""
from __future__ import annotations

import contextlib
import imaplib
import poplib
import smtplib
import ssl
import sys


def connect(protocol: str, host: str, port: int, context: ssl.SSLContext) -> None:
    if protocol == "smtp":
        with smtplib.SMTP(host, port, timeout=20) as smtp:
            smtp.starttls(context=context)
            smtp.noop()
    elif protocol == "imap":
        with imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=20) as imap:
            imap.noop()
    else:
        pop = poplib.POP3(host, port, timeout=20)
        try:
            pop.stls(context=context)
            pop.capa()
        finally:
            with contextlib.suppress(OSError):  # keep the handshake's error, not the close's
                pop.close()


def main() -> int:
    protocol, host, port, root = sys.argv[1:5]
    try:
        connect(protocol, host, int(port), ssl.create_default_context(cafile=root))
    except (OSError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto) as exc:
        print(f"{type(exc).__name__}: {exc}")
        return 1
    print("accepted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
