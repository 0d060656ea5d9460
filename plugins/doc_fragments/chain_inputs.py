# SPDX-License-Identifier: GPL-3.0-or-later
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the option sets the modules share (module_utils/module_args.py), each written once.

mailops.tls.chain_inputs: the judging options (pool, anchors, names, time), which every module takes.
mailops.tls.chain_inputs.files: certificate files and keys to analyse.
mailops.tls.chain_inputs.endpoints: live endpoints to probe.
"""
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  pool:
    description:
      - Files or directories of extra certificates (for example a CA bundle of thousands of intermediates)
        that the chain may be completed from.
      - Certificates taken from the pool are reported as missing from the bundle, because the server must
        send them.
    type: list
    elements: path
    default: []
    aliases: [intermediate_certificates]
  roots:
    description:
      - Files or directories of trust anchors, for example the root of a private CA.
      - A path ending in one of these is preferred over one ending in the system trust store.
    type: list
    elements: path
    default: []
    aliases: [root_certificates]
  system_roots:
    description:
      - Also trust the system trust store of the host that runs the module, found as OpenSSL finds it.
      - That is the bundle named by E(SSL_CERT_FILE), else the hashed directory named by E(SSL_CERT_DIR), else the
        default bundle or directory of the Python's OpenSSL (C(ssl.get_default_verify_paths())), else the
        Debian, Ubuntu, RHEL, SUSE or Alpine bundle.
    type: bool
    default: true
  names:
    description:
      - Host names or IP addresses clients connect by, for example V(mail.example.org) and
        V(imap.example.org). Each is matched against the leaf by RFC 9525 rules.
      - Only the subjectAltName counts, as for current clients; see O(cn_fallback).
      - Unicode names are converted to A-labels (IDNA 2008 with the UTS 46 non-transitional mapping, as clients
        resolve them; the C(idna) Python package is used where installed).
    type: list
    elements: str
    default: []
  cn_fallback:
    description:
      - Also match O(names) against the subject CN of a certificate that has no subjectAltName, as legacy clients
        do (OpenSSL's default host check, for example fetchmail and Postfix's SMTP client). Such a match still gives
        a C(cn_only) warning.
      - V(false) judges for current clients (Thunderbird, Apple Mail, Chromium-based clients, Python, Go, rustls),
        which ignore the CN.
    type: bool
    default: false
  max_chain_depth:
    description:
      - The most intermediate certificates allowed between the leaf and the trust anchor; deeper paths are not
        followed and give C(chain_too_deep). The default is what cryptography's verifier allows.
    type: int
    default: 8
  valid_at:
    description:
      - Judge validity at this time instead of now, as an ISO 8601 date or date-time (UTC unless an offset is
        given), for example V(2027-01-31) to see what will have expired by then.
      - It must fall within the years 1 to 9999 (UTC).
      - Or a time relative to now, as community.crypto takes it, a sign and weeks, days, hours, minutes or
        seconds, for example V(+30d) or V(-1w2d12h).
    type: str
  expires_soon_days:
    description:
      - Report an issue with code C(expires_soon) for each certificate of the chain that expires within
        this many days.
      - From 0 to 36500 (a century).
      - O(expiry_warning) replaces it when given.
    type: int
    default: 30
  expiry_warning:
    description:
      - Report C(expires_soon) (a warning) for each certificate of the chain, leaf, intermediates and root,
        that expires within this threshold.
      - Days (V(30) or V(30d)), or a share of each certificate's own lifetime (V(33%)), which fits
        certificates of any lifetime; ACME clients renew when a third of the lifetime is left.
      - Default O(expires_soon_days) days.
    type: str
  expiry_critical:
    description:
      - Report C(expires_critical) (an error) for each certificate of the chain that expires within this
        threshold, in days or as a share of its lifetime as O(expiry_warning). Unset, nothing is critical
        before it expires.
    type: str
requirements:
  - Python >= 3.9 and cryptography >= 36.0 on the host that runs the module
"""

    FILES = r"""
options:
  path:
    description:
      - Files with the certificates to analyse, on the host that runs the module, in any order and any
        mix of formats.
      - PEM with any surrounding text (C(Bag Attributes), C(subject=) lines, comments), CRLF line ends or a
        UTF-8 BOM; DER; PKCS#7 (C(.p7b), C(.p7c), PEM or DER); PKCS#12 (C(.p12), C(.pfx)).
      - Private keys found in these files are used for O(private_key_path)'s key match too.
      - Give O(path) or O(content) (or both).
    type: list
    elements: path
  content:
    description:
      - PEM text with certificates, analysed after the files of O(path). Kept out of logs, since it may hold a
        private key.
    type: str
  private_key_path:
    description:
      - The private key of the leaf (PKCS#1, PKCS#8, SEC1, DER, or a PKCS#12 file), checked against the leaf.
      - The key never appears in any result or message.
    type: path
    aliases: [privatekey_path]
  private_key_passphrase:
    description:
      - Passphrase of an encrypted private key.
    type: str
    aliases: [privatekey_passphrase]
  pkcs12_passphrase:
    description:
      - Passphrase of PKCS#12 files among O(path) or O(private_key_path).
    type: str
"""

    ENDPOINTS = r"""
options:
  endpoints:
    description:
      - Live TLS endpoints to probe. Each is connected to, spoken to in its protocol up to STARTTLS where the
        protocol uses it, and its certificate chain is captured exactly as sent, even when it does not verify,
        then judged like a file.
      - The certificate must be valid for O(endpoints[].server_name) (or O(endpoints[].address) when that is a
        name) and for every entry of O(names).
    type: list
    elements: dict
    suboptions:
      address:
        description:
          - What to connect to, a host name or an IPv4 or IPv6 address, for example one backend behind a load
            balancer.
        type: str
        required: true
      port:
        description:
          - The TCP port.
        type: int
        required: true
      protocol:
        description:
          - How TLS starts. V(smtp) and V(lmtp) use EHLO/LHLO and STARTTLS, V(imap) STARTTLS, V(pop3) STLS,
            V(sieve) ManageSieve STARTTLS; V(smtps), V(imaps), V(pop3s) and V(tls) start with TLS at once.
          - Default from the port, 25 and 587 V(smtp), 465 V(smtps), 143 V(imap), 993 V(imaps), 110 V(pop3),
            995 V(pop3s), 4190 V(sieve), 24 V(lmtp), any other V(tls).
        type: str
        choices: [smtp, lmtp, imap, pop3, sieve, tls, smtps, imaps, pop3s]
      server_name:
        description:
          - The public name clients use, for example the load balancer's name. Sent as SNI and used for the
            identity check.
          - Checked as O(names) are before any endpoint is probed; a host name that is not valid fails the task.
        type: str
      label:
        description:
          - A name for the endpoint in results and messages, for example the backend's inventory name.
        type: str
      send_sni:
        description:
          - Send O(endpoints[].server_name) as SNI. V(false) shows the certificate a server presents to clients
            that send no SNI.
        type: bool
        default: true
      proxy_protocol:
        description:
          - Send a HAProxy PROXY protocol header of this version first, for backends that only accept
            connections from a load balancer.
        type: str
        choices: [v1, v2]
      every_address:
        description:
          - Probe every address O(endpoints[].address) resolves to (A and AAAA records) as an endpoint of its
            own, for example to check a dual-stack name over IPv4 and IPv6. The name stays the server name
            (SNI and identity check), so addresses that present different chains get C(backend_mismatch).
          - With V(false), the addresses are tried in the resolver's order until one accepts the connection,
            and RV(mailops.tls.mail_tls_endpoint_info#module:endpoints[].peer_address) says which one did.
          - The name lookup counts against O(timeout) (with V(true), each lookup has a deadline of its own
            before the probes start).
        type: bool
        default: false
      backends:
        description:
          - This endpoint is a load balancer in front of this many servers, which may each serve another chain.
            It is probed one connection at a time until that many different chains answered (then every server
            was seen) or O(endpoints[].probes) probes were made, and each probe is judged and compared like an
            endpoint of its own (different chains are a C(backend_mismatch)).
          - The result's RV(sampled) says how many probes were made and how many different chains answered.
          - From 1 to 1000.
        type: int
      probes:
        description:
          - The bound for O(endpoints[].backends), at least 1. A round-robin balancer reaches every server within
            O(endpoints[].backends) probes; the default, n * ln(100 n) rounded up (18 for 3 servers), reaches
            every one of n servers chosen at random with 99% certainty. At most 1000.
        type: int
  key_types:
    description:
      - Ask each endpoint separately for its RSA and its ECDSA certificate (servers with dual certificates).
      - To choose, the probe offers only TLS 1.2 cipher suites of that key type.
    type: list
    elements: str
    choices: [rsa, ecdsa]
    default: []
  timeout:
    description:
      - Seconds each probe may take in total, name lookup, connect, protocol dialogue and handshake together.
        One slow or hostile endpoint never delays the others beyond this.
      - More than 0 and at most 3600.
    type: float
    default: 10
  concurrency:
    description:
      - How many endpoints are probed at once, from 1 to 1024. The probes of one load balancer
        (O(endpoints[].backends)) are made one after another.
    type: int
    default: 16
  expected_leaves:
    description:
      - SHA-256 fingerprints of the leaf certificates every endpoint must present, for example the chain just
        deployed (any case, with or without colons).
      - An endpoint presenting another leaf gets C(old_chain_served), and where chains are compared
        (C(backend_mismatch), C(service_mismatch)) the chain with an expected leaf is the reference, however
        few endpoints present it.
    type: list
    elements: str
    default: []
"""
