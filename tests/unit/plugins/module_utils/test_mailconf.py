# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for mailconf.py: what the deploy module reads from postconf, doveconf and dovecot.conf, and the settings and
warnings it plans from that. The inputs are postconf and doveconf output in the exact shape those commands print
(the live flows are tested against the lab's real Postfix and Dovecot in tests/integration/test_deploy_role.py)."""
from __future__ import annotations

import pytest

from ansible_collections.mailops.tls.plugins.module_utils import mailconf

POSTCONF_N = """\
compatibility_level = 3.6
smtpd_tls_chain_files = /etc/ssl/old/chain.pem
tlsproxy_tls_chain_files = /etc/ssl/proxy/chain.pem
smtpd_tls_loglevel = 0
empty_parameter =
"""
POSTCONF_P = """\
127.0.0.11:587/inet/smtpd_tls_chain_files = /etc/ssl/submission.pem
smtps/inet/smtpd_tls_wrappermode = yes
submission/inet/syslog_name = postfix/submission
"""


def postconf_runner(explicit: str = POSTCONF_N, master: str = POSTCONF_P, version: str = "3.7.11"):
    """argv -> output as postconf prints it for a main.cf setting `explicit` (effective: the same plus defaults)."""
    outputs = {("-h", "mail_version"): version + "\n", (): "smtpd_tls_loglevel = 0\nmyhostname = mx1\n" + explicit,
               ("-n",): explicit, ("-P",): master, ("-x", "-h", "smtpd_tls_CAfile"): "\n"}

    def run(argv):
        assert list(argv[:3]) == ["postconf", "-c", "/etc/postfix"], argv
        return 0, outputs[tuple(argv[3:])], ""
    return run


@pytest.mark.parametrize("text, expected", [
    ("3.7.11", (3, 7, 11)), ("2.3.19.1 (9b53102964)", (2, 3, 19, 1)), ("2.4.1-4", (2, 4, 1)), ("", ()),
    ("unknown", ())])
def test_versions_are_read_as_postconf_and_dovecot_print_them(text, expected):
    assert mailconf.version_tuple(text) == expected


def test_postfix_from_34_gets_one_chain_file_per_key_type():
    assert mailconf.read_postfix(postconf_runner(), "/etc/postfix").chain_files
    assert not mailconf.read_postfix(postconf_runner(version="3.3.0"), "/etc/postfix").chain_files
    assert mailconf.read_postfix(postconf_runner(version="3.3.0"), "/etc/postfix", version="3.4.0").chain_files


def test_only_parameters_that_differ_change_and_postscreens_proxy_is_pointed_back():
    postfix = mailconf.read_postfix(postconf_runner(), "/etc/postfix")
    files = mailconf.postfix_file_settings(True, {"chain_file": "/etc/ssl/mailops/postfix-chain.pem",
                                                  "alt_chain_file": "/etc/ssl/mailops/postfix-chain-alt.pem"}, True)
    assert files == {"smtpd_tls_chain_files": "/etc/ssl/mailops/postfix-chain.pem, "
                                              "/etc/ssl/mailops/postfix-chain-alt.pem"}
    desired = mailconf.postfix_desired(postfix, files, True, {"smtpd_tls_loglevel": 0})
    assert desired["tlsproxy_tls_chain_files"] == "$smtpd_tls_chain_files"
    changes = mailconf.postfix_changes(postfix, desired)
    assert changes == {"smtpd_tls_chain_files": files["smtpd_tls_chain_files"],
                       "tlsproxy_tls_chain_files": "$smtpd_tls_chain_files"}  # loglevel 0 is already 0
    codes = [(w["code"], w["message"].split(" ")[3]) for w in mailconf.postfix_warnings(postfix, desired, changes)]
    assert codes == [("setting_overridden", "127.0.0.11:587/inet"), ("tlsproxy_overridden", "had")]


def test_tlsproxy_left_alone_when_asked_or_already_following():
    postfix = mailconf.read_postfix(postconf_runner(explicit="tlsproxy_tls_chain_files = $smtpd_tls_chain_files\n"),
                                    "/etc/postfix")
    files = {"smtpd_tls_chain_files": "/new.pem"}
    assert "tlsproxy_tls_chain_files" not in mailconf.postfix_desired(postfix, files, True, {})
    other = mailconf.read_postfix(postconf_runner(), "/etc/postfix")
    assert "tlsproxy_tls_chain_files" not in mailconf.postfix_desired(other, files, False, {})


def test_legacy_postfix_files_name_the_ecdsa_pair():
    files = {"cert_file": "/c.pem", "key_file": "/k.pem", "alt_cert_file": "/ca.pem", "alt_key_file": "/ka.pem"}
    assert mailconf.postfix_file_settings(False, files, True) == {
        "smtpd_tls_cert_file": "/c.pem", "smtpd_tls_key_file": "/k.pem", "smtpd_tls_eccert_file": "/ca.pem",
        "smtpd_tls_eckey_file": "/ka.pem"}


def test_parameters_set_and_removed_in_one_call_each():
    calls = []
    mailconf.set_parameters(lambda argv: calls.append(list(argv)) or (0, "", ""), "/etc/postfix",
                            {"a": "1", "b": None, "c": "x y"})
    assert calls == [["postconf", "-c", "/etc/postfix", "-e", "a=1", "c=x y"], ["postconf", "-c", "/etc/postfix",
                                                                                "-X", "b"]]


def test_a_failing_command_is_named_with_its_exit_code_and_output():
    with pytest.raises(mailconf.CommandError, match=r"postconf -c /x -e a=1 failed \(exit 1\): postconf: fatal: no"):
        failing = ["postconf", "-c", "/x", "-e", "a=1"]
        mailconf.checked(lambda argv: (1, "", "postconf: fatal:\n  no main.cf\n"), failing)


def dovecot(conf: str, version: str = "2.3.19.1") -> mailconf.Dovecot:
    return mailconf.Dovecot("/etc/dovecot/dovecot.conf", version, version, conf)


@pytest.mark.parametrize("conf, included", [
    ("!include conf.d/*.conf\n", True),
    ("!include_try /etc/dovecot/conf.d/99-*.conf\n", True),
    ("!include conf.d/10-*.conf\n", False),
    ("!include conf.d/*/x.conf\n", False),
    ("protocol imap {\n  !include conf.d/*.conf\n}\n", False),  # inside a section
    ("# !include conf.d/*.conf\n", False),
    ("", False)])
def test_the_dropin_counts_as_read_only_through_a_top_level_include(conf, included):
    assert mailconf.dropin_included(dovecot(conf), "/etc/dovecot/conf.d/99-mailops-tls.conf") is included


def test_the_include_line_goes_at_the_end_on_a_line_of_its_own():
    assert mailconf.with_include("ssl = yes", "/d.conf") == "ssl = yes\n!include_try /d.conf\n"
    assert mailconf.with_include("ssl = yes\n", "/d.conf") == "ssl = yes\n!include_try /d.conf\n"


def test_dovecot_settings_by_version():
    files = {"cert": "/f.pem", "key": "/k.pem", "alt_cert": "/fa.pem", "alt_key": "/ka.pem"}
    assert mailconf.dovecot_expected(dovecot(""), files, False) == {"ssl_cert": "</f.pem", "ssl_key": "</k.pem"}
    assert mailconf.dovecot_expected(dovecot("", "2.4.1"), files, True) == {
        "ssl_server_cert_file": "/f.pem", "ssl_server_key_file": "/k.pem", "ssl_server_alt_cert_file": "/fa.pem",
        "ssl_server_alt_key_file": "/ka.pem"}
    text = mailconf.dropin_text(dovecot("", "2.4.1"), {"ssl_server_cert_file": "/f.pem"})
    assert [line for line in text.splitlines() if not line.startswith("#")] == ["ssl_server_cert_file = /f.pem"]


def test_effective_settings_of_24_come_from_the_ssl_server_filter():
    printed = "ssl_server {\n  cert_file = /etc/other.pem\n  key_file = /k.pem\n}\n"
    effective = mailconf.effective_settings(lambda argv: (0, printed, ""), "/etc/dovecot/dovecot.conf", True,
                                            ["cert", "key", "ca"])
    assert effective == {"cert": "/etc/other.pem", "key": "/k.pem", "ca": ""}
    expected = {"ssl_server_cert_file": "/f.pem", "ssl_server_key_file": "/k.pem"}
    (warning,) = mailconf.dovecot_overrides(dovecot("", "2.4.1"), expected, effective, "/d.conf")
    assert warning["code"] == "setting_overridden" and "effective ssl_server_cert_file is /etc/other.pem" in \
        warning["message"]


def test_effective_settings_of_23_are_read_line_by_line_and_a_failing_doveconf_gives_none():
    assert mailconf.effective_settings(lambda argv: (0, "</a.pem\n</b.pem\n", ""), "/c", False, ["cert", "key"]) == {
        "cert": "</a.pem", "key": "</b.pem"}
    assert mailconf.effective_settings(lambda argv: (89, "", "doveconf: Fatal"), "/c", False, ["cert"]) == {}
