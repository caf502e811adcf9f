#!/usr/bin/env bash
# Runs redblue's CPU benchmarks on a machine without node, OpenBLAS, hwloc, libnuma or Open MPI,
# from the bundle.tar.xz beside it (made by scripts/bench-bundle/build.sh, which copies this
# script next to it). Needs no network; copy the folder to the other machine and run it there.
#   OUT=dir      where the JSON and logs go (default /tmp/out)
#   QUICK=1      add --quick to every benchmark (smoke test: seconds)
#   STEPS="run collectives kernels"   which benchmarks, in this order (STEPS= runs none);
#                also transport (root, network namespaces) and run-A_B (bench run --cpus A,B)
#                model-TYPE[-eN][-PATH] (bench model on a TinyLlama-shaped model of TYPE, e.g. q4_0
#                or q4_k_m, that synth writes first; N executors, default 2; PATH pins the kernel
#                path, REDBLUE_KERNEL_PATH, and skips llama.cpp), serve-TYPE (bench serve) and
#                kernel-paths (every kernel path's bits against the others, and their speed)
#   T_RUN / T_COLL / T_KERN / T_MODEL / T_SERVE   per-step timeouts in seconds (default 180 / 120 /
#                150 / 240 / 300)
#   MODEL_ARGS / SERVE_ARGS   extra flags for bench model / bench serve (e.g. "--reps 2")
#   KERNELS_THREADS=1,2       --threads for bench kernels (default: the bench's own, 1 and 2)
#   NO_XZ=1      extract with python3's tarfile even if xz is installed (used when xz is missing)
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RB=${RB:-/tmp/rb}
OUT=${OUT:-/tmp/out}
QUICK=${QUICK:-0}
STEPS=${STEPS-run collectives kernels}
T0=$(date +%s)
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
mark() { printf '\n========== %s (t=%ss) ==========\n' "$*" "$(($(date +%s) - T0))"; }

mark "extract $HERE/bundle.tar.xz -> $RB"
rm -rf "$RB" && mkdir -p "$RB"
if [ "${NO_XZ:-0}" != 1 ] && command -v xz >/dev/null 2>&1; then
  tar -C "$RB" -xJf "$HERE/bundle.tar.xz" || exit 1
else # no xz-utils: Python's tarfile reads xz itself
  python3 - "$HERE/bundle.tar.xz" "$RB" <<'EOF' || exit 1
import sys, tarfile
with tarfile.open(sys.argv[1], 'r:xz') as t:
    try:
        t.extractall(sys.argv[2], filter='fully_trusted')
    except TypeError:
        t.extractall(sys.argv[2])
EOF
fi
echo "extracted: $(du -sh "$RB" | cut -f1)"

# --- environment: everything from the bundle
APP=$RB/app
mkdir -p "$RB/home" "$RB/tmp"
export HOME=$RB/home # nothing needs it, but keep caches (npm, node) out of the real home
export TMPDIR=$RB/tmp # os.tmpdir(): LocalCluster sockets and the prebuilt MPI reference live here
export PATH=$RB/bin:$PATH
command -v ip >/dev/null 2>&1 || export PATH=$PATH:$RB/ipbin
export LD_LIBRARY_PATH=$RB/lib
export NODE_OPTIONS=
# Open MPI 4.1 relocated into the bundle (mpirun = orterun; ranks are forked locally)
export OPAL_PREFIX=$RB/ompi OPAL_EXEC_PREFIX=$RB/ompi OPAL_BINDIR=$RB/bin OPAL_LIBDIR=$RB/lib
export OPAL_PKGLIBDIR=$RB/ompi/lib/openmpi3 OPAL_DATAROOTDIR=$RB/ompi/share OPAL_DATADIR=$RB/ompi/share
export OPAL_PKGDATADIR=$RB/ompi/share/openmpi OPAL_SYSCONFDIR=$RB/ompi/etc
export OMPI_MCA_mca_base_component_path=$RB/ompi/lib/openmpi3
export PMIX_MCA_mca_base_component_path=$RB/pmix/lib/pmix
export PMIX_PREFIX=$RB/pmix PMIX_EXEC_PREFIX=$RB/pmix PMIX_LIBDIR=$RB/lib PMIX_PKGLIBDIR=$RB/pmix/lib/pmix
export PMIX_DATADIR=$RB/pmix/share PMIX_PKGDATADIR=$RB/pmix/share/pmix
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_mca_base_component_show_load_errors=0
cd "$APP" || exit 1

mark "libraries"
probe() { "$RB/bin/node" -e "require('$APP/build/Release/redblue.node'); console.log('node', process.version, 'addon ok')" 2>&1; }
missing() { ldd "$RB/bin/node" "$RB/bin/orterun" "$APP/build/Release/redblue.node" "$RB"/lib/*.so* 2>&1 | grep 'not found' | sort -u; }
if ! p=$(probe) || [ -n "$(missing)" ]; then
  missing
  echo "with the system libstdc++/libgcc_s/libz: $p"
  export LD_LIBRARY_PATH=$RB/lib:$RB/lib-fallback
  echo "retrying with the bundled ones (lib-fallback)"
  p=$(probe) || {
    echo "FATAL: node or the addon does not load: $p"
    exit 1
  }
fi
echo "$p"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
ldd "$APP/build/Release/redblue.node" | sed 's/^/  /'
ldd --version 2>&1 | head -1

mark "machine"
echo "nproc: $(nproc)"
lscpu 2>/dev/null | head -20
if command -v numactl >/dev/null 2>&1; then numactl -H; else echo "(no numactl)"; fi
free -g 2>/dev/null | head -2
df -h /dev/shm 2>/dev/null
grep -i huge /proc/meminfo
grep hugetlbfs /proc/mounts || echo "(no hugetlbfs mount: shared segments fall back to /dev/shm)"
echo "ulimit -l: $(ulimit -l)   thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
echo "--- redblue topo (hwloc)"
timeout 30 node dist/cli/main.js topo
timeout 30 node dist/cli/main.js topo --json >"$OUT/topo.json"
echo "--- redblue topo --virtual-nodes 2 (the split that 'bench run' uses)"
timeout 30 node dist/cli/main.js topo --virtual-nodes 2

mark "Open MPI check (the reference of bench collectives)"
HELPER=$(ls "$TMPDIR"/redblue-mpi-bench-*/mpi_collectives 2>/dev/null | head -1)
mpicheck() { timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to core -np 2 "$HELPER" 1 \
  allreduce 1024 5 allreduce 4194304 5 allgather 4194304 5 2>&1; }
if ! o=$(mpicheck) || ! grep -q '^allgather 4194304' <<<"$o"; then
  echo "$o" | tail -20
  echo "mpirun failed: retrying without CMA single-copy (btl_vader_single_copy_mechanism=none)"
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  o=$(mpicheck) || true
fi
echo "$o" | tail -20

QFLAG=()
[ "$QUICK" = 1 ] && QFLAG=(--quick)
# step NAME TIMEOUT ARGS...: JSON to $OUT/bench-NAME.json, progress to $OUT/bench-NAME.log and
# stdout, then the report as text.
step() {
  local name=$1 t=$2 label=${LABEL:-$1}
  shift 2
  mark "bench $name (timeout ${t}s): node dist/cli/main.js bench $name $* --json"
  local s=$(date +%s) rc
  timeout -k 10 "$t" node dist/cli/main.js bench "$name" "$@" --json 2>&1 >"$OUT/bench-$label.json" |
    tee "$OUT/bench-$label.log"
  rc=${PIPESTATUS[0]}
  echo "bench $label: exit $rc after $(($(date +%s) - s))s$([ $rc = 124 ] && echo ' (TIMED OUT)')"
  echo "$rc $(($(date +%s) - s))" >"$OUT/bench-$label.rc"
  [ $rc = 0 ] && node -e "import('$APP/dist/bench/report.js').then(m => process.stdout.write(m.renderReport(
    JSON.parse(require('fs').readFileSync('$OUT/bench-$label.json', 'utf8')))))"
  return 0
}
# The models of the model-* and serve-* steps: written once, all at once (one core each).
types=$(for s in $STEPS; do case $s in model-* | serve-*) t=${s#*-}; t=${t%%-e*}; echo "${t%-a*}" ;; esac; done | sort -u)
if [ -n "$types" ]; then
  mark "synth TinyLlama-shaped models: $(echo $types)"
  mkdir -p "$RB/models"
  for t in $types; do
    timeout -k 10 300 node dist/cli/main.js synth -o "$RB/models/tl-$t.gguf" --size tinyllama --type "$t" \
      >"$OUT/synth-$t.log" 2>&1 &
  done
  wait
  for t in $types; do tail -1 "$OUT/synth-$t.log"; done
fi
for s in $STEPS; do
  case $s in
  run) step run "${T_RUN:-180}" "${QFLAG[@]}" ;;
  run-*) c=${s#run-}; step "run" "${T_RUN:-180}" "${QFLAG[@]}" --cpus "${c//_/,}"; cp "$OUT/bench-run.json" "$OUT/run-$c.json" ;;
  collectives) step collectives "${T_COLL:-120}" "${QFLAG[@]}" ;;
  transport) step transport "${T_TRANS:-150}" "${QFLAG[@]}" ;;
  kernels) step kernels "${T_KERN:-150}" "${QFLAG[@]}" ${KERNELS_THREADS:+--threads "$KERNELS_THREADS"} ;;
  model-*)
    t=${s#model-} e=2 kp=
    case $t in *-avx2 | *-avx512 | *-avx512vnni | *-amx) kp=${t##*-} t=${t%-*} ;; esac
    case $t in *-e*) e=${t##*-e} t=${t%-e*} ;; esac
    REDBLUE_KERNEL_PATH=$kp LABEL=$s step model "${T_MODEL:-240}" --model "$RB/models/tl-$t.gguf" --executors "$e" \
      ${MODEL_ARGS:-} $([ -n "$kp" ] && echo --no-reference)
    ;;
  kernel-paths)
    mark "kernel paths: same bits, then speed (scripts/rows8-paths.mjs)"
    all=$(node -e "console.log(require('./build/Release/redblue.node').kernelPaths().supported.filter(p => p !== 'scalar').join(','))")
    timeout 120 node scripts/rows8-paths.mjs check q4_0,q8_0,q4_k,q6_k "$all" 2>&1 | tee "$OUT/kernel-paths.log"
    for m in 512 64 16; do
      timeout 90 node scripts/rows8-paths.mjs gemm q4_0,q8_0,q4_k avx512vnni,amx --m $m 2>&1 | tee -a "$OUT/kernel-paths.log"
    done
    ;;
  serve-*) LABEL=$s step serve "${T_SERVE:-300}" --model "$RB/models/tl-${s#serve-}.gguf" ${SERVE_ARGS:-} ;;
  *) echo "unknown step $s" ;;
  esac
done

mark "done"
echo "/dev/shm now: $(ls /dev/shm 2>/dev/null | tr '\n' ' ')"
ls -la "$OUT"
