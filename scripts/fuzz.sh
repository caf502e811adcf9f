#!/usr/bin/env bash
# npm run fuzz: every fuzz harness for a real budget (the test suite runs them briefly).
#   FUZZ_RUNS (default 100000): inputs per property of the parser harnesses (test/fuzz/*.test.ts);
#   FUZZ_GRPC_RUNS (default 1000): requests per gRPC method; FUZZ_NATIVE_RUNS (default 1000000):
#   inputs per native fuzzer (native/fuzz/*.cc under ASan and UBSan); FUZZ_SEED: a seed to
#   replay (default: a fresh one for the parsers, 1 for the native fuzzers).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f dist/cli/main.js ]]; then npm run build >/dev/null; fi
FUZZ_RUNS=${FUZZ_RUNS:-100000} FUZZ_GRPC_RUNS=${FUZZ_GRPC_RUNS:-1000} npx vitest run --testTimeout=0 test/fuzz
bash scripts/fuzz-native.sh "${FUZZ_NATIVE_RUNS:-1000000}" "${FUZZ_SEED:-1}"
