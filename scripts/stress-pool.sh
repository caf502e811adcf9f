#!/usr/bin/env bash
# native/stress/thread_pool_stress.cc built with ThreadSanitizer into .cache/stress/ and run:
# any data race, wrong task count, lost exception or hang (60 s) fails.
#   bash scripts/stress-pool.sh [seconds per pool (default 2)] [seed (default 1)]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/stress
bin=.cache/stress/thread_pool_stress
src=native/stress/thread_pool_stress.cc
if [[ ! -x $bin || $src -nt $bin || native/src/core/thread_pool.cc -nt $bin || native/src/core/thread_pool.h -nt $bin ]]; then
  g++ -std=c++17 -O1 -g -fsanitize=thread -Inative/src "$src" native/src/core/thread_pool.cc -o "$bin" -lpthread
fi
TSAN_OPTIONS=halt_on_error=1:abort_on_error=1 timeout 60 "$bin" "${1:-2}" "${2:-1}"
