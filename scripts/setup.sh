#!/usr/bin/env bash
# Sets up redblue on a fresh Debian/Ubuntu machine: system packages, huge pages, npm packages,
# the native addon, the TypeScript build and the demo model. Safe to run again; it only does what
# is missing. One line per stage; everything the tools print goes to a log file, shown (its last
# lines and its path) only when a stage fails.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .cache
LOG="$PWD/.cache/setup.log"
: >"$LOG"
# What this run printed, kept for `redblue doctor` and the tests (test/foundation/setup.test.ts).
SUMMARY="$PWD/.cache/setup-summary.txt"
: >"$SUMMARY"
say() { printf '%s\n' "$*" | tee -a "$SUMMARY" >&2; }

# stage NAME COMMAND...: runs COMMAND with its output in the log; one line with the time taken
# (after $DETAIL, when set).
stage() {
  local name=$1
  shift
  local t0=$SECONDS rc=0
  echo "=== $name: $*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    say "$(printf 'setup: %-22s ok (%s%ds)' "$name" "${DETAIL:+$DETAIL, }" $((SECONDS - t0)))"
  else
    say "$(printf 'setup: %-22s FAILED (exit %d)' "$name" "$rc")"
    echo "setup: the last lines of $LOG:" >&2
    tail -n 30 "$LOG" | sed 's/^/  | /' >&2
    echo "setup: the whole output is in $LOG" >&2
    exit "$rc"
  fi
}

# Debian packages the build, the tests and the benchmarks need (one list: scripts/packages.txt).
t0=$SECONDS
mapfile -t PACKAGES < <(grep -v '^\s*#' scripts/packages.txt | grep -v '^\s*$')
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
install_packages() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    DETAIL="${#missing[@]} of ${#PACKAGES[@]} installed" stage packages install_packages
  else
    echo "setup: missing Debian packages. Install them as root, then run this again:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else
  say "setup: packages               ok (all ${#PACKAGES[@]} present, $((SECONDS - t0))s)"
fi

# Huge pages for node-local buffers, shared segments and staging areas (the tests use them for
# real): 1 GiB where the machine has 16 GiB or more, else 256 MiB. `bench transport` ran the
# default 128 out (staging areas, layer weights and scratch of 2 pretend hosts at once), and what
# does not fit falls back to 4 KiB pages, whose first touch is slow on VMs (core/huge_pages.h).
MEM_KB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
WANT_HUGEPAGES=${REDBLUE_HUGEPAGES:-$([ "${MEM_KB:-0}" -ge $((16 << 20)) ] && echo 512 || echo 128)}
huge_pages() {
  local have
  have=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$have" -lt "$WANT_HUGEPAGES" ]; then
    sysctl -q -w vm.nr_hugepages="$WANT_HUGEPAGES" || echo "could not reserve huge pages (continuing)"
  fi
  if ! grep -q " /dev/hugepages hugetlbfs" /proc/mounts; then
    mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages || echo "could not mount hugetlbfs (continuing)"
  fi
}
if [ "$(id -u)" -eq 0 ]; then
  stage "huge pages" huge_pages
else
  say "setup: huge pages             skipped (0s; not root: as root, sysctl -w vm.nr_hugepages=$WANT_HUGEPAGES)"
fi

# npm packages exactly as locked. Optional packages are left out: they are other platforms' and
# GPUs' binaries (node-llama-cpp's CUDA and Vulkan builds alone are ~650 MB); the two this machine
# loads, llama.cpp's linux-x64 CPU build and rolldown's linux-x64 binding, are devDependencies.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  stage "npm packages" npm ci --omit=optional --no-audit --no-fund --loglevel=error
else
  say "setup: npm packages           ok (as locked, 0s)"
fi

stage "native addon" npm run --silent build:native
stage "TypeScript" npm run --silent build:ts

# The demo model `redblue run` generates from: random weights, Llama 2's real vocabulary.
if [ ! -f .cache/demo.gguf ]; then
  stage "demo model" ./redblue synth -o .cache/demo.gguf --size demo --type q4_0
fi
say "setup: done in ${SECONDS}s. Try: ./redblue --help, or ./redblue doctor"
