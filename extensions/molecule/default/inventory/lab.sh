#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# Inventory script: the molecule lab's hosts once it is up (an empty mail_backends group before).
exec python3 "${MOLECULE_PROJECT_DIRECTORY:?}/tests/demo/lab_deploy.py" inventory --dir "${MAILOPS_MOLECULE_LAB:?}" "$@"
