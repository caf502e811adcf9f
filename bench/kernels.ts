// `redblue bench kernels`: the native kernels against references measured in the same run —
// f32 GEMM vs OpenBLAS called directly, quantized GEMV vs a STREAM-like read of the same bytes,
// quantized GEMM at m = 512 vs our f32 GEMM on the same shape. Case names: docs/kernels.md.
// The GEMVs run as generate runs them: the weights in the layout ModelShard gives them (rows8
// where the kernels have it) and in node-local memory as NodeBuffer allocates it (reserved huge
// pages when there are some), because a plain read of 4 KiB pages is slower than one of huge
// pages (one core, here: 22-24 against 31-34 GB/s) and hid a GEMV that waits on memory.
import type { Command } from 'commander';
import { loadAddon, type NativeThreadPool } from '../native/addon.js';
import {
  gemmF32,
  interleaveRows8,
  matmulQ,
  openblasGemm,
  quantize,
  readBytes,
  rows8Runs,
  WEIGHT_TYPES,
  type GemmOptions,
  type WeightType,
} from '../native/kernels.js';
import { UsageError } from '../common/errors.js';
import { allocateOnNode, type NodeBuffer } from '../native/memory.js';
import { readTopology } from '../native/topology.js';
import { machineInfo, renderReport, result, type BenchReport, type BenchResult } from './report.js';

export interface KernelsBenchOptions {
  /** Thread counts to measure (each a pinned pool on that many of this process's cpus). */
  threads: number[];
  /** Small sizes and few repetitions: seconds instead of minutes (for tests). */
  quick: boolean;
  /** Weight types of the GEMV cases (default q4_0, q8_0). */
  gemvTypes?: WeightType[];
  /** Only the GEMV cases (weight read bandwidth), no GEMM. */
  gemvOnly?: boolean;
  progress?: (line: string) => void;
}

interface Sizes {
  gemmCubes: number[];
  tall: { m: number; n: number; k: number };
  gemv: { n: number; k: number }[];
  cycleBytes: number; // distinct weight bytes each GEMV pass streams through
  qgemm: { m: number; n: number; k: number };
  reps: (flops: number) => number;
  passes: number;
}

const FULL: Sizes = {
  gemmCubes: [512, 2048, 4096],
  tall: { m: 64, n: 4096, k: 4096 },
  gemv: [
    { n: 4096, k: 4096 },
    { n: 11008, k: 4096 },
  ],
  // Past the 480 MiB the VM reports as L3, so the rate is DRAM's, not the cache's.
  cycleBytes: 576 << 20,
  qgemm: { m: 512, n: 4096, k: 4096 },
  // Best of several: other processes share these cpus, the best run is the least disturbed.
  reps: (flops) => Math.max(3, Math.min(20, Math.round(3e10 / flops))),
  passes: 10,
};

const QUICK: Sizes = {
  gemmCubes: [64, 128],
  tall: { m: 16, n: 256, k: 256 },
  gemv: [{ n: 256, k: 256 }],
  cycleBytes: 4 << 20,
  qgemm: { m: 32, n: 256, k: 256 },
  reps: () => 2,
  passes: 2,
};

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

function timeOnce(fn: () => void): number {
  const t0 = now();
  fn();
  return now() - t0;
}

function randomF32(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2147483648 - 1;
  }
  return x;
}

export function parseThreads(value: string, available: number): number[] {
  const parts = value.split(',').map((p) => p.trim());
  const out: number[] = [];
  for (const p of parts) {
    const t = Number(p);
    if (!/^\d+$/.test(p) || t < 1)
      throw new UsageError(`--threads takes thread counts like 1,2 (each at least 1), got '${value}'`);
    if (t > available) throw new UsageError(`--threads ${t}: this process may use only ${available} cpu(s)`);
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

export async function runKernelsBench(o: KernelsBenchOptions): Promise<BenchReport> {
  const addon = loadAddon();
  const cpus = addon.currentAffinity();
  const sz = o.quick ? QUICK : FULL;
  const say = o.progress ?? (() => {});
  const results: BenchResult[] = [];
  const startedAt = new Date().toISOString();
  // One arena for every GEMV case: the distinct copies of a matrix that each pass streams.
  const matrices = gemvMatrices(sz, o.gemvTypes ?? ['q4_0', 'q8_0']);
  const node = readTopology().nodes.find((n) => n.cpus.includes(cpus[0]!))?.id ?? 0;
  const arena = allocateOnNode(
    sz.cycleBytes + Math.max(...matrices.map((m) => m.bytes.length)),
    node,
    'auto',
  );
  try {
    for (const t of o.threads) {
      const pool = new addon.ThreadPool(cpus.slice(0, t));
      try {
        if (!o.gemvOnly) gemmCases(pool, t, sz, results, say);
        gemvCases(pool, t, sz, matrices, arena, results, say);
        if (!o.gemvOnly) qgemmCases(pool, t, sz, results, say);
      } finally {
        pool.close();
      }
    }
  } finally {
    arena.release();
  }
  return { benchmark: 'kernels', results, machine: machineInfo(), startedAt };
}

function gemmCases(
  pool: NativeThreadPool,
  t: number,
  sz: Sizes,
  out: BenchResult[],
  say: (s: string) => void,
) {
  const shapes = [
    ...sz.gemmCubes.map((s) => ({ name: `gemm_f32_${s}_t${t}`, m: s, n: s, k: s })),
    { name: `gemm_f32_m${sz.tall.m}_n${sz.tall.n}_k${sz.tall.k}_t${t}`, ...sz.tall },
  ];
  for (const s of shapes) {
    say(`${s.name}: ${s.m}×${s.n}×${s.k} f32 GEMM, ours vs OpenBLAS (${t} thread(s))`);
    const opts: GemmOptions = {
      m: s.m,
      n: s.n,
      k: s.k,
      a: randomF32(s.m * s.k, 1),
      b: randomF32(s.k * s.n, 2),
      c: new Float32Array(s.m * s.n),
    };
    const flops = 2 * s.m * s.n * s.k;
    const reps = sz.reps(flops);
    // Alternate the two so that a neighbour's load hits both alike.
    const runOurs = () => gemmF32(pool, opts);
    const runRef = () => openblasGemm(opts, t);
    runOurs();
    runRef();
    let ours = Infinity,
      ref = Infinity;
    for (let r = 0; r < reps; r++) {
      ours = Math.min(ours, timeOnce(runOurs));
      ref = Math.min(ref, timeOnce(runRef));
    }
    out.push(
      result({
        case: s.name,
        metric: 'GFLOP/s',
        value: flops / ours / 1e9,
        unit: 'GFLOP/s',
        reference: 'openblas',
        referenceValue: flops / ref / 1e9,
        details: { threads: t, m: s.m, n: s.n, k: s.k, reps },
      }),
    );
  }
}

interface GemvMatrix {
  type: WeightType;
  n: number;
  k: number;
  bytes: Uint8Array; // one quantized matrix, copied `count` times into the arena
  rows8: boolean; // in the rows8 layout (interleaveRows8), as ModelShard lays out what matmuls read
}

function gemvMatrices(sz: Sizes, types: WeightType[]): GemvMatrix[] {
  const out: GemvMatrix[] = [];
  for (const type of types)
    for (const { n, k } of sz.gemv) {
      const natural = quantize(type, randomF32(n * k, 3), n, k);
      const rows8 = rows8Runs(type);
      out.push({ type, n, k, rows8, bytes: rows8 ? interleaveRows8(type, natural, n, k) : natural });
    }
  return out;
}

function gemvCases(
  pool: NativeThreadPool,
  t: number,
  sz: Sizes,
  matrices: GemvMatrix[],
  arena: NodeBuffer,
  out: BenchResult[],
  say: (s: string) => void,
) {
  for (const { type, n, k, rows8, bytes: one } of matrices) {
    const name = `gemv_${type}_${n}x${k}_t${t}`;
    const count = Math.ceil(sz.cycleBytes / one.length);
    const layout = rows8 ? 'rows8' : 'natural';
    say(
      `${name}: m=1 through ${count} distinct ${type} matrices (${((count * one.length) / 2 ** 20).toFixed(0)} MiB, ${layout} layout, ${arena.backing} pages)`,
    );
    const weights = new Uint8Array(arena.buffer, 0, count * one.length);
    for (let i = 0; i < count; i++) weights.set(one, i * one.length);
    const x = randomF32(k, 4);
    const y = new Float32Array(n);
    const call = (i: number) =>
      matmulQ(pool, { type, w: weights, wOffset: i * one.length, n, k, x, m: 1, y, rows8 });
    const read = (i: number) => readBytes(pool, weights, i * one.length, one.length);
    // Per matrix, the best time over the passes, summed: every sample still streams its matrix
    // from DRAM (the cycle is far larger than the caches), but a pass disturbed by another
    // process on these cpus no longer spoils the whole figure. The reference reads the matrix
    // half a cycle away, interleaved with ours, so both see the same conditions.
    const oursBest = new Array<number>(count).fill(Infinity);
    const readBest = new Array<number>(count).fill(Infinity);
    let oursPass = Infinity,
      readPass = Infinity;
    for (let i = 0; i < count; i++) read(i); // faults the pages in
    for (let p = 0; p < sz.passes; p++) {
      let ours = 0,
        ref = 0;
      for (let i = 0; i < count; i++) {
        const tOurs = timeOnce(() => call(i));
        const j = (i + (count >> 1)) % count;
        const tRead = timeOnce(() => read(j));
        oursBest[i] = Math.min(oursBest[i]!, tOurs);
        readBest[j] = Math.min(readBest[j]!, tRead);
        ours += tOurs;
        ref += tRead;
      }
      oursPass = Math.min(oursPass, ours);
      readPass = Math.min(readPass, ref);
    }
    const sum = (v: number[]) => v.reduce((acc, t) => acc + t, 0);
    const gbs = (seconds: number) => weights.length / seconds / 1e9;
    out.push(
      result({
        case: name,
        metric: 'weight read bandwidth',
        value: gbs(sum(oursBest)),
        unit: 'GB/s',
        reference: 'stream-read',
        referenceValue: gbs(sum(readBest)),
        details: {
          threads: t,
          n,
          k,
          matrices: count,
          bytes: weights.length,
          passes: sz.passes,
          layout,
          pages: arena.backing,
          // The same, timed as whole passes (best pass) instead of per matrix.
          bestPassGBs: gbs(oursPass),
          bestPassReferenceGBs: gbs(readPass),
        },
      }),
    );
  }
}

function qgemmCases(
  pool: NativeThreadPool,
  t: number,
  sz: Sizes,
  out: BenchResult[],
  say: (s: string) => void,
) {
  const { m, n, k } = sz.qgemm;
  const x = randomF32(m * k, 5);
  const wf = randomF32(n * k, 6);
  const y = new Float32Array(m * n);
  const flops = 2 * m * n * k;
  const reps = sz.reps(flops);
  say(`gemm_q4_0 / gemm_q8_0 / gemm_f32 at m=${m} n=${n} k=${k} (X·Wᵀ, ${t} thread(s)), interleaved`);
  const types = ['q4_0', 'q8_0'] as const;
  const weights = types.map((type) => quantize(type, wf, n, k));
  const runs = [
    () => gemmF32(pool, { m, n, k, a: x, b: wf, transB: true, c: y }),
    ...types.map((type, i) => () => matmulQ(pool, { type, w: weights[i]!, n, k, x, m, y })),
  ];
  // Round-robin so that a neighbour's load hits the reference and ours alike.
  for (const run of runs) run();
  const best = runs.map(() => Infinity);
  for (let r = 0; r < reps; r++) runs.forEach((run, i) => (best[i] = Math.min(best[i]!, timeOnce(run))));
  types.forEach((type, i) =>
    out.push(
      result({
        case: `gemm_${type}_m${m}_n${n}_k${k}_t${t}`,
        metric: 'GFLOP/s',
        value: flops / best[i + 1]! / 1e9,
        unit: 'GFLOP/s',
        reference: 'gemm_f32',
        referenceValue: flops / best[0]! / 1e9,
        details: { threads: t, m, n, k, reps },
      }),
    ),
  );
}

export function parseTypes(value: string): WeightType[] {
  const out = value.split(',').map((p) => p.trim()) as WeightType[];
  for (const t of out)
    if (!WEIGHT_TYPES.includes(t))
      throw new UsageError(`--gemv-types: unknown weight type '${t}': use some of ${WEIGHT_TYPES.join(',')}`);
  return out;
}

export function registerBenchKernels(bench: Command): void {
  bench
    .command('kernels')
    .description('f32 GEMM vs OpenBLAS, quantized GEMV vs memory read bandwidth, quantized GEMM vs f32 GEMM')
    .option('--json', 'print the report as JSON (schema in bench/report.ts)')
    .option('--threads <list>', 'thread counts to measure, e.g. 1,2 (default: 1 and 2, as the cpus allow)')
    .option('--quick', 'small sizes and few repetitions (seconds; for tests)')
    .option('--gemv-types <list>', 'weight types of the GEMV cases, e.g. q4_0,q4_k,q6_k (default q4_0,q8_0)')
    .option('--gemv-only', 'only the GEMV cases (weight read bandwidth against the read reference)')
    .addHelpText(
      'after',
      '\nExamples:\n  redblue bench kernels            # full run: a few minutes\n  redblue bench kernels --json --threads 2\n  redblue bench kernels --quick --json\n  redblue bench kernels --gemv-only --gemv-types q4_0,q4_k,q6_k',
    )
    .action(
      async (opts: {
        json?: boolean;
        threads?: string;
        quick?: boolean;
        gemvTypes?: string;
        gemvOnly?: boolean;
      }) => {
        const available = loadAddon().currentAffinity().length;
        const threads = opts.threads
          ? parseThreads(opts.threads, available)
          : [1, 2].filter((t) => t <= available);
        const report = await runKernelsBench({
          threads,
          quick: opts.quick ?? false,
          gemvTypes: opts.gemvTypes ? parseTypes(opts.gemvTypes) : undefined,
          gemvOnly: opts.gemvOnly ?? false,
          progress: (line) => process.stderr.write(`[bench kernels] ${line}\n`),
        });
        process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
      },
    );
}
