// `redblue run gemm`: one distributed C = A·B following the planner's bricks. A and B go into
// the host's staging area, every executor fetches its blocks into node-local memory, multiplies
// and reduces its rows of C (native step), and the coordinator writes C out. The staging area
// belongs to the run, not to the executors: when one dies, the executors left attach it, compute
// only the C chunks not marked done (planner/reassign.ts deals them out) and reduce all of C.
import type { Plan } from '../../planner/types.js';
import { readNpyMatrix, writeNpyMatrix } from './npy.js';
import { checkFinite } from './finite.js';
import type { LocalCluster } from '../host/local-cluster.js';
import { executorAddon, STREAM_A, STREAM_B } from '../../native/steps.js';
import { cRowsOf, gemmLayout, planChunks, type GemmLayout } from '../node/gemm-layout.js';
import { createSharedArea, type SharedArea } from '../../transport/shared-area.js';
import { assignLeftovers } from '../../planner/reassign.js';
import { brickToWire, rangeToWire } from '../../transport/bricks.js';
import type { StepSchedule, StepTimings } from '../../native/steps.js';

export interface GemmInputs {
  m: number;
  n: number;
  k: number;
  a?: string;
  b?: string;
  seed: number;
  /** Run even when A or B hold NaN or Inf (else they are refused, saying where). */
  allowNonFinite?: boolean;
}

export interface GemmRunResult {
  m: number;
  n: number;
  k: number;
  seconds: number;
  gflops: number;
  /** Per rank: times, and what it did (the schedule; absent across hosts, whose replies carry
   * times only). */
  perRank: (StepTimings & Partial<StepSchedule> & { rank: number; bricks: number })[];
  /** C, row-major m×n (a view of a copy, safe after the run). */
  c: Float32Array;
  a: Float32Array;
  b: Float32Array;
  /** After lost executors: C chunks of the plan, and how many were computed again (the rest were kept). */
  chunks?: { planned: number; recomputed: number };
}

/** Loads A and B from their files (null: made from the seed), checking shapes and values. */
export function gemmOperands(inp: GemmInputs): { a: Float32Array | null; b: Float32Array | null } {
  let a: Float32Array | null = null;
  let b: Float32Array | null = null;
  if (inp.a) {
    const x = readNpyMatrix(inp.a);
    if (x.rows !== inp.m || x.cols !== inp.k) {
      throw new Error(`${inp.a} is ${x.rows}×${x.cols}, but A must be m×k = ${inp.m}×${inp.k}`);
    }
    checkFinite(`A (${inp.a})`, x.data, x.cols, inp.allowNonFinite);
    a = x.data;
  }
  if (inp.b) {
    const x = readNpyMatrix(inp.b);
    if (x.rows !== inp.k || x.cols !== inp.n) {
      throw new Error(`${inp.b} is ${x.rows}×${x.cols}, but B must be k×n = ${inp.k}×${inp.n}`);
    }
    checkFinite(`B (${inp.b})`, x.data, x.cols, inp.allowNonFinite);
    b = x.data;
  }
  return { a, b };
}

/**
 * One gemm that survives lost executors: run() on the first executors computes the plan; run()
 * again on the executors left (after one died) computes only the chunks not done, on the same
 * staging area. close() removes the area (also done at exit, so Ctrl-C leaves none).
 */
export class GemmJob {
  private area: SharedArea | undefined;
  private layout: GemmLayout | undefined;
  private operands: { a: Float32Array | null; b: Float32Array | null } | undefined;
  private readonly allBricks;
  private readonly onExit = () => this.close();

  constructor(
    private readonly plan: Plan,
    private readonly inp: GemmInputs,
    private readonly out?: string,
  ) {
    this.allBricks = plan.ranks.map((r) => ({ rank: r.rank, bricks: r.bricks.map(brickToWire) }));
  }

  async run(cluster: LocalCluster): Promise<GemmRunResult> {
    const { m, n, k } = this.inp;
    // The plan as it stands, on as many executors as it has ranks; otherwise (an executor lost,
    // even before the first step) the chunks not done, dealt to the executors there are.
    const first = this.area === undefined && this.plan.ranks.length === cluster.size;
    if (!this.area) {
      this.operands = gemmOperands(this.inp);
      const layout = gemmLayout(
        m,
        n,
        k,
        this.plan.ranks.map((r) => r.bricks),
      );
      this.layout = layout;
      this.area = createSharedArea(`gemm-${Date.now().toString(36)}`, layout.bytes);
      process.on('exit', this.onExit);
      const buf = this.area.buffer;
      const fill = (src: Float32Array | null, off: number, count: number, stream: number) => {
        if (src) new Float32Array(buf, off, count).set(src);
        else executorAddon().fillUniform(buf, off, count, this.inp.seed, stream);
      };
      fill(this.operands.a, layout.aOffset, m * k, STREAM_A);
      fill(this.operands.b, layout.bOffset, k * n, STREAM_B);
    }
    const layout = this.layout!;
    const buf = this.area.buffer;
    await cluster.attachArea(this.area);

    // The first time each rank computes its own bricks; after a loss the executors left share
    // the chunks not marked done, whoever they were planned for.
    const chunks = planChunks(this.plan.ranks, layout.partialOffset, k);
    const done = new Uint32Array(buf, layout.doneOffset, chunks.length);
    const left = first ? [] : chunks.flatMap((_, i) => (done[i] === 1 ? [] : [i]));
    const redo = first
      ? undefined
      : assignLeftovers(
          left.map((i) => {
            const c = chunks[i]!.chunk;
            return (c.m[1] - c.m[0]) * (c.n[1] - c.n[0]) * (c.k[1] - c.k[0]);
          }),
          cluster.size,
        ).map((idx) => idx.map((j) => left[j]!));
    const P = cluster.size;
    const started = process.hrtime.bigint();
    const replies = await cluster.guard(
      Promise.all(
        cluster.clients.map((c, rank) =>
          c.gemm({
            m,
            n,
            k,
            bricks: first ? this.allBricks[rank]!.bricks : [],
            allBricks: this.allBricks,
            aOffset: layout.aOffset,
            bOffset: layout.bOffset,
            cOffset: layout.cOffset,
            partialOffset: layout.partialOffset,
            // Rows of C are reduced by every executor, idle in the plan or not.
            cRows: rangeToWire(cRowsOf(rank, P, m)),
            doneOffset: layout.doneOffset,
            ...(redo ? { redo: true, redoChunks: redo[rank]! } : {}),
          }),
        ),
      ),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const c = new Float32Array(m * n);
    c.set(new Float32Array(buf, layout.cOffset, m * n));
    const a = new Float32Array(m * k);
    a.set(new Float32Array(buf, layout.aOffset, m * k));
    const b = new Float32Array(k * n);
    b.set(new Float32Array(buf, layout.bOffset, k * n));
    if (this.out) writeNpyMatrix(this.out, m, n, c);
    const brickCount = (rank: number) =>
      redo
        ? redo[rank]!.reduce((s, i) => s + chunks[i]!.bricks.length, 0)
        : this.allBricks[rank]!.bricks.length;
    return {
      m,
      n,
      k,
      seconds,
      gflops: (2 * m * n * k) / seconds / 1e9,
      perRank: replies.map((r, rank) => ({ ...r, rank, bricks: brickCount(rank) })),
      c,
      a,
      b,
      ...(redo ? { chunks: { planned: chunks.length, recomputed: left.length } } : {}),
    };
  }

  close(): void {
    this.area?.close();
    process.off('exit', this.onExit);
  }
}

/** One gemm on these executors (no recovery: see GemmJob). */
export async function runGemm(
  cluster: LocalCluster,
  plan: Plan,
  inp: GemmInputs,
  out?: string,
): Promise<GemmRunResult> {
  const job = new GemmJob(plan, inp, out);
  try {
    return await job.run(cluster);
  } finally {
    job.close();
  }
}
