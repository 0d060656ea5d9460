# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests for fileset.py: a set of files written as one transaction, killed at every step; destinations checked."""
from __future__ import annotations

import json
import os
import re
import signal
import stat
from pathlib import Path

import pytest

from ansible_collections.mailops.tls.plugins.module_utils import fileset
from ansible_collections.mailops.tls.plugins.module_utils.errors import InputError
from ansible_collections.mailops.tls.plugins.module_utils.fileset import FileSet, Write, WriteError

OLD = {"chain": b"old chain\n" * 50, "key": b"old key\n" * 50}
NEW = {"chain": b"new chain\n" * 70, "key": b"new key\n" * 70, "root": b"new root\n" * 30}


def layout(tmp_path: Path) -> dict:
    """Two directories as a server has them: the chain and the key exist (old), the root is new."""
    paths = {"chain": tmp_path / "certs" / "chain.pem", "key": tmp_path / "private" / "key.pem",
             "root": tmp_path / "certs" / "root.pem"}
    for directory in ("certs", "private"):
        (tmp_path / directory).mkdir(mode=0o755, parents=True, exist_ok=True)
    for name, data in OLD.items():
        paths[name].write_bytes(data)
        paths[name].chmod(0o640 if name == "key" else 0o644)
    return paths


def writes(paths: dict) -> list:
    return [Write(str(paths["chain"]), NEW["chain"], 0o644, backup=True),
            Write(str(paths["key"]), NEW["key"], 0o600, backup=True),
            Write(str(paths["root"]), NEW["root"], 0o644)]


def state(paths: dict) -> dict:
    """name -> (bytes, mode) of each destination, None when absent."""
    return {name: (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) if path.exists() else None
            for name, path in paths.items()}


ALL_OLD = {"chain": (OLD["chain"], 0o644), "key": (OLD["key"], 0o640), "root": None}
ALL_NEW = {"chain": (NEW["chain"], 0o644), "key": (NEW["key"], 0o600), "root": (NEW["root"], 0o644)}


def leftovers(tmp_path: Path) -> list:
    return sorted(name for directory in ("certs", "private") for name in os.listdir(tmp_path / directory)
                  if ".mailtls-" in name)


def steps_of(action) -> list:
    """The checkpoints an action passes, in order."""
    seen = []
    action(seen.append)
    return seen


def killed_at(step: int, action) -> None:
    """Run action in a child process that SIGKILLs itself at its checkpoint number step, as kill -9 would."""
    passed = []

    def checkpoint(_name):
        if len(passed) == step:
            os.kill(os.getpid(), signal.SIGKILL)
        passed.append(_name)

    child = os.fork()
    if child == 0:  # pragma: no cover (the child never returns to pytest)
        try:
            action(checkpoint)
        finally:
            os._exit(3)
    _pid, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"the writer was not killed at {step}"


def commit(paths: dict):
    def action(checkpoint):
        with FileSet([str(p) for p in paths.values()], checkpoint=checkpoint) as files:
            files.commit(writes(paths))
    return action


def recover(paths: dict):
    def action(checkpoint):
        with FileSet([str(p) for p in paths.values()], checkpoint=checkpoint):
            pass
    return action


def test_a_commit_writes_every_file_with_its_mode_and_keeps_backups_as_the_old_files(tmp_path):
    paths = layout(tmp_path)
    old_inode = paths["key"].stat().st_ino
    with FileSet([str(p) for p in paths.values()]) as files:
        backups = files.commit(writes(paths))
    assert state(paths) == ALL_NEW
    assert leftovers(tmp_path) == []
    assert sorted(backups) == [str(paths["chain"]), str(paths["key"])]
    # The backup is the old file itself (a second name for its inode): never a copy that passed through another
    # mode, so the old key is never readable by anyone it was not readable by before.
    backup = Path(backups[str(paths["key"])])
    assert backup.read_bytes() == OLD["key"]
    assert (backup.stat().st_ino, stat.S_IMODE(backup.stat().st_mode)) == (old_inode, 0o640)


def test_killed_at_every_step_every_file_is_whole_and_the_next_call_makes_the_set_all_old_or_all_new(tmp_path):
    steps = steps_of(commit(layout(tmp_path / "count")))
    assert len(steps) >= 15, steps
    outcomes = []
    for step in range(len(steps)):
        where = tmp_path / str(step)
        paths = layout(where)
        killed_at(step, commit(paths))
        # Between the kill and the next call, a server reading any one file reads a whole old or new file.
        for name, found in state(paths).items():
            assert found in (ALL_OLD[name], ALL_NEW[name]), (steps[step], name)
        recovery = steps_of(recover(paths))
        outcome = state(paths)
        assert outcome in (ALL_OLD, ALL_NEW), steps[step]
        assert leftovers(where) == [], steps[step]
        outcomes.append("new" if outcome == ALL_NEW else "old")
        # Killed while completing, at each of its steps in turn, the call after that still ends the same way.
        for recovery_step in range(len(recovery)):
            again = tmp_path / f"{step}-{recovery_step}"
            paths = layout(again)
            killed_at(step, commit(paths))
            killed_at(recovery_step, recover(paths))
            recover(paths)(lambda _name: None)
            assert state(paths) == outcome, (steps[step], recovery[recovery_step])
            assert leftovers(again) == []
    # Before the last rename the set stays old; once every file is renamed it stays new.
    last_rename = max(number for number, name in enumerate(steps) if name.startswith("renamed "))
    assert outcomes == ["old"] * last_rename + ["new"] * (len(steps) - last_rename)


def test_a_failure_halfway_puts_every_file_back_and_says_so(tmp_path):
    paths = layout(tmp_path)

    def someone_makes_a_directory_at_the_root_path(_new, destination):
        if destination == str(paths["root"]):
            paths["root"].mkdir()

    # The root's rename fails after the chain's and the key's succeeded.
    with FileSet([str(p) for p in paths.values()], prepare=someone_makes_a_directory_at_the_root_path) as files, \
            pytest.raises(WriteError) as failure:
        files.commit(writes(paths))
    paths["root"].rmdir()
    assert state(paths) == ALL_OLD
    assert failure.value.changed == ()
    assert "Is a directory" in str(failure.value)
    assert "every file was put back as it was, nothing changed" in str(failure.value)
    assert leftovers(tmp_path) == []


def test_a_new_file_never_exists_with_a_looser_mode_than_asked(tmp_path):
    paths = layout(tmp_path)
    modes = []

    def prepare(new, _destination):
        modes.append(stat.S_IMODE(os.stat(new).st_mode))

    with FileSet([str(p) for p in paths.values()], prepare=prepare) as files:
        files.commit(writes(paths))
    assert modes == [0o644, 0o600, 0o644]


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022, 0o077])
def test_new_files_are_never_writable_by_others_under_any_umask(umask):
    previous = os.umask(umask)
    try:
        assert fileset.new_file_mode() == 0o644 & ~umask
    finally:
        os.umask(previous)


# --- destinations -------------------------------------------------------------------------------------------------

def test_a_symbolic_link_is_refused_unless_followed(tmp_path):
    (tmp_path / "elsewhere.pem").write_bytes(b"x")
    (tmp_path / "link.pem").symlink_to(tmp_path / "elsewhere.pem")
    with pytest.raises(InputError, match=r"link\.pem is a symbolic link \(to .*elsewhere\.pem\): writes do not "
                                         r"follow links.*Set follow: true"):
        fileset.destination(str(tmp_path / "link.pem"))
    assert fileset.destination(str(tmp_path / "link.pem"), follow=True) == str(tmp_path / "elsewhere.pem")


def test_a_dangling_link_is_refused_too(tmp_path):
    (tmp_path / "link.pem").symlink_to(tmp_path / "nowhere.pem")
    with pytest.raises(InputError, match="is a symbolic link"):
        fileset.destination(str(tmp_path / "link.pem"))


def test_a_linked_directory_is_resolved(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert fileset.destination(str(tmp_path / "alias" / "f.pem")) == str(tmp_path / "real" / "f.pem")


def test_a_missing_directory_fails_except_in_check_mode(tmp_path):
    missing = tmp_path / "missing" / "dir" / "f.pem"
    with pytest.raises(InputError, match=f"the directory {tmp_path}/missing/dir does not exist; create it first"):
        fileset.destination(str(missing))
    assert fileset.destination(str(missing), check_mode=True) == str(missing)


def test_something_else_than_a_file_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for name in ("d", "fifo"):
        with pytest.raises(InputError, match="exists and is not a regular file"):
            fileset.destination(str(tmp_path / name))


def test_hard_links_and_links_have_one_identity(tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "c").symlink_to(tmp_path / "a")
    assert fileset.identity(str(tmp_path / "a")) == fileset.identity(str(tmp_path / "b")) \
        == fileset.identity(str(tmp_path / "c"))
    assert fileset.identity(str(tmp_path / "x" / ".." / "new")) == fileset.identity(str(tmp_path / "new"))


def test_two_outputs_that_are_one_file_are_refused(tmp_path):
    (tmp_path / "report.json").write_bytes(b"{}")
    os.link(tmp_path / "report.json", tmp_path / "copy.json")
    with pytest.raises(InputError, match=re.escape(
            f"{tmp_path}/copy.json is named for both the json_path and the html_path ({tmp_path}/report.json and "
            f"{tmp_path}/copy.json are one file): give each its own file")):
        fileset.check_distinct([("json_path", f"{tmp_path}/report.json"), ("html_path", f"{tmp_path}/copy.json")])
    fileset.check_distinct([("json_path", f"{tmp_path}/report.json"), ("html_path", f"{tmp_path}/report.html")])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
@pytest.mark.parametrize(("mode", "owner", "message"), [
    (0o777, 0, "users other than its owner can write the directory {d} (mode 0777)"),
    (0o1777, 0, "users other than its owner can write the directory {d} (mode 1777)"),
    (0o775, 0, "(mode 0775)"),
    (0o755, 65534, "the directory {d} belongs to uid 65534, neither root nor the user this task runs as"),
])
def test_a_key_is_not_written_where_others_can_change_it(tmp_path, mode, owner, message):
    directory = tmp_path / "keys"
    directory.mkdir()
    os.chown(directory, owner, 0)
    directory.chmod(mode)
    with pytest.raises(InputError, match=message.format(d=directory).replace("(", r"\(").replace(")", r"\)")):
        fileset.destination(str(directory / "key.pem"), private=True)
    fileset.destination(str(directory / "chain.pem"))  # what holds no key may go there


def test_a_key_may_go_below_a_sticky_directory_and_the_check_looks_at_ancestors(tmp_path):
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "mine").mkdir(mode=0o700)
    fileset.destination(str(sticky / "mine" / "key.pem"), private=True)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "mine").mkdir(mode=0o700)
    with pytest.raises(InputError, match=f"can write the directory {shared} "):
        fileset.destination(str(shared / "mine" / "key.pem"), private=True)


def planted_journal(tmp_path: Path, victim: Path, **changes) -> Path:
    """A journal that would have the next call remove victim, as a user who can write the directory could plant."""
    status = victim.stat()
    transaction = "0123456789abcdef"
    entry = {"path": str(victim), "staged": str(victim.parent / f".{victim.name}.mailtls-{transaction}.new"),
             "old": None, "staged_id": [status.st_dev, status.st_ino]}
    entry.update(changes)
    journal = victim.parent / f".mailtls-{transaction}.journal"
    journal.write_text(json.dumps({"format": 1, "copies": [str(journal)], "files": [entry]}))
    journal.chmod(0o600)
    return journal


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
@pytest.mark.parametrize(("plant", "message"), [
    (lambda journal: os.chown(journal, 65534, 65534),
     "it belongs to uid 65534 with mode 0600, not to this task's user with mode 0600"),
    (lambda journal: journal.chmod(0o644),
     "it belongs to uid 0 with mode 0644, not to this task's user with mode 0600"),
    (lambda journal: journal.write_text(journal.read_text().replace(".new", ".other")),
     "its content is not a journal of this module"),
])
def test_a_journal_this_module_did_not_write_is_refused_and_changes_nothing(tmp_path, plant, message):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    journal = planted_journal(tmp_path, victim)
    plant(journal)
    with pytest.raises(InputError, match=f"{journal} looks like the journal of an interrupted write, but "
                                         f"{re.escape(message)}: this module did not write it"), \
            FileSet([str(tmp_path / "new.pem")]):
        pass
    assert victim.read_bytes() == b"precious" and journal.exists()
