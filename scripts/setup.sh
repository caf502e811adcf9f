#!/usr/bin/env bash
# Sets up redblue on a fresh Debian/Ubuntu machine: system packages, huge pages, npm packages,
# the native addon and the TypeScript build. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build, the tests and the benchmarks need.
PACKAGES=(cmake g++ make pkg-config libnuma-dev libhwloc-dev libopenblas-dev libgrpc++-dev
  openmpi-bin libopenmpi-dev chromium iproute2 openssh-server openssh-client openssl)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages. Install them as root, then run this again:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# Huge pages for node-local buffers and shared segments (the tests use them for real).
WANT_HUGEPAGES=${REDBLUE_HUGEPAGES:-128}
if [ "$(id -u)" -eq 0 ]; then
  have=$(cat /proc/sys/vm/nr_hugepages)
  if [ "$have" -lt "$WANT_HUGEPAGES" ]; then
    sysctl -q -w vm.nr_hugepages="$WANT_HUGEPAGES" || echo "setup: could not reserve huge pages (continuing)" >&2
  fi
  if ! grep -q " /dev/hugepages hugetlbfs" /proc/mounts; then
    mkdir -p /dev/hugepages && mount -t hugetlbfs none /dev/hugepages || echo "setup: could not mount hugetlbfs" >&2
  fi
else
  echo "setup: not root, so no huge pages reserved; as root: sysctl -w vm.nr_hugepages=$WANT_HUGEPAGES" >&2
fi

# npm packages exactly as locked. Optional packages are left out: they are other platforms' and
# GPUs' binaries (node-llama-cpp's CUDA and Vulkan builds alone are ~650 MB); the two this machine
# loads, llama.cpp's linux-x64 CPU build and rolldown's linux-x64 binding, are devDependencies.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --omit=optional --no-audit --no-fund --loglevel=error
fi

npm run --silent build

# The demo model `redblue run` generates from: random weights, Llama 2's real vocabulary.
if [ ! -f .cache/demo.gguf ]; then
  mkdir -p .cache
  ./redblue synth -o .cache/demo.gguf --size demo --type q4_0 >/dev/null
fi
echo "setup: done. Try: ./redblue --help"
