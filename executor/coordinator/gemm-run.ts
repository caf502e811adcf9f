// `redblue run gemm`: one distributed C = A·B following the planner's bricks. A and B go into
// the host's staging area, every executor fetches its blocks into node-local memory, multiplies
// and reduces its rows of C (native step), and the coordinator writes C out.
import type { Plan } from '../../planner/types.js';
import { readNpyMatrix, writeNpyMatrix } from './npy.js';
import { checkFinite } from './finite.js';
import type { LocalCluster } from '../host/local-cluster.js';
import { executorAddon, STREAM_A, STREAM_B } from '../../native/steps.js';
import { cRowsOf, gemmLayout } from '../node/gemm-layout.js';
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

export async function runGemm(
  cluster: LocalCluster,
  plan: Plan,
  inp: GemmInputs,
  out?: string,
): Promise<GemmRunResult> {
  const { m, n, k } = inp;
  if (plan.ranks.length !== cluster.size) {
    throw new Error(`the plan has ${plan.ranks.length} ranks but ${cluster.size} executors are running`);
  }
  const operands = gemmOperands(inp);
  const layout = gemmLayout(
    m,
    n,
    k,
    plan.ranks.map((r) => r.bricks),
  );
  const { aOffset, bOffset, cOffset, partialOffset } = layout;
  const area = await cluster.stage('gemm', layout.bytes);
  const buf = area.buffer;
  const fill = (src: Float32Array | null, off: number, count: number, stream: number) => {
    if (src) new Float32Array(buf, off, count).set(src);
    else executorAddon().fillUniform(buf, off, count, inp.seed, stream);
  };
  fill(operands.a, aOffset, m * k, STREAM_A);
  fill(operands.b, bOffset, k * n, STREAM_B);

  const allBricks = plan.ranks.map((r) => ({
    rank: r.rank,
    bricks: r.bricks.map(brickToWire),
  }));
  const P = cluster.size;
  const started = process.hrtime.bigint();
  const replies = await cluster.guard(
    Promise.all(
      cluster.clients.map((c, rank) =>
        c.gemm({
          m,
          n,
          k,
          bricks: allBricks[rank]!.bricks,
          allBricks,
          aOffset,
          bOffset,
          cOffset,
          partialOffset,
          // Rows of C are reduced by every executor, idle in the plan or not.
          cRows: rangeToWire(cRowsOf(rank, P, m)),
        }),
      ),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const c = new Float32Array(m * n);
  c.set(new Float32Array(buf, cOffset, m * n));
  const a = new Float32Array(m * k);
  a.set(new Float32Array(buf, aOffset, m * k));
  const b = new Float32Array(k * n);
  b.set(new Float32Array(buf, bOffset, k * n));
  area.close();
  if (out) writeNpyMatrix(out, m, n, c);
  return {
    m,
    n,
    k,
    seconds,
    gflops: (2 * m * n * k) / seconds / 1e9,
    perRank: replies.map((r, rank) => ({ ...r, rank, bricks: allBricks[rank]!.bricks.length })),
    c,
    a,
    b,
  };
}
