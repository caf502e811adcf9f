#!/usr/bin/env bash
# One prepared run on a lent machine (16 cores, AMX): the kernel paths' bits and speed (AMX against
# VNNI), bench model on Q4_0 and a Q4_K_M mix (llama.cpp in the same run, and Q4_0 once more with
# the VNNI path pinned: auto takes AMX where it is granted), bench serve, and 8 executors. Run from the folder build.sh writes
# (.bench-bundle/, beside bundle.tar.xz): the folder travels, the command is
# `bash .bench-bundle/device.sh`; results are tarred into $OUT, a summary goes to stdout. STEPS
# overrides the list (run.sh's names). About 7 minutes on 16 Sapphire Rapids cores (estimate).
cd "$(dirname "$0")" || exit 1
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo) / $(grep -oE 'amx[a-z0-9_]*|avx512_vnni|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
DEST=${OUT:-/tmp/out}
mkdir -p "$DEST" /tmp/res
export RB=/tmp/rb
OUT=/tmp/res STEPS="${STEPS:-kernel-paths model-q4_0 model-q4_0-avx512vnni model-q4_k_m serve-q4_k_m model-q4_0-e8}" \
  T_MODEL=200 T_SERVE=200 bash run.sh > "$DEST/run.log" 2>&1
tar -C /tmp -czf "$DEST/results.tar.gz" res
grep -E "^(==========|q[0-9]_|MISMATCH|model |llama |token generation|best against|2 executors|[0-9]+ executors|case|pp|tg|streams|one_stream|ttft|tpot|Model name|Flags)" "$DEST/run.log" | cut -c1-220
