// `redblue run gemm` and `redblue launch gemm`: one distributed C = A·B following the planner's
// bricks, on one host or many (cluster.ts). Each host stages A and B (made from the seed there,
// or written from the coordinator's files: only the rows its bricks read), every executor fetches
// its blocks into node-local memory, multiplies and reduces its rows of C over shared memory
// (native step). Across hosts the host leaders then reduce the hosts' partial C (each host owns a
// band of rows and pulls the others' partials of it, natively); the coordinator reads C from the
// owners. On one host the staging area belongs to the run, not to the executors: when one dies,
// the executors left attach it, compute only the C chunks not marked done (planner/reassign.ts
// deals them out) and reduce all of C.
import type { Plan } from '../../planner/types.js';
import { readNpyMatrix, writeNpyMatrix } from './npy.js';
import { checkFinite } from './finite.js';
import type { LocalCluster } from '../host/local-cluster.js';
import type { RemoteCluster } from './remote-cluster.js';
import { executorAddon, STREAM_A, STREAM_B } from '../../native/steps.js';
import { gemmLayout, planChunks, type GemmLayout } from '../node/gemm-layout.js';
import { createSharedArea, type SharedArea } from '../../transport/shared-area.js';
import { availableOnMachine } from '../../native/available-memory.js';
import { reserveBytes, usableBytes } from '../../planner/model-memory.js';
import { UsageError } from '../../common/errors.js';
import { formatBytes } from '../../common/format.js';
import { assignLeftovers } from '../../planner/reassign.js';
import { brickToWire } from '../../transport/bricks.js';
import type { StepSchedule, StepTimings } from '../../native/steps.js';
import { oneHost, runCluster, type RunCluster } from './cluster.js';
import type { LinkTransport } from '../../transport/control.js';

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
  /** Per rank: times, and what it did (the schedule, where the host's reply carries it). */
  perRank: (StepTimings & Partial<StepSchedule> & { rank: number; bricks: number })[];
  /** C, row-major m×n (a view of a copy, safe after the run). */
  c: Float32Array;
  a: Float32Array;
  b: Float32Array;
  /** After lost executors: C chunks of the plan, and how many were computed again (the rest were kept). */
  chunks?: { planned: number; recomputed: number };
  hosts: number;
  /** Of `seconds`: the cross-host reduction of partial C between host leaders (0 on one host). */
  reduceSeconds: number;
  /** Bytes of partial C that crossed between hosts. */
  reduceBytes: number;
  /** How partial C crossed: over UCX when every host serves it (`--transport ucx`), else gRPC. */
  reduceLink?: LinkTransport;
  /** Bytes of A and B sent to the hosts over the network (0 for `run`, or when made from the seed). */
  inputBytes: number;
}

/**
 * Why a gemm on this machine would not fit its memory, or undefined: the staging area (A, B, C and
 * the partial slots, in /dev/shm or huge pages), the copies of A and B read from files and of C
 * returned, and every executor's working set, against what the machine can give less the reserve
 * left to the rest of it. Staging an area larger than that ends in the out-of-memory killer's
 * SIGKILL (a 60000×60000×20000 gemm here: 24 GB of staging on a 24 GiB box), not in an error.
 */
export function localGemmShortfall(plan: Plan, inp: GemmInputs, stagingBytes: number): string | undefined {
  const have = availableOnMachine();
  if (!have) return undefined;
  const { m, n, k } = inp;
  const copies = ((inp.a ? m * k : 0) + (inp.b ? k * n : 0) + m * n) * 4;
  // (a plan made by hand, as tests make, may not say: counted as nothing)
  const executors = plan.ranks.reduce(
    (s, r) => s + (Number.isFinite(r.peakMemoryBytes) ? r.peakMemoryBytes : 0),
    0,
  );
  const need = stagingBytes + copies + executors;
  const room = usableBytes(have);
  if (need <= room) return undefined;
  return `the gemm does not fit in memory: ${m}×${n}×${k} needs ${formatBytes(need)} (staging A, B and C ${formatBytes(stagingBytes)}, copies of the operands and of C ${formatBytes(copies)}, the executors' working sets ${formatBytes(executors)}) but this machine has ${formatBytes(have.bytes)} available${have.hugeFreeBytes ? ` and ${formatBytes(have.hugeFreeBytes)} of free huge pages` : ''} (${formatBytes(reserveBytes(have.bytes))} of it left to the rest of the system): ask for a smaller --m, --n or --k, or run across hosts (redblue launch gemm), each of which stages only what its bricks read`;
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

/** Sorted, merged row intervals [lo, hi) of a list of ranges. */
function mergeRanges(rs: readonly (readonly [number, number])[]): [number, number][] {
  const sorted = [...rs].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** A Float32Array's bytes in views of at most 1 GiB (a Uint8Array ends at 2^32 - 1 bytes). */
function bytePieces(x: Float32Array): { at: number; bytes: Uint8Array }[] {
  const step = 1 << 30;
  const out: { at: number; bytes: Uint8Array }[] = [];
  for (let at = 0; at < x.byteLength; at += step)
    out.push({ at, bytes: new Uint8Array(x.buffer, x.byteOffset + at, Math.min(step, x.byteLength - at)) });
  return out;
}

/**
 * One gemm: run() computes the plan on the cluster's hosts. On one host it survives lost
 * executors: run() again on a LocalCluster of the executors left computes only the chunks not
 * done, on the same staging area. close() removes that area (also done at exit, so Ctrl-C leaves
 * none).
 */
export class GemmJob {
  /** One host: the run's own staging area, kept across lost executors. */
  private area: SharedArea | undefined;
  private layouts: GemmLayout[] | undefined;
  private operands: { a: Float32Array | null; b: Float32Array | null } | undefined;
  /** Every host's staging area as UCX descriptors, when all of them serve UCX. */
  private ucxAreas: Buffer[] | undefined;
  private readonly onExit = () => this.close();

  constructor(
    private readonly plan: Plan,
    private readonly inp: GemmInputs,
    private readonly out?: string,
  ) {}

  async run(machines: LocalCluster | RemoteCluster | RunCluster): Promise<GemmRunResult> {
    const { m, n, k } = this.inp;
    const plan = this.plan;
    const local = 'hosts' in machines ? undefined : oneHost(machines);
    const rc = local ?? runCluster(machines);
    const H = rc.hosts.length;
    // The plan as it stands, on as many executors as it has ranks; otherwise (one host, an
    // executor lost, even before the first step) the chunks not done, dealt to the executors there are.
    const resumed = this.layouts !== undefined;
    const first = !resumed && plan.ranks.length === rc.size;
    if (!first && !local)
      throw new Error(`the plan has ${plan.ranks.length} ranks but the hosts run ${rc.size} executors`);
    // Ranks are numbered host by host, node by node (planner/types.ts).
    const firsts = rc.hostFirstRanks;
    const perHost = first
      ? rc.hosts.map((_, h) => plan.ranks.filter((r) => r.rank >= firsts[h]! && r.rank < firsts[h + 1]!))
      : [plan.ranks];
    // Each host's area holds the operands and the partial slots of its own bricks (one host
    // after a loss: every rank of the plan).
    this.layouts ??= perHost.map((ranks) =>
      gemmLayout(
        m,
        n,
        k,
        ranks.map((r) => r.bricks),
      ),
    );
    const layouts = this.layouts;
    // A, B, C and the partial slots lie alike in every host's area; the done array follows the
    // host's own partial slots.
    const { aOffset, bOffset, cOffset, partialOffset, doneOffset } = layouts[0]!;
    this.operands ??= gemmOperands(this.inp);
    const operands = this.operands;

    let inputBytes = 0;
    if (local) {
      if (!this.area) {
        const short = localGemmShortfall(plan, this.inp, layouts[0]!.bytes);
        if (short) throw new UsageError(short);
        this.area = createSharedArea(`gemm-${Date.now().toString(36)}`, layouts[0]!.bytes);
        process.on('exit', this.onExit);
        await local.host.adopt(this.area);
        await this.stageInputs(local.hosts, [plan.ranks]);
      } else await local.host.adopt(this.area);
    } else {
      const staged = await rc.guard(Promise.all(rc.hosts.map((c, h) => c.stage(layouts[h]!.bytes))));
      // UCX for the reduction only when every host exposes its area (hosts may be started with
      // different transports).
      this.ucxAreas = staged.every((s) => s.ucxArea) ? staged.map((s) => s.ucxArea!) : undefined;
      inputBytes = await rc.guard(this.stageInputs(rc.hosts, perHost));
    }

    // The first time each rank computes its own bricks; after a loss the executors left share
    // the chunks not marked done, whoever they were planned for.
    const chunks = planChunks(plan.ranks, partialOffset, k);
    let left: number[] = [];
    let redo: number[][] | undefined;
    if (!first) {
      const done = new Uint32Array(chunks.length);
      await rc.hosts[0]!.read(doneOffset, new Uint8Array(done.buffer));
      left = chunks.flatMap((_, i) => (done[i] === 1 ? [] : [i]));
      redo = assignLeftovers(
        left.map((i) => {
          const c = chunks[i]!.chunk;
          return (c.m[1] - c.m[0]) * (c.n[1] - c.n[0]) * (c.k[1] - c.k[0]);
        }),
        rc.size,
      ).map((idx) => idx.map((j) => left[j]!));
    }
    const started = process.hrtime.bigint();
    const replies = await rc.guard(
      Promise.all(
        rc.hosts.map((c, h) =>
          c.gemm({
            m,
            n,
            k,
            bricks: perHost[h]!.map((r) => ({
              node: first ? r.rank - firsts[h]! : r.rank,
              bricks: r.bricks.map(brickToWire),
            })),
            aOffset,
            bOffset,
            cOffset,
            partialOffset,
            doneOffset: layouts[h]!.doneOffset,
            ...(redo ? { redoChunks: redo.map((chunks) => ({ chunks })) } : {}),
          }),
        ),
      ),
    );
    const reduceStart = process.hrtime.bigint();
    const reduced = H > 1 ? await this.reduceAcrossHosts(rc, perHost, cOffset) : undefined;
    const reduceBytes = reduced?.bytes ?? 0;
    const end = process.hrtime.bigint();
    const seconds = Number(end - started) / 1e9;

    const c = new Float32Array(m * n);
    await rc.guard(
      Promise.all(
        rc.hosts.map((host, o) => {
          const [lo, hi] = ownedRows(o, H, m);
          if (hi <= lo) return Promise.resolve();
          const band = cOffset + lo * n * 4;
          return Promise.all(
            bytePieces(c.subarray(lo * n, hi * n)).map((p) => host.read(band + p.at, p.bytes)),
          );
        }),
      ),
    );
    if (this.out) writeNpyMatrix(this.out, m, n, c);
    const made = (src: Float32Array | null, count: number, stream: number) => {
      if (src) return src;
      const x = new Float32Array(count);
      executorAddon().fillUniform(x.buffer, 0, count, this.inp.seed, stream);
      return x;
    };
    const brickCount = (rank: number) =>
      redo ? redo[rank]!.reduce((s, i) => s + chunks[i]!.bricks.length, 0) : plan.ranks[rank]!.bricks.length;
    const perRank = replies.flatMap((r, h) =>
      r.ranks.map((t, node) => {
        const rank = rc.hostFirstRanks[h]! + node;
        return { ...t, rank, bricks: brickCount(rank) };
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
      ...(redo ? { chunks: { planned: chunks.length, recomputed: left.length } } : {}),
      hosts: H,
      reduceSeconds: Number(end - reduceStart) / 1e9,
      reduceBytes,
      ...(reduced?.link ? { reduceLink: reduced.link } : {}),
      inputBytes,
    };
  }

  /**
   * A and B into each host's area: made from the seed there, or written from the files, only the
   * rows of A (m ranges) and of B (k ranges) that the host's bricks read. Returns the bytes written.
   */
  private async stageInputs(
    hosts: RunCluster['hosts'],
    perHost: readonly (readonly Plan['ranks'][number][])[],
  ): Promise<number> {
    const { m, n, k, seed } = this.inp;
    const { a, b } = this.operands!;
    const { aOffset, bOffset } = this.layouts![0]!;
    let bytes = 0;
    await Promise.all(
      hosts.map(async (c, h) => {
        const bricks = perHost[h]!.flatMap((r) => r.bricks);
        if (a) {
          for (const [lo, hi] of mergeRanges(bricks.map((br) => br.m))) {
            bytes += (hi - lo) * k * 4;
            for (const p of bytePieces(a.subarray(lo * k, hi * k)))
              await c.write(aOffset + lo * k * 4 + p.at, p.bytes);
          }
        } else await c.fill(aOffset, m * k, seed, STREAM_A);
        if (b) {
          for (const [lo, hi] of mergeRanges(bricks.map((br) => br.k))) {
            bytes += (hi - lo) * n * 4;
            for (const p of bytePieces(b.subarray(lo * n, hi * n)))
              await c.write(bOffset + lo * n * 4 + p.at, p.bytes);
          }
        } else await c.fill(bOffset, k * n, seed, STREAM_B);
      }),
    );
    return bytes;
  }

  /**
   * Each host's C holds its bricks' sum; cells no brick of the host touched are zero (an area
   * starts zeroed). Host o owns a band of rows and pulls every other host's partial of them: only
   * the rows that host's bricks touched. Returns the bytes that crossed.
   */
  private async reduceAcrossHosts(
    rc: RunCluster,
    perHost: readonly (readonly Plan['ranks'][number][])[],
    cOffset: number,
  ): Promise<{ bytes: number; link?: LinkTransport }> {
    const { m, n } = this.inp;
    const H = rc.hosts.length;
    const touched = perHost.map((ranks) => mergeRanges(ranks.flatMap((r) => r.bricks.map((b) => b.m))));
    let bytes = 0;
    const links = new Set<LinkTransport>();
    await rc.guard(
      Promise.all(
        rc.hosts.map(async (c, o) => {
          const [lo, hi] = ownedRows(o, H, m);
          for (let h = 0; h < H; h++) {
            if (h === o) continue;
            const ranges = touched[h]!.map(([a, b]) => [Math.max(a, lo), Math.min(b, hi)] as const)
              .filter(([a, b]) => b > a)
              .map(([a, b]) => ({ offset: cOffset + a * n * 4, bytes: (b - a) * n * 4 }));
            if (ranges.length === 0) continue;
            bytes += ranges.reduce((s, r) => s + r.bytes, 0);
            links.add((await c.pullAdd(h, ranges, this.ucxAreas?.[h])).link);
          }
        }),
      ),
    );
    if (links.size === 0) return { bytes };
    return { bytes, link: links.has('grpc') ? 'grpc' : 'ucx' };
  }

  close(): void {
    this.area?.close();
    process.off('exit', this.onExit);
  }
}

/** The rows of C host o of H owns after the cross-host reduction. */
function ownedRows(o: number, H: number, m: number): [number, number] {
  return [Math.floor((o * m) / H), Math.floor(((o + 1) * m) / H)];
}

/** One gemm on these executors or hosts (no recovery: see GemmJob). */
export async function runGemm(
  machines: LocalCluster | RemoteCluster | RunCluster,
  plan: Plan,
  inp: GemmInputs,
  out?: string,
): Promise<GemmRunResult> {
  const job = new GemmJob(plan, inp, out);
  try {
    return await job.run(machines);
  } finally {
    job.close();
  }
}
