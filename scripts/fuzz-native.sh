#!/usr/bin/env bash
# The native fuzzers (native/fuzz/*.cc), each built with AddressSanitizer and UndefinedBehavior-
# Sanitizer into .cache/fuzz/ and run for a budget of inputs: any sanitizer report, crash or
# unexpected exception fails (exit non-zero, the report on stderr, the seed to replay it).
#   bash scripts/fuzz-native.sh [inputs per fuzzer (default 1000000)] [seed (default 1)]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1000000}
seed=${2:-1}
mkdir -p .cache/fuzz
flags=(-std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -Inative/src)
read -r -a grpc_cflags <<<"$(pkg-config --cflags grpc++)"
read -r -a grpc_libs <<<"$(pkg-config --libs grpc++)"
# Stale fuzzers are built side by side (a clean clone builds both: ~6 s each here), then run.
builds=()
for src in native/fuzz/*.cc; do
  bin=.cache/fuzz/$(basename "$src" .cc)
  if [[ ! -x $bin || $src -nt $bin || -n $(find native/src/hosts native/src/shm -newer "$bin" -name '*.h' | head -1) ]]; then
    g++ "${flags[@]}" "${grpc_cflags[@]}" "$src" -o "$bin.tmp" "${grpc_libs[@]}" && mv "$bin.tmp" "$bin" &
    builds+=($!)
  fi
done
for b in "${builds[@]}"; do wait "$b"; done
for src in native/fuzz/*.cc; do
  bin=.cache/fuzz/$(basename "$src" .cc)
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$bin" "$runs" "$seed"
done
