# SPDX-License-Identifier: GPL-3.0-or-later
"""The system trust store as OpenSSL finds it: SSL_CERT_FILE, SSL_CERT_DIR, then the Python's OpenSSL defaults."""
from __future__ import annotations

import ssl

import pki
import pytest

from ansible_collections.mailops.tls.plugins.module_utils import analysis


@pytest.fixture(scope="module")
def company():
    return pki.hierarchy("mail.example.test")


@pytest.fixture
def chain_file(tmp_path, company):
    path = tmp_path / "fullchain.pem"
    path.write_bytes(pki.pem_bundle(company.leaf, *company.intermediates))
    return str(path)


@pytest.fixture
def no_environment(monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def trusted(chain_file: str) -> bool:
    request = analysis.load_request(paths=[chain_file], system_roots=True)
    return analysis.analyze(request).trusted


def test_ssl_cert_file_names_the_store(monkeypatch, tmp_path, company, chain_file, no_environment):
    assert not trusted(chain_file)
    bundle = tmp_path / "private-store.pem"
    bundle.write_bytes(pki.pem_bundle(pki.root("Another Root"), company.root))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert analysis.system_trust_store() == str(bundle)
    assert trusted(chain_file)


def test_ssl_cert_dir_names_a_hashed_directory_read_by_hash_names_only(monkeypatch, tmp_path, company, chain_file,
                                                                       no_environment):
    store = tmp_path / "certs"
    store.mkdir()
    (store / "0a1b2c3d.0").write_bytes(company.root.pem)
    (store / "unhashed.pem").write_bytes(pki.root("Not Looked Up").pem)  # OpenSSL's lookup never opens this
    monkeypatch.setenv("SSL_CERT_DIR", str(store))
    assert analysis.system_trust_store() == str(store)
    assert [c.source for c in analysis.load_trust_store(str(store)).certificates] == [f"{store}/0a1b2c3d.0"]
    assert trusted(chain_file)


def test_ssl_cert_file_wins_over_ssl_cert_dir(monkeypatch, tmp_path, no_environment):
    bundle, directory = tmp_path / "bundle.pem", tmp_path / "dir"
    bundle.write_bytes(pki.root().pem)
    directory.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(directory))
    assert analysis.system_trust_store() == str(bundle)


def test_without_the_variables_the_pythons_openssl_default_is_read(monkeypatch, tmp_path, no_environment):
    defaults = ssl.get_default_verify_paths()
    if not (defaults.cafile or defaults.capath):
        pytest.skip("this Python's OpenSSL has no default trust store")
    assert analysis.system_trust_store() == (defaults.cafile or defaults.capath)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    assert analysis.system_trust_store() not in (None, str(tmp_path / "missing.pem"))
