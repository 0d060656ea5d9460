#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Run one build step with a header line and a closing line that gives its result and duration.
# usage: step.sh "NAME: what it does" COMMAND [ARGS...]
set -uo pipefail
name=$1
shift
printf '\n==== %s ====\n' "$name"
start=$(date +%s)
"$@"
rc=$?
secs=$(($(date +%s) - start))
if [ "$rc" -eq 0 ]; then
    printf -- '---- %s: ok (%ss)\n' "${name%%:*}" "$secs"
else
    printf -- '---- %s: FAILED with exit code %s (%ss)\n' "${name%%:*}" "$rc" "$secs" >&2
fi
exit "$rc"
