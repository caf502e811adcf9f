// `redblue bench run`: the engine end to end on this box, against references measured in the
// same run: a distributed gemm against one process calling OpenBLAS with as many threads, and a
// weight-stationary layer stack on 2 executors against 1 executor of 1 core.
import type { Command } from 'commander';
import { readTopology, type MachineTopology } from '../native/topology.js';
import { oneCpuPerCore, restrictToCpus, virtualize } from '../native/virtual-nodes.js';
import { UsageError } from '../common/errors.js';
import { LocalCluster } from '../executor/host/local-cluster.js';
import { runGemm } from '../executor/coordinator/gemm-run.js';
import { runLayers } from '../executor/coordinator/layer-run.js';
import { planLocalGemm } from '../executor/coordinator/local-plan.js';
import { machineInfo, renderReport, result, type BenchReport, type BenchResult } from './report.js';
import { openblasGemm } from '../native/kernels.js';
import { streamRead } from './read-bandwidth.js';

const log = (s: string) => process.stderr.write(`bench run: ${s}\n`);

async function withCluster<T>(topo: MachineTopology, f: (c: LocalCluster) => Promise<T>): Promise<T> {
  const c = await LocalCluster.start({ topology: topo });
  try {
    return await f(c);
  } finally {
    await c.stop();
  }
}

export interface RunBenchOptions {
  /** gemm size (default 4096) */
  gemmSize: number;
  /** layer stack: n×k Q4_0 matrices and enough layers for this many bytes of weights */
  layerN: number;
  layerK: number;
  weightBytes: number;
  iters: number;
  repeats: number;
  /** The cpus of the executors, one each (default: one cpu on each of the first two cores). */
  cpus?: number[];
}

export const FULL: RunBenchOptions = {
  gemmSize: 4096,
  layerN: 11008,
  layerK: 4096,
  weightBytes: 560 << 20,
  iters: 10,
  repeats: 3,
};
export const QUICK: RunBenchOptions = {
  gemmSize: 512,
  layerN: 1024,
  layerK: 1024,
  weightBytes: 8 << 20,
  iters: 3,
  repeats: 1,
};

export async function benchRun(o: RunBenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  // Two executors of one core each stand in for two sockets (see machine.md).
  // On a bigger machine the executors still get one core each: the first cpu of two cores.
  const P = 2;
  const real = readTopology();
  const chosen = o.cpus ?? oneCpuPerCore(real, P);
  if (chosen.length !== P)
    throw new UsageError(`--cpus takes ${P} cpus (one per executor), got ${chosen.length}`);
  let two: MachineTopology;
  try {
    two = virtualize(restrictToCpus(real, chosen), P);
  } catch (e) {
    throw new UsageError(`--cpus: ${e instanceof Error ? e.message : String(e)}`);
  }
  log(`executors on cpus ${two.nodes.map((n) => n.cpus.join(',')).join(' and ')}`);
  const one: MachineTopology = { ...two, nodes: [two.nodes[0]!], distances: [[10]], virtualNodes: 1 };
  const results: BenchResult[] = [];
  const S = o.gemmSize;

  // gemm: P executors against one process calling OpenBLAS with P threads.
  log(`gemm ${S}³ f32 on ${P} executors`);
  const plan = planLocalGemm(two, { m: S, n: S, k: S });
  let best = Infinity;
  let a: Float32Array | undefined;
  let b: Float32Array | undefined;
  await withCluster(two, async (c) => {
    for (let i = 0; i < o.repeats; i++) {
      const r = await runGemm(c, plan, { m: S, n: S, k: S, seed: 7 });
      best = Math.min(best, r.seconds);
      a = r.a;
      b = r.b;
    }
  });
  log(`gemm ${S}³ f32: OpenBLAS with ${P} threads in one process`);
  const cRef = new Float32Array(S * S);
  let ref = Infinity;
  for (let i = 0; i < o.repeats; i++) {
    const t0 = process.hrtime.bigint();
    openblasGemm({ m: S, n: S, k: S, a: a!, b: b!, c: cRef }, P);
    ref = Math.min(ref, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const gf = (s: number) => (2 * S * S * S) / s / 1e9;
  results.push(
    result({
      case: `run_gemm_f32_${S}_${P}x1`,
      metric: 'throughput',
      value: gf(best),
      unit: 'GFLOP/s',
      reference: `openblas_${P}_threads`,
      referenceValue: gf(ref),
      details: { executors: P, plan: plan.strategy.description },
    }),
  );

  // layer stack at m = 1: P executors of one core against 1 executor of one core.
  const rowBytes = (o.layerK / 32) * 18;
  const layers = Math.max(1, Math.ceil(o.weightBytes / (o.layerN * rowBytes)));
  const layerOpts = {
    dtype: 'q4_0' as const,
    n: o.layerN,
    k: o.layerK,
    m: 1,
    layers,
    iters: o.iters,
    seed: 3,
  };
  log(
    `layer stack ${layers} × q4_0 ${o.layerN}×${o.layerK} (${((layers * o.layerN * rowBytes) / 2 ** 20).toFixed(0)} MiB) on 1 executor`,
  );
  const single = await withCluster(one, (c) =>
    runLayers(c, { ...layerOpts, repeats: o.repeats, placement: ['shard'] }),
  );
  // Mirrors (each node holds every layer, as `run layer` places them when memory allows), so
  // rows follow each executor's measured speed; shards (a fixed even split) for comparison.
  log(`layer stack on ${P} executors (mirrors, rows balanced by speed)`);
  const multi = await withCluster(two, (c) =>
    runLayers(c, { ...layerOpts, repeats: o.repeats, placement: two.nodes.map(() => 'mirror' as const) }),
  );
  log(`layer stack on ${P} executors (shards, fixed even split)`);
  const sharded = await withCluster(two, (c) =>
    runLayers(c, { ...layerOpts, repeats: o.repeats, placement: two.nodes.map(() => 'shard' as const) }),
  );
  results.push(
    result({
      case: `run_layer_q4_0_${o.layerN}x${o.layerK}_m1_${P}x1`,
      metric: 'throughput',
      value: multi.passesPerSecond,
      unit: 'passes/s',
      reference: '1_executor_1_core',
      referenceValue: single.passesPerSecond,
      details: {
        layers,
        placement: 'mirror, balanced',
        balancedRows: multi.balancedRows,
        weightBytes: multi.weightBytesPerPass,
        effectiveGBps: multi.effectiveGBps,
        singleGBps: single.effectiveGBps,
        // Each executor's own kernel rate: tells a slow core apart from time lost between layers.
        perExecutor: [single, multi, sharded].map((r, i) =>
          r.perRank.map((x) => ({
            executors: r.perRank.length,
            placement: r.balancedRows ? `${x.placement}, balanced` : x.placement,
            cpus: (i === 0 ? one : two).nodes[x.rank]!.cpus,
            backing: x.backing,
            computeMsPerPass: (x.computeSeconds / r.passes) * 1e3,
            // a shard's rows are fixed, so its kernel rate is known (a mirror's rows move)
            ...(x.placement === 'shard'
              ? { kernelGBps: (x.weightBytes * r.passes) / x.computeSeconds / 1e9 }
              : {}),
            waitMsPerPass: (x.waitSeconds / r.passes) * 1e3,
          })),
        ),
      },
    }),
  );
  results.push(
    result({
      case: `run_layer_q4_0_${o.layerN}x${o.layerK}_m1_${P}x1_shard`,
      metric: 'throughput',
      value: sharded.passesPerSecond,
      unit: 'passes/s',
      reference: '1_executor_1_core',
      referenceValue: single.passesPerSecond,
      details: { placement: 'shard, fixed even split', waitMsPerPass: sharded.waitSecondsPerPass * 1e3 },
    }),
  );
  // What the memory system allows: read bandwidth of P cores against one, in the same run.
  log(`read bandwidth of 1 and ${P} cores over ${(o.weightBytes / 2 ** 20).toFixed(0)} MiB`);
  const cpus = two.nodes.flatMap((n) => n.cpus);
  const read1 = streamRead([cpus[0]!], o.weightBytes, 3);
  const readP = streamRead(cpus.slice(0, P), o.weightBytes, 3);
  results.push(
    result({
      case: `run_layer_q4_0_${o.layerN}x${o.layerK}_m1_${P}x1_scaling_vs_read`,
      metric: `speed-up of ${P} executors over 1`,
      value: multi.passesPerSecond / single.passesPerSecond,
      unit: '×',
      reference: `read_bandwidth_${P}_cores_over_1`,
      referenceValue: readP / read1,
      details: { read1GBps: read1, readGBps: readP },
    }),
  );
  const passSeconds = multi.seconds / multi.passes;
  results.push(
    result({
      case: `run_layer_q4_0_${o.layerN}x${o.layerK}_m1_${P}x1_exchange`,
      metric: 'exchange share of a pass',
      value: multi.exchangeFraction * 100,
      unit: '%',
      reference: 'target_5_percent',
      referenceValue: 5,
      direction: 'lower-is-better',
      details: {
        exchangeMsPerPass: multi.exchangeSecondsPerPass * 1e3,
        // load imbalance: the faster executor waiting for the slower one, reported apart
        waitMsPerPass: multi.waitSecondsPerPass * 1e3,
        passMs: passSeconds * 1e3,
      },
    }),
  );
  return { benchmark: 'run', results, machine: machineInfo(), startedAt };
}

export function registerBenchRun(bench: Command): void {
  bench
    .command('run')
    .description(
      'distributed gemm vs one OpenBLAS process; layer stack on 2 executors vs 1 (2 virtual nodes of one core)',
    )
    .option('--json', 'print the results as JSON')
    .option('--quick', 'small sizes (seconds, for tests); the figures then measure caches, not memory')
    .option(
      '--cpus <a,b>',
      'the two cpus the executors run on, one each (default: the first cpu of each of the first two cores)',
    )
    .action(async (opts: { json?: boolean; quick?: boolean; cpus?: string }) => {
      let cpus: number[] | undefined;
      if (opts.cpus !== undefined) {
        cpus = opts.cpus.split(',').map((x) => Number(x.trim()));
        if (cpus.some((c) => !Number.isInteger(c) || c < 0))
          throw new UsageError(`--cpus takes cpu numbers such as 0,2, got "${opts.cpus}"`);
      }
      const report = await benchRun({ ...(opts.quick ? QUICK : FULL), ...(cpus ? { cpus } : {}) });
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
    });
}
