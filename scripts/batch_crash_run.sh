#!/usr/bin/env bash
# The long crash run of docs/batches.md: 2,000 lines on the tiny test checkpoint, kill -9 at 10
# seeded moments with a restart after each, then one output line per custom_id. Uses the CPU
# build and the checkpoint the http tests make:
#   scripts/batch_crash_run.sh [build dir] [seed]
set -euo pipefail
build=${1:-build/cpu}
seed=${2:-20261206}
export KILN_BINARY=$build/apps/kiln/kiln
export KILN_TEST_MODEL_DIR=$build/test-models/http-tiny-llama
export KILN_BATCH_CRASH_LINES=2000 KILN_BATCH_CRASH_KILLS=10 KILN_BATCH_CRASH_SEED=$seed
exec node --test-concurrency=1 --test-name-pattern='kill -9' tests/integration/batches_test.mjs
