#!/usr/bin/env bash
# Builds .bench-bundle/bundle.tar.xz (beside a copy of run.sh): a self-contained runtime for the CPU benchmarks on a machine
# without node, libopenblas, libhwloc, libnuma or Open MPI. Run from the repo root after
# `npm run build`. Layout inside the archive (extracted by run.sh into /tmp/rb):
#   bin/       node (stripped), mpirun -> orterun
#   lib/       shared libraries, under their soname names (always on LD_LIBRARY_PATH)
#   lib-fallback/  libstdc++, libgcc_s, libz, libuuid: put on LD_LIBRARY_PATH only if the
#              system's are missing or too old (run.sh decides)
#   ompi/      Open MPI 4.1 plugins, help files and mca params (OPAL_* env points here)
#   pmix/      PMIx plugins and help files (PMIX_* env points here)
#   tmp/redblue-mpi-bench-<hash>/mpi_collectives   the prebuilt MPI reference (TMPDIR=/tmp/rb/tmp)
#   app/       package.json, dist/, build/Release/redblue.node, proto/, redblue, runtime node_modules,
#              and the benchmarks' own packages (node-llama-cpp with its linux-x64 binaries, vocabularies)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${DEST:-$ROOT/.bench-bundle}
mkdir -p "$DEST"
STAGE=${STAGE:-/tmp/rb-stage}
ARCH=/usr/lib/x86_64-linux-gnu
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,lib,lib-fallback,app/build/Release,ompi/etc,ompi/share,pmix/lib,tmp}

# --- node
cp /usr/bin/node "$STAGE/bin/node"
strip "$STAGE/bin/node"

# --- libraries: copy the real file under the soname
copylib() { # soname [destdir]
  local src
  src=$(readlink -f "$ARCH/$1")
  [ -f "$src" ] || { echo "missing $1" >&2; exit 1; }
  cp "$src" "${2:-$STAGE/lib}/$1"
}
for l in libhwloc.so.15 libnuma.so.1 libopenblas.so.0 libgfortran.so.5 libquadmath.so.0 libudev.so.1 \
  libmpi.so.40 libopen-rte.so.40 libopen-pal.so.40 libevent_core-2.1.so.7 libevent_pthreads-2.1.so.7 \
  libpmix.so.2 libmunge.so.2 libnl-3.so.200 libmca_common_sm.so.40 libmca_common_monitoring.so.50 \
  libmca_common_ompio.so.41; do
  copylib "$l"
done
for l in libstdc++.so.6 libgcc_s.so.1 libz.so.1 libuuid.so.1; do copylib "$l" "$STAGE/lib-fallback"; done
# Whatever else the addon links shared (abseil and re2, for the gRPC data path).
for l in $(ldd "$ROOT/build/Release/redblue.node" | awk '/=> \// {print $1}'); do
  case $l in libc.so* | libm.so* | libstdc++* | libgcc_s* | libpthread* | libdl.so* | librt.so*) ;;
  *) [ -f "$STAGE/lib/$l" ] || copylib "$l" ;;
  esac
done

# --- iproute2 for bench transport (network namespaces); used only if the machine has no `ip`
mkdir -p "$STAGE/ipbin" "$STAGE/iplib"
cp /usr/bin/ip "$STAGE/ipbin/ip.real"
for l in libbpf.so.1 libbsd.so.0 libcap.so.2 libelf.so.1 libmd.so.0 libmnl.so.0; do copylib "$l" "$STAGE/iplib"; done
printf '#!/bin/sh\nd=$(dirname "$0")\nLD_LIBRARY_PATH="$d/../iplib:$LD_LIBRARY_PATH" exec "$d/ip.real" "$@"\n' >"$STAGE/ipbin/ip"
chmod +x "$STAGE/ipbin/ip"

# --- Open MPI runtime (mpirun = orterun; the ranks are forked locally, no orted needed)
cp "$(readlink -f /usr/bin/orterun)" "$STAGE/bin/orterun"
ln -s orterun "$STAGE/bin/mpirun"
mkdir -p "$STAGE/ompi/lib/openmpi3"
# Only the plugins whose libraries are all bundled or part of any glibc system.
BASE=' libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libutil.so.1 ld-linux-x86-64.so.2 '
have() { [[ "$BASE" == *" $1 "* ]] || [ -e "$STAGE/lib/$1" ] || [ -e "$STAGE/lib-fallback/$1" ]; }
dropped=()
for p in "$ARCH"/openmpi/lib/openmpi3/*.so; do
  ok=1
  for n in $(objdump -p "$p" | awk '/NEEDED/{print $2}'); do have "$n" || { ok=0; break; }; done
  if [ $ok = 1 ]; then cp "$p" "$STAGE/ompi/lib/openmpi3/"; else dropped+=("$(basename "$p")"); fi
done
echo "Open MPI plugins dropped (libraries not bundled): ${dropped[*]}"
cp -r /usr/share/openmpi "$STAGE/ompi/share/openmpi"
cp /etc/openmpi/openmpi-mca-params.conf /etc/openmpi/openmpi-default-hostfile "$STAGE/ompi/etc/"
cp -r "$ARCH/pmix2/lib/pmix" "$STAGE/pmix/lib/pmix"
mkdir -p "$STAGE/pmix/share" && cp -r "$ARCH/pmix2/share/pmix" "$STAGE/pmix/share/pmix"
# The MPI reference of `bench collectives`, built the way bench/mpi-reference.ts builds it, into
# the cache directory it looks in (tmpdir()/redblue-mpi-bench-<hash of its source>).
(cd "$ROOT" && TMPDIR="$STAGE/tmp" node -e \
  "import('./dist/bench/mpi-reference.js').then(m => console.log('MPI helper:', m.buildMpiHelper()))")

# --- the app
cp "$ROOT/package.json" "$ROOT/redblue" "$STAGE/app/"
cp -r "$ROOT/dist" "$ROOT/proto" "$STAGE/app/"
mkdir -p "$STAGE/app/scripts" && cp "$ROOT/scripts/rows8-paths.mjs" "$ROOT/scripts/random-floats.mjs" "$STAGE/app/scripts/"
find "$STAGE/app/dist" -name '*.map' -delete
cp "$ROOT/build/Release/redblue.node" "$STAGE/app/build/Release/"
(cd "$ROOT" && npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | sed "s#^$ROOT/##") |
  while read -r d; do
    case "$d" in node_modules/@types/node | node_modules/undici-types | node_modules/node-addon-api) continue ;; esac
    mkdir -p "$STAGE/app/$(dirname "$d")"
    cp -r "$ROOT/$d" "$STAGE/app/$d"
  done
# The packages only benchmarks need (dev dependencies): llama.cpp through node-llama-cpp and its
# prebuilt linux-x64 binaries (the reference of `bench model`), and the vocabularies `synth`
# writes into its models; each with the packages it needs, resolved as Node resolves them.
# node-llama-cpp's llama/gitRelease.bundle (llama.cpp's sources, for building) is left out.
node - "$ROOT" node-llama-cpp @node-llama-cpp/linux-x64 llama-tokenizer-js llama3-tokenizer-js <<'JS' |
const fs = require('fs'), path = require('path');
const [root, ...names] = process.argv.slice(2);
const seen = new Set();
const find = (name, from) => {
  for (let d = from; ; d = path.dirname(d)) {
    const c = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(c, 'package.json'))) return c;
    if (d === root || d === path.dirname(d)) return null;
  }
};
const visit = (dir, optional) => {
  if (!dir) { if (!optional) throw new Error('unresolved dependency'); return; }
  if (seen.has(dir)) return;
  seen.add(dir);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const d of Object.keys(pj.dependencies ?? {})) visit(find(d, dir), false);
  for (const d of Object.keys(pj.optionalDependencies ?? {})) visit(find(d, dir), true);
};
for (const n of names) visit(find(n, root), false);
for (const d of seen) console.log(path.relative(root, d));
JS
  while read -r d; do
    [ -e "$STAGE/app/$d" ] && continue
    mkdir -p "$STAGE/app/$(dirname "$d")"
    cp -r "$ROOT/$d" "$STAGE/app/$d"
  done
rm -f "$STAGE/app/node_modules/node-llama-cpp/llama/gitRelease.bundle"
# types, docs and source maps are not needed at run time
find "$STAGE/app/node_modules" -name '*.d.ts' -delete
find "$STAGE/app/node_modules" \( -name '*.md' -o -name '*.map' \) -delete

du -sh "$STAGE"/* | sort -h
tar -C "$STAGE" -cf - . | xz -9 -T2 >"$DEST/bundle.tar.xz"
cp "$(dirname "$0")/run.sh" "$(dirname "$0")/device.sh" "$DEST/"
rm -rf "$STAGE"
ls -la "$DEST/bundle.tar.xz"
