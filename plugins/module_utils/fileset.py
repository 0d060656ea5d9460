# SPDX-License-Identifier: GPL-3.0-or-later
# This module_utils file is private to the mailops.tls collection; its API may change without notice.
"""Writing a set of files as one transaction: after any failure or kill, every file is old or every file is new.

The files stay regular files at the paths servers read (Postfix and Dovecot open fixed paths), so the set is
made atomic with a journal, as databases do:

1. A journal listing every file is written into each directory of the set (``.mailtls-<id>.journal``).
2. Each new file is written beside its destination (``.<name>.mailtls-<id>.new``) with its final owner, group and
   mode, and flushed to disk; each existing destination gets a second hard link (``.<name>.mailtls-<id>.old``),
   which keeps the old file without copying it.
3. The journal is replaced by one that records each new file's inode: the set is prepared.
4. Each new file is renamed over its destination (one atomic rename each).
5. The old links become the backups or are removed, then the journals are removed.

Every call first takes an exclusive lock on each directory it writes and completes the journals a killed call
left there: when every destination already holds its new file, the old links are removed (all new); otherwise
every destination that holds its new file gets its old link back, or is removed when it did not exist before
(all old). A failure inside a call is rolled back the same way before it is reported.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional

from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError, MailTlsError

_JOURNAL = re.compile(r"\.mailtls-[0-9a-f]{16}\.journal")
LOCK_TIMEOUT = 60.0


class WriteError(MailTlsError):
    """Writing the set failed; changed lists the destinations that hold their new file all the same."""

    def __init__(self, message: str, changed: Sequence[str] = ()):
        super().__init__(message)
        self.changed = tuple(changed)


@dataclass(frozen=True)
class Write:
    """One file of a set: its resolved path, the bytes it must hold, its mode and (None: as the module's user)
    owner and group; backup keeps the file it replaces."""

    path: str
    data: bytes = field(repr=False)
    mode: int
    uid: Optional[int] = None
    gid: Optional[int] = None
    backup: bool = False


@dataclass(frozen=True)
class Existing:
    """A destination's current bytes and status, or None for both when there is no file."""

    data: Optional[bytes] = field(default=None, repr=False)
    status: Optional[os.stat_result] = None


def _no_checkpoint(_step: str) -> None:
    """Production: nothing happens between steps (tests kill the writer here)."""


def new_file_mode() -> int:
    """The mode of a new file without an explicit one: 0644 less the umask's bits, never group or world writable
    even under a permissive umask such as 000."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o644 & ~umask


def destination(path: str, follow: bool = False, private: bool = False, check_mode: bool = False) -> str:
    """The file to write for path: refuses a symbolic link unless follow, anything but a regular file, a missing
    directory (except in check mode, where an earlier task would create it) and, for a file that holds a private
    key, a directory other users can write."""
    absolute = os.path.abspath(_file_name(path))
    target = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    if os.path.islink(target):
        if not follow:
            raise InputError(f"{path} is a symbolic link (to {os.readlink(target)}): writes do not follow links, so "
                             "a link planted in the directory cannot redirect the file. Set follow: true to write "
                             "the file it points to, or remove the link")
        target = os.path.realpath(target)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        if not check_mode or os.path.lexists(directory):
            raise InputError(f"{path} cannot be written: the directory {directory} does not exist; create it first "
                             "(ansible.builtin.file with state: directory)")
    elif os.path.lexists(target) and not stat.S_ISREG(os.lstat(target).st_mode):
        raise InputError(f"{path} exists and is not a regular file: name a file")
    if private:
        check_private_directory(directory, path)
    return target


def _file_name(path: str) -> str:
    """path, once it is known to be one a file can have."""
    if "\x00" in path:
        raise InputError(f"{path!r} contains a NUL character, which no file name can hold")
    return path


def check_private_directory(directory: str, path: str) -> None:
    """Refuse a directory, or an ancestor of it, that users other than root and this module's user can change
    (as OpenSSH's StrictModes does): they could replace the key or swap in a link. A sticky ancestor such as
    /tmp is fine: nobody can rename or remove what others put in it. Missing directories (check mode) are
    skipped."""
    user = os.geteuid()
    current = directory
    while True:
        try:
            status = os.stat(current)
        except FileNotFoundError:
            status = None
        if status is not None:
            sticky_ancestor = current != directory and status.st_mode & stat.S_ISVTX
            if status.st_uid not in (0, user):
                raise InputError(f"{path} would hold a private key, but the directory {current} belongs to uid "
                                 f"{status.st_uid}, neither root nor the user this task runs as, who could replace "
                                 f"the key: chown root {current}, or write the key into a directory root owns")
            if status.st_mode & 0o022 and not sticky_ancestor:
                raise InputError(f"{path} would hold a private key, but users other than its owner can write the "
                                 f"directory {current} (mode {stat.S_IMODE(status.st_mode):04o}) and could replace "
                                 f"the key or plant a link: chmod go-w {current}, or write the key into a directory "
                                 "only its owner can write")
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def identity(path: str) -> tuple:
    """What a path names once links are resolved: its inode when it exists (so hard links compare equal), else its
    real path."""
    real = os.path.realpath(_file_name(path))
    try:
        status = os.stat(real)
    except OSError:
        return ("path", real)
    return ("inode", status.st_dev, status.st_ino)


def check_distinct(outputs: Sequence[tuple[str, str]]) -> None:
    """Refuse two outputs, given as (what it is, path), that name one file: the same path, or one reached through
    '..', a link or a hard link."""
    seen: dict[tuple, tuple[str, str]] = {}
    for what, path in outputs:
        key = identity(path)
        if key in seen:
            other_what, other_path = seen[key]
            alias = "" if other_path == path else f" ({other_path} and {path} are one file)"
            raise InputError(f"{path} is named for both the {other_what} and the {what}{alias}: give each its "
                             "own file")
        seen[key] = (what, path)


def existing(path: str) -> Existing:
    """The regular file at the resolved path, read without following a link (see destination)."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return Existing()
    except OSError as exc:
        raise InputError(f"{path} cannot be read: {exc.strerror}") from None
    with os.fdopen(handle, "rb") as stream:
        status = os.fstat(stream.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{path} exists and is not a regular file: name a file")
        return Existing(stream.read(), status)


def backup_name(path: str) -> str:
    """Where a replaced file is kept, named as Ansible's backup option names copies."""
    return f"{path}.{os.getpid()}.{time.strftime('%Y-%m-%d@%H:%M:%S')}~"


def pending(directories: Sequence[str]) -> list[str]:
    """The journals of interrupted writes in these directories, which the next writing call completes."""
    found = []
    for directory in sorted(set(directories)):
        with contextlib.suppress(OSError):
            found.extend(os.path.join(directory, name) for name in sorted(os.listdir(directory))
                         if _JOURNAL.fullmatch(name))
    return found


def write_public(files: Sequence[tuple[str, bytes]], check_mode: bool = False,
                 attributes: Callable[[str], bool] = lambda path: False) -> tuple[list[str], bool]:
    """Write public files (reports, a published root), given as (resolved path, bytes), as one transaction.

    A replaced file keeps its owner, group and mode, a new one gets new_file_mode(). attributes(path) applies the
    caller's owner, group and mode options to a file and says whether one changed: it runs on each new file before
    its rename, and on each file whose content stays. Returns the paths whose content changed (in check mode, would
    change) and whether attributes alone changed."""
    if check_mode:
        changed = [path for path, data in files if existing(path).data != data]
    else:
        with FileSet([path for path, _data in files], prepare=lambda new, _destination: attributes(new)) as fileset:
            writes = []
            for path, data in files:
                current = existing(path)
                if current.data == data:
                    continue
                status = current.status
                writes.append(Write(path, data, new_file_mode()) if status is None else
                              Write(path, data, stat.S_IMODE(status.st_mode), status.st_uid, status.st_gid))
            fileset.commit(writes)
        changed = [write.path for write in writes]
    kept = [path for path, _data in files if path not in changed and os.path.exists(path)]
    attributes_changed = [attributes(path) for path in kept]  # every file, not only up to the first change
    return changed, any(attributes_changed)


class FileSet:
    """A context that locks the directories of a set of files, completes interrupted writes found there, and
    commits a set of writes as one transaction.

    prepare(new, destination) runs on each new file before it is flushed (to set an SELinux context, for
    example); checkpoint(step) runs between every two file system steps (tests kill the process there)."""

    def __init__(self, paths: Sequence[str], prepare: Callable[[str, str], None] = lambda new, destination: None,
                 checkpoint: Callable[[str], None] = _no_checkpoint):
        self.directories = sorted({os.path.dirname(path) for path in paths})
        self.prepare = prepare
        self.checkpoint = checkpoint
        self._locks: list[int] = []

    def __enter__(self) -> FileSet:
        journals = pending(self.directories)
        named = {os.path.dirname(entry["path"]) for journal in journals
                 for entry in (_read(journal) or {}).get("files", ())}
        try:
            for directory in sorted(set(self.directories) | named):
                self._locks.append(_lock(directory))
            for journal in pending(self.directories):
                _complete(journal, self._sync, self.checkpoint)
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self._unlock()

    def _unlock(self) -> None:
        while self._locks:
            os.close(self._locks.pop())

    def _sync(self, directories) -> None:
        for directory in sorted(set(directories)):
            _fsync_directory(directory)

    def commit(self, writes: Sequence[Write]) -> dict:
        """Write every file or none; returns destination -> backup path for writes with backup."""
        if not writes:
            return {}
        transaction = secrets.token_hex(8)
        directories = sorted({os.path.dirname(w.path) for w in writes})
        copies = sorted(os.path.join(d, f".mailtls-{transaction}.journal") for d in directories)
        entries = [{"path": w.path, "staged": _sibling(w.path, transaction, "new"),
                    "old": _sibling(w.path, transaction, "old") if os.path.lexists(w.path) else None,
                    "staged_id": None} for w in writes]
        try:
            for copy in copies:
                _create(copy, _journal_bytes(copies, entries))
                self.checkpoint(f"journal {copy}")
            self._sync(directories)
            for write, entry in zip(writes, entries):
                entry["staged_id"] = self._stage(write, entry["staged"])
                self.checkpoint(f"staged {write.path}")
                if entry["old"]:
                    os.link(write.path, entry["old"], follow_symlinks=False)
                    self.checkpoint(f"linked the old {write.path}")
            self._sync(directories)
            for copy in copies:
                _create(copy + ".tmp", _journal_bytes(copies, entries))
                self.checkpoint(f"prepared journal {copy}")
                os.replace(copy + ".tmp", copy)
                self.checkpoint(f"replaced journal {copy}")
            self._sync(directories)
            for entry in entries:
                os.replace(entry["staged"], entry["path"])
                self.checkpoint(f"renamed {entry['path']}")
            self._sync(directories)
        except Exception as exc:
            raise self._rolled_back(copies[0], entries, exc) from None
        try:
            return self._finish(writes, entries, copies, directories)
        except OSError as exc:
            raise WriteError(f"every file was written, but removing the old copies failed ({_reason(exc)}); the "
                             "next run removes them", [w.path for w in writes]) from None

    def _stage(self, write: Write, staged: str) -> list[int]:
        """Write the new file with its final owner, group and mode, flushed to disk; returns its [dev, inode]."""
        handle = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(write.data)
            while view:
                view = view[os.write(handle, view):]
            status = os.fstat(handle)
            uid = status.st_uid if write.uid is None else write.uid
            gid = status.st_gid if write.gid is None else write.gid
            if (uid, gid) != (status.st_uid, status.st_gid):
                try:
                    os.fchown(handle, uid, gid)
                except PermissionError:
                    raise InputError(f"{write.path} cannot be given to uid {uid} and gid {gid}: this task's user "
                                     f"may not; run it as root (become: true) or drop the owner and group") from None
            os.fchmod(handle, write.mode)
            self.prepare(staged, write.path)
            os.fsync(handle)
            status = os.fstat(handle)
        finally:
            os.close(handle)
        return [status.st_dev, status.st_ino]

    def _rolled_back(self, journal: str, entries: list, cause: Exception) -> WriteError:
        """Undo a failed commit; the error says what failed and what, if anything, is still changed."""
        reason = _reason(cause)
        try:
            if os.path.lexists(journal):
                _complete(journal, self._sync, self.checkpoint)
            else:
                for entry in entries:
                    _remove(entry["staged"])
        except OSError as exc:
            changed = [e["path"] for e in entries if _holds(e)]
            return WriteError(f"writing failed: {reason}; undoing it failed too ({_reason(exc)}), so these files "
                              f"hold their new content: {', '.join(changed) or 'none'}. The next run completes the "
                              "undo", changed)
        return WriteError(f"writing failed: {reason}; every file was put back as it was, nothing changed")

    def _finish(self, writes: Sequence[Write], entries: list, copies: list, directories: list) -> dict:
        """Past the commit: keep or drop the old links, then drop the journals."""
        backups = {}
        for write, entry in zip(writes, entries):
            if entry["old"] and write.backup:
                backups[write.path] = backup_name(write.path)
                os.rename(entry["old"], backups[write.path])
            elif entry["old"]:
                os.unlink(entry["old"])
            self.checkpoint(f"finished {write.path}")
        for copy in copies:
            os.unlink(copy)
            self.checkpoint(f"removed journal {copy}")
        self._sync(directories)
        return backups


def _reason(exc: Exception) -> str:
    """An exception as a message: an OSError as its reason and file, without Python's '[Errno N]'."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return str(exc)


def _sibling(path: str, transaction: str, role: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.mailtls-{transaction}.{role}")


def _journal_bytes(copies: list, entries: list) -> bytes:
    return json.dumps({"format": 1, "copies": copies, "files": entries}, indent=1).encode()


def _create(path: str, data: bytes) -> None:
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(handle, data)
        os.fsync(handle)
    finally:
        os.close(handle)


def _read(journal: str) -> Optional[dict]:
    """A journal's record, or None when it is gone or was cut short while being created (then nothing was staged).

    Only a journal this module could have written is trusted: a regular file of this user, mode 0600, naming
    only the sibling files of its own transaction in directories that hold a copy of it. Anything else is
    refused, as a user who can write into the directory could plant it to have files renamed or removed."""
    try:
        handle = os.open(journal, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:  # completing another copy of it removed it
        return None
    except OSError:
        raise _untrusted(journal, "it cannot be opened as a file") from None
    with os.fdopen(handle, "rb") as stream:
        status = os.fstat(stream.fileno())
        if not stat.S_ISREG(status.st_mode) or status.st_uid != os.geteuid() or status.st_mode & 0o077:
            raise _untrusted(journal, f"it belongs to uid {status.st_uid} with mode "
                                      f"{stat.S_IMODE(status.st_mode):04o}, not to this task's user with mode 0600")
        data = stream.read(1 << 20)
    try:
        record = json.loads(data)
    except ValueError:
        return None
    if not _valid(record, journal):
        raise _untrusted(journal, "its content is not a journal of this module")
    return record


def _valid(record, journal: str) -> bool:
    """Whether record is the journal at that path: every name in it follows from the paths and the transaction."""
    transaction = os.path.basename(journal)[len(".mailtls-"):-len(".journal")]
    if not (isinstance(record, dict) and record.get("format") == 1 and isinstance(record.get("files"), list)
            and record["files"] and isinstance(record.get("copies"), list)):
        return False
    if not all(_valid_entry(entry, transaction) for entry in record["files"]):
        return False
    copies = sorted({os.path.join(os.path.dirname(e["path"]), f".mailtls-{transaction}.journal")
                     for e in record["files"]})
    return record["copies"] == copies and journal in copies


def _valid_entry(entry, transaction: str) -> bool:
    path = entry.get("path") if isinstance(entry, dict) else None
    if not (isinstance(path, str) and os.path.isabs(path) and os.path.normpath(path) == path):
        return False
    staged_id = entry.get("staged_id")
    return (entry.get("staged") == _sibling(path, transaction, "new")
            and entry.get("old") in (None, _sibling(path, transaction, "old"))
            and (staged_id is None or (isinstance(staged_id, list) and len(staged_id) == 2
                                       and all(isinstance(number, int) for number in staged_id))))


def _untrusted(journal: str, reason: str) -> InputError:
    return InputError(f"{journal} looks like the journal of an interrupted write, but {reason}: this module did "
                      "not write it, so it is left alone. Check who put it there, remove it, and run again")


def _holds(entry: dict) -> bool:
    """Whether the destination is the new file of this entry."""
    if entry["staged_id"] is None:
        return False
    try:
        status = os.lstat(entry["path"])
    except FileNotFoundError:
        return False
    return [status.st_dev, status.st_ino] == list(entry["staged_id"])


def _complete(journal: str, sync: Callable, checkpoint: Callable[[str], None]) -> None:
    """Finish what the writer of this journal left: all new when every file was renamed, else all old.

    Each step keeps that decision the same when it is interrupted in turn: a file that was not renamed never
    becomes new, and the old links are removed only once every file is back or every file is new."""
    record = _read(journal)
    if record is None:
        _remove(journal)
        return
    entries = record["files"]
    directories = {os.path.dirname(e["path"]) for e in entries}
    if not all(_holds(entry) for entry in entries):
        for entry in entries:
            if _holds(entry):
                if entry["old"]:
                    os.replace(entry["old"], entry["path"])
                else:
                    os.unlink(entry["path"])
                checkpoint(f"put back {entry['path']}")
        sync(directories)
    for entry in entries:
        _remove(entry["staged"])
        if entry["old"]:
            _remove(entry["old"])
        checkpoint(f"cleaned up {entry['path']}")
    sync(directories)
    for copy in record["copies"]:
        _remove(copy + ".tmp")
        _remove(copy)
        checkpoint(f"removed journal {copy}")
    sync(directories)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _lock(directory: str) -> int:
    """An exclusive lock on a directory, waited for up to LOCK_TIMEOUT seconds; returns the descriptor."""
    try:
        handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"the directory {directory} cannot be opened to write in it: {exc.strerror}") from None
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(handle)
                raise InputError(f"the directory {directory} cannot be locked: {exc.strerror}") from None
            if time.monotonic() > deadline:
                os.close(handle)
                raise InputError(f"another task has been writing in {directory} for {LOCK_TIMEOUT:.0f} s: let it "
                                 "finish and run this one again") from None
        time.sleep(0.05)


def _fsync_directory(directory: str) -> None:
    handle = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
