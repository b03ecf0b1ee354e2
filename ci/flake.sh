#!/usr/bin/env bash
# Flake hunt (benches/flake.rs): a correct Worker must pass every conform
# run, and each rate-limit fault must fail exactly its own check every
# sweep, with one core kept busy. Not part of `cargo test`.
#
#   ci/flake.sh conform 20   # 20 conform runs, reference Worker at 5/8/12 per 3 s
#   ci/flake.sh sweep 5      # 5 sweeps of the rate-limit faults
#
# Prints each run that did not pass (or each sweep that deviated) with the
# check ids and summaries, then the count; exit 0 when it is 0. Every process
# it starts leads its own process group and is stopped at the end and on
# Ctrl-C or SIGTERM. Built with the dev profile (the tests' build).
set -euo pipefail
cd "$(dirname "$0")/.."
built=$(cargo bench --profile dev --bench flake --no-run 2>&1) || {
  printf '%s\n' "$built" >&2
  exit 2
}
bin=$(printf '%s\n' "$built" | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
if [ -z "$bin" ]; then
  printf '%s\n' "$built" >&2
  echo "flake.sh: cargo named no bench executable" >&2
  exit 2
fi
# The bench binary becomes this process: a signal to the script reaches it.
exec "$bin" "$@"
