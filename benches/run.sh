#!/usr/bin/env bash
# The project's benchmark report (issue #8): installs what the benchmarks
# need (idempotently), then runs benches/run.py, which builds in release,
# runs every benchmark and writes docs/BENCHMARKS.md,
# benches/results/latest.json and docs/bench/*.svg.
#
#   bash benches/run.sh            # full run: about 20–30 minutes on 2 cores
#   bash benches/run.sh --quick    # tiny inputs, outputs under target/ (CI)
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth, database test) for the
# PostgreSQL rows, as the tests do (.ci/run starts it).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in age:age age-keygen:age gpg:gnupg openssl:openssl wrk:wrk curl:curl taskset:util-linux findmnt:util-linux; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
[ -x /usr/bin/time ] || missing+=(time)   # GNU time: peak RSS of each command
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/s3s-fs" ]; then
  echo "==> cargo install s3s-fs (the S3-compatible server of the S3 rows)" >&2
  cargo install s3s-fs@0.14.1 --features binary --locked
fi
exec python3 benches/run.py "$@"
