# SPDX-License-Identifier: GPL-3.0-or-later
"""The publish_root role through the real ansible-playbook: files, pages, fingerprints against openssl,
idempotence, check mode, diff mode, warnings, and the root taken from chain facts."""
from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import pki
from run_playbook import ANSIBLE_PLAYBOOK, run_playbook

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-playbook is not installed here")
OPENSSL = shutil.which("openssl")
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOSTILE_NAME = 'Example <b>"Private"</b> & Root CA'


def play(role_vars: dict, pre_tasks: list = ()) -> list:
    return [{"name": "Publish a root", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "pre_tasks": list(pre_tasks),
             "roles": [{"role": "mailops.tls.publish_root", "vars": role_vars}]}]


def openssl_fingerprint(path: Path, digest: str, inform: str = "PEM") -> str:
    out = subprocess.run([OPENSSL, "x509", "-inform", inform, "-in", str(path), "-noout", "-fingerprint",
                          f"-{digest}"], capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


@pytest.fixture(scope="module")
def ca() -> pki.Hierarchy:
    return pki.hierarchy("mail.example.test", depth=1, key_type="rsa")


@pytest.fixture(scope="module")
def hostile_root() -> pki.Issued:
    return pki.root(HOSTILE_NAME)


@pytest.fixture(scope="module")
def published(tmp_path_factory, hostile_root):
    """The role run twice on a hostile-named root, then once more in check mode: (dest, runs)."""
    base = tmp_path_factory.mktemp("publish")
    src = base / "root.pem"
    src.write_bytes(b"Bag Attributes: junk around the PEM block\n" + hostile_root.pem)
    dest = base / "www" / "ca"
    role_vars = {"mail_tls_publish_root_dest": str(dest), "mail_tls_publish_root_src": [str(src)],
                 "mail_tls_publish_root_contact": "the <helpdesk> & co, +1 555 0100",
                 "mail_tls_publish_root_server_names": ["mail.example.test"]}
    runs = [run_playbook(base, play(role_vars), args=("--diff",)) for _turn in range(2)]
    runs.append(run_playbook(base, play(role_vars), args=("--check", "--diff")))
    return dest, runs


def test_first_run_writes_the_certificates_and_pages(published, hostile_root):
    dest, runs = published
    assert runs[0].returncode == 0, runs[0].output
    slug = "example-b-private-b-root-ca"
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{slug}.{suffix}"
                                                            for suffix in ("pem", "crt", "cer", "html", "txt"))
    assert (dest / f"{slug}.cer").read_bytes() == hostile_root.der
    for suffix in ("pem", "crt"):
        assert ssl.PEM_cert_to_DER_cert((dest / f"{slug}.{suffix}").read_text()) == hostile_root.der
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in dest.iterdir())


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
@pytest.mark.parametrize("digest", ["md5", "sha1", "sha256"])
def test_pages_show_the_fingerprints_openssl_computes(published, digest):
    dest, _runs = published
    slug = "example-b-private-b-root-ca"
    expected = openssl_fingerprint(dest / f"{slug}.cer", digest, "DER")
    assert expected == openssl_fingerprint(dest / f"{slug}.pem", digest)
    assert expected in (dest / f"{slug}.html").read_text()
    assert expected in (dest / f"{slug}.txt").read_text()


def test_pages_show_subject_validity_serial_and_install_steps(published, hostile_root):
    dest, _runs = published
    slug = "example-b-private-b-root-ca"
    text = (dest / f"{slug}.txt").read_text()
    html = (dest / f"{slug}.html").read_text()
    serial = hostile_root.cert.serial_number
    serial_hex = ":".join(f"{b:02X}" for b in serial.to_bytes((serial.bit_length() + 8) // 8, "big"))
    for page in (text, html):
        assert serial_hex in page
        assert hostile_root.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ") in page
        for client in ("Thunderbird", "Windows", "Outlook", "macOS", "iPhone", "Android", "fetchmail",
                       "sslcertfile", "sslcertck", "sslfingerprint"):
            assert client in page
    assert 'sslcertfile "/home/you/.fetchmail/example-b-private-b-root-ca.pem"' in text
    assert "poll mail.example.test proto IMAP" in text


def test_html_page_is_escaped_and_self_contained(published):
    dest, _runs = published
    html = (dest / "example-b-private-b-root-ca.html").read_text()
    assert "<b>" not in html and "<helpdesk>" not in html
    assert "&lt;b&gt;&#34;Private&#34;&lt;/b&gt; &amp; Root CA" in html or "&lt;b&gt;&quot;Private" in html
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page loads nothing from elsewhere"
    assert "<link" not in html.lower()


def test_second_run_changes_nothing(published):
    _dest, runs = published
    assert runs[1].returncode == 0, runs[1].output
    assert runs[1].changed == 0, runs[1].stdout


def test_check_mode_on_a_fresh_directory_writes_nothing(tmp_path, hostile_root):
    src = tmp_path / "root.pem"
    src.write_bytes(hostile_root.pem)
    dest = tmp_path / "www" / "ca"
    run = run_playbook(tmp_path, play({"mail_tls_publish_root_dest": str(dest),
                                       "mail_tls_publish_root_src": [str(src)]}), args=("--check",))
    assert run.returncode == 0, run.output
    assert run.changed >= 3
    assert not (tmp_path / "www").exists()


def test_check_and_diff_mode_after_a_change_name_the_certificates_not_their_bytes(published, tmp_path):
    dest, runs = published
    assert runs[2].returncode == 0, runs[2].output
    assert runs[2].changed == 0
    other = pki.root("Another Root")
    src = tmp_path / "other.pem"
    src.write_bytes(other.pem)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    run = run_playbook(tmp_path, play({"mail_tls_publish_root_dest": str(dest), "mail_tls_publish_root_src": [str(src)],
                                       "mail_tls_publish_root_basename": "example-b-private-b-root-ca"}),
                       args=("--check", "--diff"))
    assert run.returncode == 0, run.output
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    assert "CN=Another Root,O=mailops test, SHA-256" in run.stdout
    assert "BEGIN CERTIFICATE" not in run.stdout


def test_intermediate_and_publicly_trusted_roots_are_published_with_warnings(tmp_path, ca):
    intermediate = tmp_path / "intermediate.pem"
    intermediate.write_bytes(ca.intermediates[0].pem)
    run = run_playbook(tmp_path, play({"mail_tls_publish_root_dest": str(tmp_path / "a"),
                                       "mail_tls_publish_root_src": [str(intermediate)]}))
    assert run.returncode == 0, run.output
    assert "is not self-signed" in run.output
    if not SYSTEM_BUNDLE.exists():
        pytest.skip("no system trust store to take a public root from")
    public = tmp_path / "public.pem"
    bundle = SYSTEM_BUNDLE.read_text()
    public.write_text(bundle[:bundle.index("-----END CERTIFICATE-----") + 26])
    run = run_playbook(tmp_path, play({"mail_tls_publish_root_dest": str(tmp_path / "b"),
                                       "mail_tls_publish_root_src": [str(public)]}))
    assert run.returncode == 0, run.output
    assert "publicly trusted root" in run.output
    assert "is not self-signed" not in run.output


def test_root_from_chain_facts_found_by_fingerprint(tmp_path, ca):
    chain = tmp_path / "fullchain.pem"
    chain.write_bytes(pki.pem_bundle(ca.leaf, *ca.intermediates))
    roots = tmp_path / "roots"
    roots.mkdir()
    (roots / "private-root.pem").write_bytes(ca.root.pem)
    (roots / "other-root.pem").write_bytes(pki.root("Unrelated Root").pem)
    facts_task = {"name": "Analyse the deployed chain", "mailops.tls.mail_tls_chain_facts": {
        "path": [str(chain)], "roots": [str(roots)], "system_roots": False}}
    dest = tmp_path / "ca"
    run = run_playbook(tmp_path, play({"mail_tls_publish_root_dest": str(dest),
                                       "mail_tls_publish_root_chain": "{{ ansible_facts.mail_tls_chain }}",
                                       "mail_tls_publish_root_roots": [str(roots)]}, [facts_task]))
    assert run.returncode == 0, run.output
    assert (dest / "test-root-ca.cer").read_bytes() == ca.root.der
    assert "WARNING" not in run.output


def test_a_chain_without_root_is_refused_with_a_clear_message(tmp_path):
    run = run_playbook(tmp_path, play({"mail_tls_publish_root_dest": str(tmp_path / "ca"),
                                       "mail_tls_publish_root_chain": {"root": None, "chain": []}}))
    assert run.returncode != 0
    assert "a chain that ends in no root has none" in run.output.replace("\n", " ")
