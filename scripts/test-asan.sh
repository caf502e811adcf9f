#!/usr/bin/env bash
# npm run test:asan: the addon built a second time with AddressSanitizer and UndefinedBehavior-
# Sanitizer (build-asan/, beside the normal build), then the test suites that drive native code
# run against it: this process and every executor it starts load it (REDBLUE_ADDON) with the
# sanitizer runtimes preloaded (node itself is not instrumented). Any report fails the run.
#   bash scripts/test-asan.sh [vitest files...]   (default: the native suites below)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f dist/cli/main.js ]]; then npm run build:ts >/dev/null; fi
echo "test:asan: building the addon with -fsanitize=address,undefined into build-asan/"
npx cmake-js compile --directory native --out build-asan --CDREDBLUE_SANITIZE=ON >.cache/asan-build.log 2>&1 || {
  tail -30 .cache/asan-build.log
  echo "test:asan: the sanitized build failed (full log: .cache/asan-build.log)" >&2
  exit 1
}

asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
for lib in "$asan" "$ubsan"; do
  [[ -f "$lib" ]] || { echo "test:asan: $lib is missing: apt-get install gcc" >&2; exit 1; }
done

suites=("$@")
if [[ ${#suites[@]} -eq 0 ]]; then
  suites=(test/kernels test/shm test/executor/gemm.test.ts test/executor/layers.test.ts
    test/model/transformer.test.ts test/model/batch.test.ts test/hosts/data-path.test.ts)
fi
existing=()
for s in "${suites[@]}"; do [[ -e "$s" ]] && existing+=("$s"); done

# Leaks: node's own allocations at exit are not ours to judge; every other report aborts the
# process, which fails its test.
export REDBLUE_ADDON="$PWD/build-asan/Release/redblue.node"
export LD_PRELOAD="$asan:$ubsan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:verify_asan_link_order=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "test:asan: ${existing[*]}"
exec npx vitest run "${existing[@]}"
