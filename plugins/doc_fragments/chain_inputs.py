# SPDX-License-Identifier: GPL-3.0-or-later
"""Documentation of the options every chain module shares (module_utils/module_args.py)."""
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  path:
    description:
      - Files with the certificates to analyse, on the host that runs the module, in any order and any
        mix of formats.
      - PEM with any surrounding text (C(Bag Attributes), C(subject=) lines, comments), CRLF line ends or a
        UTF-8 BOM; DER; PKCS#7 (C(.p7b), C(.p7c), PEM or DER); PKCS#12 (C(.p12), C(.pfx)).
      - Private keys found in these files are used for O(private_key_path)'s key match too.
      - One of O(path) and O(content) is required.
    type: list
    elements: path
  content:
    description:
      - PEM text with certificates, analysed after the files of O(path).
    type: str
  pool:
    description:
      - Files or directories of extra certificates (for example a CA bundle of thousands of intermediates)
        that the chain may be completed from.
      - Certificates taken from the pool are reported as missing from the bundle, because the server must
        send them.
    type: list
    elements: path
    default: []
  roots:
    description:
      - Files or directories of trust anchors, for example the root of a private CA.
      - A path ending in one of these is preferred over one ending in the system trust store.
    type: list
    elements: path
    default: []
  system_roots:
    description:
      - Also trust the system trust store of the host that runs the module (Debian, Ubuntu, RHEL, SUSE and
        Alpine locations).
    type: bool
    default: true
  names:
    description:
      - Host names or IP addresses clients connect by, for example V(mail.example.org) and
        V(imap.example.org). Each is matched against the leaf by RFC 9525 rules.
      - Unicode names are converted to A-labels (IDNA 2003).
    type: list
    elements: str
    default: []
  private_key_path:
    description:
      - The private key of the leaf (PKCS#1, PKCS#8, SEC1, DER, or a PKCS#12 file), checked against the leaf.
      - The key never appears in any result or message.
    type: path
  private_key_passphrase:
    description:
      - Passphrase of an encrypted private key.
    type: str
  pkcs12_passphrase:
    description:
      - Passphrase of PKCS#12 files among O(path) or O(private_key_path).
    type: str
  valid_at:
    description:
      - Judge validity at this time instead of now, as an ISO 8601 date or date-time (UTC unless an offset is
        given), for example V(2027-01-31) to see what will have expired by then.
    type: str
  expires_soon_days:
    description:
      - Report an issue with code C(expires_soon) for each certificate of the chain that expires within
        this many days.
    type: int
    default: 30
requirements:
  - cryptography >= 36.0 on the host that runs the module
"""
