# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""The one exception hierarchy of the library; modules catch MailTlsError once and call fail_json."""
from __future__ import annotations


class MailTlsError(Exception):
    """Base class: the message says what is wrong, where, and how to fix it."""


class DependencyError(MailTlsError):
    """A Python library the collection needs is missing or too old."""


class InputError(MailTlsError):
    """An option or a file given by the operator cannot be used as it is."""
