#!/usr/bin/env bash
# npm run fuzz: every fuzz harness for a real budget (the test suite runs them briefly).
#   FUZZ_RUNS (default 1000): inputs per method or parser of the TypeScript / gRPC harnesses
#   (test/fuzz/*.test.ts); FUZZ_NATIVE_RUNS (default 1000000): inputs per native fuzzer
#   (native/fuzz/*.cc under ASan and UBSan); FUZZ_SEED: the native fuzzers' seed (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f dist/cli/main.js ]]; then npm run build >/dev/null; fi
FUZZ_RUNS=${FUZZ_RUNS:-1000} npx vitest run test/fuzz
bash scripts/fuzz-native.sh "${FUZZ_NATIVE_RUNS:-1000000}" "${FUZZ_SEED:-1}"
