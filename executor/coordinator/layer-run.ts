// `redblue run layer`: a weight-stationary stack of L matrices W (n×k) placed once per node
// (mirror: whole; shard: the node's rows), then passes of Y = X·Wᵀ with fresh X through the
// whole stack. Rows of every W are split over the executors (column-parallel, as tensor
// parallelism splits a linear layer) and the slices are all-gathered after each layer.
import type { LocalCluster } from '../host/local-cluster.js';
import type { RunLayersReply } from '../../transport/control.js';
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

export interface LayerRunResult {
  passes: number;
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
  perRank: {
    rank: number;
    rows: [number, number];
    placement: PlacementMode;
    weightBytes: number;
    backing: string;
    seconds: number;
    computeSeconds: number;
    waitSeconds: number;
    exchangeSeconds: number;
  }[];
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

export async function runLayers(cluster: LocalCluster, o: LayerRunOptions): Promise<LayerRunResult> {
  const P = cluster.size;
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
  const stagingBytes = o.weights ? wOffset + o.layers * layerBytes : o.collect ? wOffset : 64;
  const area = await cluster.stage('layer', stagingBytes);
  if (o.weights) new Float32Array(area.buffer, wOffset, o.weights.length).set(o.weights);

  // Place the weights a few layers per call, so progress can be shown.
  const placeStart = process.hrtime.bigint();
  const perCall = Math.max(1, Math.ceil(o.layers / 20));
  let made = 0;
  let placed: { weightBytes: number; backing: string }[] = [];
  while (made < o.layers) {
    const count = Math.min(perCall, o.layers - made);
    placed = await cluster.guard(
      Promise.all(
        cluster.clients.map((c, rank) =>
          c.placeLayers({
            dtype: o.dtype,
            n: o.n,
            k: o.k,
            layers: o.layers,
            seed: o.seed,
            placement: o.placement[rank]!,
            rows: { lo: rows[rank]![0], hi: rows[rank]![1] },
            count,
            rowsPerRank,
            fresh: made === 0,
            fromStaging: !!o.weights,
            sourceOffset: o.weights ? wOffset + made * layerBytes : 0,
          }),
        ),
      ),
    );
    made += count;
    o.onProgress?.(made, o.layers);
  }
  const placeSeconds = Number(process.hrtime.bigint() - placeStart) / 1e9;

  const balance = (o.balance ?? true) && P > 1 && o.placement.every((p) => p === 'mirror');
  let replies: RunLayersReply[] | undefined;
  for (let rep = 0; rep < Math.max(1, o.repeats ?? 1); rep++) {
    const run = await cluster.guard(
      Promise.all(
        cluster.clients.map((c, rank) =>
          c.runLayers({
            m: o.m,
            iters: o.iters,
            seed: o.seed + 1,
            yOffset,
            xOffset,
            collect: !!o.collect && rank === 0,
            balance,
          }),
        ),
      ),
    );
    const slowest = (rs: { seconds: number }[]) => Math.max(...rs.map((r) => r.seconds));
    if (!replies || slowest(run) < slowest(replies)) replies = run;
  }
  let y: Float32Array | undefined;
  let x: Float32Array | undefined;
  if (o.collect) {
    y = new Float32Array(o.layers * o.m * o.n);
    y.set(new Float32Array(area.buffer, yOffset, y.length));
    x = new Float32Array(o.m * o.k);
    x.set(new Float32Array(area.buffer, xOffset, x.length));
  }
  area.close();
  return {
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
  replies: { seconds: number; computeSeconds: number; waitSeconds: number; exchangeSeconds: number }[],
): Omit<LayerRunResult, 'placeSeconds' | 'y' | 'x'> {
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
    })),
  };
}
