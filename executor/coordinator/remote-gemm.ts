// `redblue launch gemm`: one C = A·B across hosts, following the planner's bricks. Each host
// stages A and B (made from the seed on the host, or streamed from the coordinator's files),
// computes and reduces its own bricks natively over shared memory, then the host leaders reduce
// the hosts' partial C over gRPC (each host owns a band of rows and pulls the others' partials of
// it), and the coordinator reads C from the owners.
import type { Plan } from '../../planner/types.js';
import type { RemoteCluster } from './remote-cluster.js';
import { gemmOperands, type GemmInputs, type GemmRunResult } from './gemm-run.js';
import { executorAddon, STREAM_A, STREAM_B } from '../../native/steps.js';
import { gemmLayout } from '../node/gemm-layout.js';
import { brickToWire } from '../../transport/bricks.js';
import { writeNpyMatrix } from './npy.js';

export interface RemoteGemmResult extends GemmRunResult {
  hosts: number;
  /** Of `seconds`: the cross-host reduction of partial C between host leaders. */
  reduceSeconds: number;
  /** Bytes of partial C that crossed between hosts. */
  reduceBytes: number;
  /** Bytes of A and B streamed to the hosts (0 when they were made from the seed there). */
  inputBytes: number;
}

/** Sorted, merged row intervals [lo, hi) of a list of ranges. */
function mergeRanges(rs: [number, number][]): [number, number][] {
  const sorted = [...rs].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

export async function runRemoteGemm(
  rc: RemoteCluster,
  plan: Plan,
  inp: GemmInputs,
  out?: string,
): Promise<RemoteGemmResult> {
  const { m, n, k } = inp;
  const H = rc.hosts.length;
  if (plan.ranks.length !== rc.size) {
    throw new Error(`the plan has ${plan.ranks.length} ranks but the hosts run ${rc.size} executors`);
  }
  const operands = gemmOperands(inp);
  const perHost = rc.hosts.map((_, h) => plan.ranks.filter((r) => r.host === h));
  // Each host's area holds the operands and the partial slots of its own bricks.
  const layouts = perHost.map((ranks) =>
    gemmLayout(
      m,
      n,
      k,
      ranks.map((r) => r.bricks),
    ),
  );
  const { aOffset, bOffset, cOffset, partialOffset } = layouts[0]!;

  // Inputs: made from the seed on each host, or streamed from the files: only the rows of A (m
  // ranges) and of B (k ranges) that the host's bricks read.
  await rc.guard(Promise.all(rc.hosts.map((c, h) => c.stage(layouts[h]!.bytes))));
  const bytesOf = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  let inputBytes = 0;
  await rc.guard(
    Promise.all(
      rc.hosts.map(async (c, h) => {
        const bricks = perHost[h]!.flatMap((r) => r.bricks);
        if (operands.a) {
          for (const [lo, hi] of mergeRanges(bricks.map((b) => b.m))) {
            inputBytes += (hi - lo) * k * 4;
            await c.write(aOffset + lo * k * 4, bytesOf(operands.a.subarray(lo * k, hi * k)));
          }
        } else await c.fill(aOffset, m * k, inp.seed, STREAM_A);
        if (operands.b) {
          for (const [lo, hi] of mergeRanges(bricks.map((b) => b.k))) {
            inputBytes += (hi - lo) * n * 4;
            await c.write(bOffset + lo * n * 4, bytesOf(operands.b.subarray(lo * n, hi * n)));
          }
        } else await c.fill(bOffset, k * n, inp.seed, STREAM_B);
      }),
    ),
  );

  const started = process.hrtime.bigint();
  const replies = await rc.guard(
    Promise.all(
      rc.hosts.map((c, h) =>
        c.gemm({
          m,
          n,
          k,
          bricks: perHost[h]!.map((r) => ({ node: r.node, bricks: r.bricks.map(brickToWire) })),
          aOffset,
          bOffset,
          cOffset,
          partialOffset,
        }),
      ),
    ),
  );
  const reduceStart = process.hrtime.bigint();
  // Each host's C now holds its bricks' sum; cells no brick of the host touched are zero (a
  // staging area starts zeroed). Host o owns rows [o·m/H, (o+1)·m/H) of C and pulls every other host's partial of them: only
  // the rows that host's bricks touched (its C is zero elsewhere).
  const owned = (o: number): [number, number] => [Math.floor((o * m) / H), Math.floor(((o + 1) * m) / H)];
  const touched = perHost.map((ranks) => mergeRanges(ranks.flatMap((r) => r.bricks.map((b) => b.m))));
  let reduceBytes = 0;
  await rc.guard(
    Promise.all(
      rc.hosts.map(async (c, o) => {
        const [lo, hi] = owned(o);
        for (let h = 0; h < H; h++) {
          if (h === o) continue;
          const rows = touched[h]!.map(([a, b]) => [Math.max(a, lo), Math.min(b, hi)] as const).filter(
            ([a, b]) => b > a,
          );
          if (rows.length === 0) continue;
          const ranges = rows.map(([a, b]) => ({ offset: cOffset + a * n * 4, bytes: (b - a) * n * 4 }));
          reduceBytes += ranges.reduce((s, r) => s + r.bytes, 0);
          await c.pullAdd(h, ranges);
        }
      }),
    ),
  );
  const end = process.hrtime.bigint();
  const seconds = Number(end - started) / 1e9;

  const c = new Float32Array(m * n);
  await rc.guard(
    Promise.all(
      rc.hosts.map((cl, o) => {
        const [lo, hi] = owned(o);
        if (hi <= lo) return Promise.resolve();
        return cl.read(cOffset + lo * n * 4, new Uint8Array(c.buffer, lo * n * 4, (hi - lo) * n * 4));
      }),
    ),
  );
  if (out) writeNpyMatrix(out, m, n, c);
  const made = (src: Float32Array | null, count: number, stream: number) => {
    if (src) return src;
    const x = new Float32Array(count);
    executorAddon().fillUniform(x.buffer, 0, count, inp.seed, stream);
    return x;
  };
  const perRank = replies.flatMap((r, h) =>
    r.ranks.map((t, node) => {
      const rank = rc.hostFirstRanks[h]! + node;
      return { ...t, rank, bricks: plan.ranks[rank]!.bricks.length };
    }),
  );
  return {
    m,
    n,
    k,
    seconds,
    gflops: (2 * m * n * k) / seconds / 1e9,
    perRank,
    c,
    a: made(operands.a, m * k, STREAM_A),
    b: made(operands.b, k * n, STREAM_B),
    hosts: H,
    reduceSeconds: Number(end - reduceStart) / 1e9,
    reduceBytes,
    inputBytes,
  };
}
