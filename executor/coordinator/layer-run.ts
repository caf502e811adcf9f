// `redblue run layer` and `redblue launch layer`: a weight-stationary stack of L matrices W (n×k)
// placed once per node (mirror: whole; shard: the node's rows), then passes of Y = X·Wᵀ with fresh
// X through the whole stack. Rows of every W are split over all ranks of all hosts (column-
// parallel, as tensor parallelism splits a linear layer); each host places its ranks' weights
// natively, and the slices are all-gathered after each layer inside the native pass loop:
// shared memory in a host, the leaders' native link between hosts, shared memory again.
import { randomBytes } from 'node:crypto';
import type { LocalCluster } from '../host/local-cluster.js';
import type { PassTimingsMsg } from '../../transport/host-client.js';
import { runCluster, type RunCluster } from './cluster.js';
import { allHosts, type RemoteCluster } from './remote-cluster.js';
import { BLOCK_BYTES, QBLOCK, rowLengthProblem } from '../../native/kernels.js';

export type LayerDType = 'q4_0' | 'q8_0' | 'f32';
export type PlacementMode = 'mirror' | 'shard';

export interface LayerRunOptions {
  dtype: LayerDType;
  n: number;
  k: number;
  m: number;
  layers: number;
  iters: number;
  seed: number;
  /** Per rank. */
  placement: PlacementMode[];
  /** Collect Y and X of the last pass (for verification; small shapes only). */
  collect?: boolean;
  /**
   * Where every rank holds every layer (mirror), move rows towards the ranks that ran faster on
   * the previous layer, so that a slower core doesn't leave the others waiting. Default: on
   * whenever every placement is mirror.
   */
  balance?: boolean;
  /**
   * Runs of `iters` passes on the placed weights; the fastest is reported (on a shared machine
   * the least disturbed run is the closest to what the code can do). Default 1.
   */
  repeats?: number;
  /** Weights from a file instead of the seed: layers × n × k f32, row-major, layer after layer. */
  weights?: Float32Array;
  onProgress?: (layersMade: number, total: number) => void;
}

/** What each rank reports of a layer run (a host's reply, less its pass count). */
export type RankPassTimings = Omit<PassTimingsMsg, 'passes'>;

export interface LayerRunResult {
  hosts: number;
  passes: number;
  /** Runs of `passes` passes made (`repeats`); the figures are the fastest run's. */
  runs: number;
  seconds: number;
  passesPerSecond: number;
  /** Bytes of weights read per pass (all ranks), and the rate they were read at. */
  weightBytesPerPass: number;
  effectiveGBps: number;
  /** Per pass, slowest rank: time in kernels, waiting for the slowest peer to finish each layer
   * (load imbalance), and moving the slices (the all-gathers once everyone is there). */
  computeSecondsPerPass: number;
  waitSecondsPerPass: number;
  exchangeSecondsPerPass: number;
  /** exchangeSecondsPerPass / the time of a pass. */
  exchangeFraction: number;
  perRank: (RankPassTimings & {
    rank: number;
    rows: [number, number];
    placement: PlacementMode;
    weightBytes: number;
    backing: string;
  })[];
  placeSeconds: number;
  /** With balancing: the rows per rank the run ended with (perRank.rows is the first split). */
  balancedRows?: number[];
  y?: Float32Array;
  x?: Float32Array;
}

/** Bytes of one row of W: the kernels' own block sizes (native/kernels.ts) for q4_0 and q8_0. */
export function rowBytes(dtype: LayerDType, k: number): number {
  if (dtype === 'f32') return k * 4;
  const problem = rowLengthProblem(dtype, k);
  if (problem) throw new Error(`k = ${k} must be ${problem}`);
  return (k / QBLOCK) * BLOCK_BYTES[dtype];
}

/** Rows of W per rank, split as evenly as possible. */
export function splitRows(n: number, ranks: number): [number, number][] {
  return Array.from({ length: ranks }, (_, r) => [
    Math.floor((r * n) / ranks),
    Math.floor(((r + 1) * n) / ranks),
  ]);
}

export async function runLayers(
  machines: LocalCluster | RemoteCluster | RunCluster,
  o: LayerRunOptions,
): Promise<LayerRunResult> {
  const rc = runCluster(machines);
  const P = rc.size;
  const H = rc.hosts.length;
  const first = rc.hostFirstRanks;
  rowBytes(o.dtype, o.k); // fails early when k is not a whole number of blocks
  const rows = splitRows(o.n, P);
  const rowsPerRank = rows.map(([lo, hi]) => hi - lo);
  const yOffset = 0;
  const xOffset = Math.ceil((o.layers * o.m * o.n * 4) / 64) * 64;
  const wOffset = Math.ceil((xOffset + o.m * o.k * 4) / 64) * 64;
  const layerBytes = o.n * o.k * 4;
  if (o.weights && o.weights.length !== o.layers * o.n * o.k) {
    throw new Error(`the weights hold ${o.weights.length} values, not ${o.layers} layers of ${o.n}×${o.k}`);
  }
  // Host 0 keeps Y and X of the last pass (collect); weights from a file go to every host.
  const stagingBytes = (h: number) =>
    o.weights ? wOffset + o.layers * layerBytes : o.collect && h === 0 ? wOffset : 64;
  await rc.guard(Promise.all(rc.hosts.map((c, h) => c.stage(stagingBytes(h)))));
  const weights = o.weights;
  if (weights) {
    const bytes = new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
    await rc.guard(Promise.all(rc.hosts.map((c) => c.write(wOffset, bytes))));
  }

  // Place the weights a few layers per call, so progress can be shown.
  const placeStart = process.hrtime.bigint();
  const perCall = Math.max(1, Math.ceil(o.layers / 20));
  let made = 0;
  let placed: { weightBytes: number; backing: string }[] = [];
  while (made < o.layers) {
    const count = Math.min(perCall, o.layers - made);
    const replies = await rc.guard(
      Promise.all(
        rc.hosts.map((c, h) =>
          c.placeLayers({
            dtype: o.dtype,
            n: o.n,
            k: o.k,
            layers: o.layers,
            seed: o.seed,
            placement: o.placement.slice(first[h]!, first[h + 1]!),
            firstRank: first[h]!,
            rowsPerRank,
            count,
            fresh: made === 0,
            ...(weights ? { fromStaging: true, sourceOffset: wOffset + made * layerBytes } : {}),
          }),
        ),
      ),
    );
    placed = replies.flatMap((r) => r.ranks);
    made += count;
    o.onProgress?.(made, o.layers);
  }
  const placeSeconds = Number(process.hrtime.bigint() - placeStart) / 1e9;

  // Rows follow the ranks' speed where every rank holds every layer, on one host.
  const balance = (o.balance ?? true) && P > 1 && H === 1 && o.placement.every((p) => p === 'mirror');
  let replies: (PassTimingsMsg & { rows?: number[] })[] | undefined;
  const runs = Math.max(1, o.repeats ?? 1);
  for (let rep = 0; rep < runs; rep++) {
    const run = `r${randomBytes(4).toString('hex')}`;
    const pass = await rc.guard(
      allHosts(
        rc.hosts.map((c, h) =>
          c.runLayers({
            m: o.m,
            iters: o.iters,
            seed: o.seed + 1,
            collect: !!o.collect && h === 0,
            yOffset,
            xOffset,
            firstRank: first[h]!,
            world: P,
            run,
            hostFirstRanks: first,
            balance,
          }),
        ),
      ),
    );
    const times = pass.flatMap((r) => r.ranks);
    const slowest = (rs: { seconds: number }[]) => Math.max(...rs.map((r) => r.seconds));
    if (!replies || slowest(times) < slowest(replies)) replies = times;
  }
  let y: Float32Array | undefined;
  let x: Float32Array | undefined;
  if (o.collect) {
    y = new Float32Array(o.layers * o.m * o.n);
    x = new Float32Array(o.m * o.k);
    await rc.guard(rc.hosts[0]!.read(yOffset, new Uint8Array(y.buffer)));
    await rc.guard(rc.hosts[0]!.read(xOffset, new Uint8Array(x.buffer)));
  }
  return {
    hosts: H,
    runs,
    ...passFigures(o, rows, placed, replies!),
    placeSeconds,
    ...(balance && replies![0]?.rows ? { balancedRows: replies![0].rows.map(Number) } : {}),
    ...(y ? { y } : {}),
    ...(x ? { x } : {}),
  };
}

/** The figures of a layer run from every rank's timings (shared by one box and many hosts). */
export function passFigures(
  o: Pick<LayerRunOptions, 'layers' | 'n' | 'k' | 'iters' | 'dtype' | 'placement'>,
  rows: [number, number][],
  placed: { weightBytes: number; backing: string }[],
  replies: RankPassTimings[],
): Omit<LayerRunResult, 'hosts' | 'runs' | 'placeSeconds' | 'y' | 'x'> {
  const seconds = Math.max(...replies.map((r) => r.seconds));
  const slowest = replies.reduce((a, b) => (b.seconds > a.seconds ? b : a));
  const weightBytesPerPass = o.layers * o.n * rowBytes(o.dtype, o.k);
  const exchange = slowest.exchangeSeconds / o.iters;
  return {
    passes: o.iters,
    seconds,
    passesPerSecond: o.iters / seconds,
    weightBytesPerPass,
    effectiveGBps: (weightBytesPerPass * o.iters) / seconds / 1e9,
    computeSecondsPerPass: slowest.computeSeconds / o.iters,
    waitSecondsPerPass: slowest.waitSeconds / o.iters,
    exchangeSecondsPerPass: exchange,
    exchangeFraction: exchange / (seconds / o.iters),
    perRank: replies.map((r, rank) => ({
      rank,
      rows: rows[rank]!,
      placement: o.placement[rank]!,
      weightBytes: placed[rank]!.weightBytes,
      backing: placed[rank]!.backing,
      seconds: r.seconds,
      computeSeconds: r.computeSeconds,
      waitSeconds: r.waitSeconds,
      exchangeSeconds: r.exchangeSeconds,
      ...(r.link ? { link: r.link, linkBytesSent: Number(r.linkBytesSent ?? 0) } : {}),
    })),
  };
}
