// `redblue bench collectives`: all-reduce and all-gather between executor processes through the
// shared-memory transport, against Open MPI (same operations, same process count, same run) and
// against memcpy bandwidth as the limit. Schema: bench/report.ts; case names in docs/shm.md.
import { fork } from 'node:child_process';
import { readTopology } from '../native/topology.js';
import { oneCpuPerCore } from '../native/virtual-nodes.js';
import type { Command } from 'commander';
import { parsePositiveInt, UsageError } from '../common/errors.js';
import { memcpySeconds, type ShmBenchOp } from '../transport/shm.js';
import type { WorkerCase, WorkerConfig, WorkerReport } from './collectives-worker.js';
import { runMpi, type MpiCase } from './mpi-reference.js';
import { machineInfo, renderReport, result, type BenchReport, type BenchResult } from './report.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const LATENCY_SIZES = [4 * KiB, 16 * KiB, 64 * KiB];
const BANDWIDTH_SIZES = [1 * MiB, 16 * MiB];

export interface CollectivesOptions {
  ranks: number[];
  quick: boolean;
}

function label(bytes: number): string {
  return bytes >= MiB ? `${bytes / MiB}MiB` : `${bytes / KiB}KiB`;
}

function iterations(bytes: number, quick: boolean): number {
  if (bytes <= 64 * KiB) return quick ? 300 : 5000;
  if (bytes <= MiB) return quick ? 30 : 300;
  return quick ? 5 : 40;
}

const OPS: { shm: ShmBenchOp; mpi: MpiCase['op'] }[] = [
  { shm: 'allReduce', mpi: 'allreduce' },
  { shm: 'allGather', mpi: 'allgather' },
];

async function runShm(ranks: number, pin: boolean, reps: number, cases: WorkerCase[], jsCases: WorkerCase[]) {
  const workerPath = new URL('./collectives-worker.js', import.meta.url);
  const name = `bench-${process.pid}-r${ranks}`;
  // One hardware thread per physical core, as Open MPI's --bind-to core does for the reference.
  const cpus = coreCpus();
  const children = Array.from({ length: ranks }, (_, rank) => {
    const cfg: WorkerConfig = {
      name,
      rank,
      size: ranks,
      cpu: pin ? cpus[rank % cpus.length]! : null,
      cases,
      jsCases,
      reps,
    };
    return fork(workerPath, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  });
  const replies = await Promise.all(
    children.map(
      (child, rank) =>
        new Promise<WorkerReport>((resolve, reject) => {
          child.once('message', (m: { ok: boolean; report?: WorkerReport; error?: string }) =>
            m.ok ? resolve(m.report!) : reject(new Error(`shm rank ${rank}: ${m.error}`)),
          );
          child.once('exit', (code) =>
            reject(new Error(`shm rank ${rank} exited (${code}) without a report`)),
          );
        }),
    ),
  ).finally(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });
  return replies[0]!;
}

/** The first cpu of every physical core. */
function coreCpus(): number[] {
  const t = readTopology();
  return oneCpuPerCore(t, t.cores.length);
}

export async function runCollectivesBench(opts: CollectivesOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const cpus = coreCpus().length;
  const sizes = [...LATENCY_SIZES, ...BANDWIDTH_SIZES];
  const results: BenchResult[] = [];
  // Every number is the best of `reps` runs: the box is shared, and the least disturbed run is
  // the closest to what the code can do (the same rule for MPI, memcpy and us).
  const reps = opts.quick ? 1 : 3;
  // The limit: one core copying the same number of bytes between private buffers.
  const memcpy = new Map(
    BANDWIDTH_SIZES.map((b) => {
      let best = Infinity;
      for (let r = 0; r < reps; ++r) best = Math.min(best, memcpySeconds(b, iterations(b, opts.quick) * 4));
      return [b, best];
    }),
  );
  for (const ranks of opts.ranks) {
    const pin = ranks <= cpus;
    const cases: WorkerCase[] = OPS.flatMap((o) =>
      sizes.map((bytes) => ({ op: o.shm, bytes, iters: iterations(bytes, opts.quick) })),
    );
    // Zero-copy all-reduce (input already in shared memory) at the bandwidth sizes.
    const slotCases: WorkerCase[] = BANDWIDTH_SIZES.map((bytes) => ({
      op: 'allReduceSlot',
      bytes,
      iters: iterations(bytes, opts.quick),
    }));
    const jsCases = [{ op: 'allReduce' as const, bytes: 16 * KiB, iters: iterations(16 * KiB, opts.quick) }];
    const mpiCases = OPS.flatMap((o) =>
      sizes.map((bytes) => ({ op: o.mpi, bytes, iters: iterations(bytes, opts.quick) })),
    );
    // MPI and shm take turns, so a burst of load on the shared box hits both alike.
    const mpi = new Map<string, number>();
    let shm: WorkerReport | undefined;
    for (let r = 0; r < reps; ++r) {
      const m = runMpi(ranks, pin, 1, mpiCases);
      for (const [k, v] of m) mpi.set(k, Math.min(v, mpi.get(k) ?? Infinity));
      const s = await runShm(ranks, pin, 1, [...cases, ...slotCases], jsCases);
      shm = shm
        ? {
            ...shm,
            seconds: shm.seconds.map((v, i) => Math.min(v, s.seconds[i]!)),
            jsSeconds: shm.jsSeconds.map((v, i) => Math.min(v, s.jsSeconds[i]!)),
          }
        : s;
    }
    if (!shm) throw new Error('no shm measurement');
    const details = { ranks, pinned: pin, backing: shm.backing, quick: opts.quick, bestOf: reps };
    cases.forEach((c, i) => {
      const opName = OPS.find((o) => o.shm === c.op)!.mpi;
      const base = `${opName}_f32_${label(c.bytes)}_r${ranks}`;
      const ours = shm.seconds[i]!;
      const theirs = mpi.get(`${opName} ${c.bytes}`)!;
      if (LATENCY_SIZES.includes(c.bytes)) {
        results.push(
          result({
            case: base,
            metric: 'latency',
            value: ours * 1e6,
            unit: 'µs',
            reference: 'openmpi',
            referenceValue: theirs * 1e6,
            direction: 'lower-is-better',
            details: { ...details, iters: c.iters },
          }),
        );
      } else {
        const gbs = (s: number) => c.bytes / s / 1e9;
        results.push(
          result({
            case: base,
            metric: 'bandwidth',
            value: gbs(ours),
            unit: 'GB/s',
            reference: 'openmpi',
            referenceValue: gbs(theirs),
            details: { ...details, iters: c.iters, latencyUs: ours * 1e6 },
          }),
          result({
            case: `${base}_vs_memcpy`,
            metric: 'bandwidth',
            value: gbs(ours),
            unit: 'GB/s',
            reference: 'memcpy',
            referenceValue: gbs(memcpy.get(c.bytes)!),
            details: { ...details, iters: c.iters },
          }),
        );
      }
    });
    slotCases.forEach((c, i) => {
      const seconds = shm.seconds[cases.length + i]!;
      results.push(
        result({
          case: `allreduce_f32_${label(c.bytes)}_r${ranks}_slot_vs_memcpy`,
          metric: 'bandwidth',
          value: c.bytes / seconds / 1e9,
          unit: 'GB/s',
          reference: 'memcpy',
          referenceValue: c.bytes / memcpy.get(c.bytes)! / 1e9,
          details: {
            ...details,
            iters: c.iters,
            note: 'input written straight into the shared slot (zero-copy)',
          },
        }),
      );
    });
    jsCases.forEach((c, i) => {
      results.push(
        result({
          case: `allreduce_f32_${label(c.bytes)}_r${ranks}_js`,
          metric: 'latency',
          value: shm.jsSeconds[i]! * 1e6,
          unit: 'µs',
          reference: 'openmpi',
          referenceValue: mpi.get(`allreduce ${c.bytes}`)! * 1e6,
          direction: 'lower-is-better',
          details: { ...details, iters: c.iters, note: 'one awaited Promise per all-reduce' },
        }),
      );
    });
  }
  return { benchmark: 'collectives', results, machine: machineInfo(), startedAt };
}

export function registerBenchCollectives(bench: Command): void {
  bench
    .command('collectives')
    .description(
      'all-reduce and all-gather between processes through shared memory, vs Open MPI and memcpy bandwidth',
    )
    .option('--json', 'print the report as JSON')
    .option('--ranks <R>', 'number of processes (default: 2, then 4)', (v) => parsePositiveInt(v, '--ranks'))
    .option('--quick', 'fewer iterations (a fast end-to-end check; numbers are noisier)')
    .addHelpText(
      'after',
      '\nExamples:\n  redblue bench collectives\n  redblue bench collectives --ranks 2 --json',
    )
    .action(async (opts: { json?: boolean; ranks?: number; quick?: boolean }) => {
      if (opts.ranks !== undefined && (opts.ranks < 2 || opts.ranks > 64)) {
        throw new UsageError(`--ranks must be between 2 and 64, got ${opts.ranks}`);
      }
      const report = await runCollectivesBench({
        ranks: opts.ranks ? [opts.ranks] : [2, 4],
        quick: !!opts.quick,
      });
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
    });
}
