#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Run pytest on one directory and never let "no tests collected" (exit code 5) pass unnoticed.
# usage: run_pytest.sh [--if-tests] PYTHON DIR [PYTEST ARGS...]
#   --if-tests  a directory without any test_*.py / *_test.py file is reported and passes
#               (for suites that do not exist yet); without it, or when test files exist but
#               pytest collects nothing, the step fails.
set -uo pipefail

if_tests=no
if [ "${1:-}" = --if-tests ]; then
    if_tests=yes
    shift
fi
python=$1
dir=$2
shift 2

count=0
if [ -d "$dir" ]; then
    count=$(find "$dir" -type f \( -name 'test_*.py' -o -name '*_test.py' \) | wc -l)
fi
if [ "$count" -eq 0 ] && [ "$if_tests" = yes ]; then
    echo "NOTICE: no test files under $dir yet: nothing to run"
    exit 0
fi

echo "pytest $dir ($count test files)"
"$python" -m pytest "$dir" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "ERROR: pytest collected no tests under $dir ($count test files): failing" >&2
fi
exit "$rc"
