# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_tls_deploy's action: read the operator's certificates and keys on the controller and send them with the
module, so they reach the host in the module's own transfer instead of one copy task per file."""
from __future__ import annotations

import base64
import os
import stat

from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

SOURCE_OPTIONS = ("certificates", "alt_certificates", "pool", "roots", "private_key", "alt_private_key")
# As the modules' own cap on one input (load.MAX_INPUT_BYTES), for everything sent at once.
MAX_BYTES = 64 * 1024 * 1024


class ActionModule(ActionBase):

    TRANSFERS_FILES = False  # the files travel inside the module's arguments

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if not boolean(args.get("remote_src", False), strict=False):
            try:
                args["sources"] = self._sources(args)
            except (AnsibleError, OSError) as exc:
                result.update(failed=True, msg=f"not deployable, nothing was changed.\n{exc}")
                return result
            for option in SOURCE_OPTIONS:
                args.pop(option, None)
        result.update(self._execute_module(module_name="mailops.tls.mail_tls_deploy", module_args=args,
                                           task_vars=task_vars))
        return result

    def _sources(self, args: dict) -> list:
        """Every input file, read on the controller, with the option and controller path it came from."""
        sources, budget = [], [MAX_BYTES]
        for option in SOURCE_OPTIONS:
            given = args.get(option) or []
            for path in [given] if isinstance(given, str) else given:
                if not isinstance(path, str) or not path:
                    raise AnsibleError(f"{option}: {path!r} is not a file name; give paths of files or directories")
                found = self._find_needle("files", path)
                directory = os.path.isdir(found)
                names = sorted(os.path.join(found, n) for n in os.listdir(found)) if directory else [found]
                files = [{"name": os.path.basename(name), "data": _read(name, budget, option)}
                         for name in names if not directory or os.path.isfile(name)]
                sources.append({"option": option, "path": path, "directory": directory, "files": files})
        return sources


def _read(path: str, budget: list, option: str) -> str:
    """A regular file's bytes in base64; FIFOs, devices and inputs past the size cap are refused, never waited on."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise AnsibleError(f"{option}: {path} on the controller is not a regular file: name a certificate or "
                               "key file, or a directory of them")
        data = handle.read(budget[0] + 1)
    budget[0] -= len(data)
    if budget[0] < 0:
        raise AnsibleError(f"{option}: {path} on the controller takes the inputs past {MAX_BYTES // 2**20} MiB in "
                           "all: certificates and keys are a few KiB each; name the right files")
    return base64.b64encode(data).decode()
