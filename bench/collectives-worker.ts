// One rank of `redblue bench collectives`, run as its own process. Opens the communicator,
// optionally pins itself to one cpu (like mpirun --bind-to core), runs every case as a native
// loop in the same order as the other ranks, and rank 0 sends the timings to the parent.
import { loadAddon } from '../native/addon.js';
import { ShmCommunicator, type ShmBenchOp } from '../transport/shm.js';

export interface WorkerCase {
  op: ShmBenchOp;
  bytes: number;
  iters: number;
}

export interface WorkerConfig {
  name: string;
  rank: number;
  size: number;
  cpu: number | null;
  cases: WorkerCase[];
  /** Each case is timed this many times; the best (least disturbed) time counts. */
  reps: number;
  /** All-reduce sizes also timed through the JS API (one awaited Promise per operation). */
  jsCases: WorkerCase[];
}

export interface WorkerReport {
  seconds: number[];
  jsSeconds: number[];
  backing: string;
}

async function main(cfg: WorkerConfig): Promise<WorkerReport> {
  if (cfg.cpu !== null) {
    const core = loadAddon();
    const node = core.topology().nodes.find((n) => n.cpus.includes(cfg.cpu!))?.id ?? 0;
    core.bindProcess([cfg.cpu], node);
  }
  // One group (world) with slots big enough for a 16 MiB zero-copy all-reduce.
  const comm = await ShmCommunicator.open({
    name: cfg.name,
    rank: cfg.rank,
    size: cfg.size,
    slotBytes: 32 << 20,
    maxGroups: 1,
  });
  try {
    const seconds: number[] = [];
    for (const c of cfg.cases) {
      let best = Infinity;
      for (let r = 0; r < cfg.reps; ++r) best = Math.min(best, await comm.bench(c.op, c.bytes, c.iters));
      seconds.push(best);
    }
    const jsSeconds: number[] = [];
    for (const c of cfg.jsCases) {
      const data = new Float32Array(c.bytes / 4);
      for (let i = 0; i < 10; ++i) await comm.allReduce(data);
      let best = Infinity;
      for (let r = 0; r < cfg.reps; ++r) {
        await comm.barrier();
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < c.iters; ++i) await comm.allReduce(data);
        best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9 / c.iters);
      }
      jsSeconds.push(best);
    }
    return { seconds, jsSeconds, backing: comm.backing };
  } finally {
    comm.close();
  }
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
main(cfg).then(
  (report) => {
    process.send?.({ ok: true, rank: cfg.rank, report }, () => process.disconnect());
  },
  (err: unknown) => {
    process.send?.(
      { ok: false, rank: cfg.rank, error: err instanceof Error ? err.message : String(err) },
      () => process.disconnect(),
    );
  },
);
