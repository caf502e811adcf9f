// planModelSplit(model, ranks): the tensor-parallel split of a transformer across ranks (Megatron,
// as the brief agrees): each rank computes whole KV-head groups (Q/K/V rows, attn_output columns,
// its own KV cache), one slice of n_ff (ffn_gate/ffn_up rows, ffn_down columns) and rows of the
// vocabulary (output rows, then gathered); the hidden state, the norms and token_embd are
// mirrored (every rank looks rows up). Shares follow the ranks' rates; cuts inside a row (attn_output
// and ffn_down columns) fall on block boundaries of the tensors' ggml types. Pure and deterministic.
import type { ModelInfo } from '../model/arch.js';
import { ggmlType, rowBytes, type GgmlTypeName } from '../model/gguf/types.js';
import { PlanInputError } from './errors.js';
import { formatBytes } from '../common/format.js';
import { len, splitRange } from './split.js';
import type { Range } from './types.js';

/** The part of a model's description the split needs (a ModelInfo gives it through modelShape). */
export interface ModelShape {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  nVocab: number;
  tiedEmbeddings: boolean;
  qkvBias: boolean;
  qkNorm: boolean;
  tokenEmbd: GgmlTypeName;
  output: GgmlTypeName;
  /** Per layer: types differ between layers in llama.cpp's mixes (Q4_K_M's ffn_down, attn_v). */
  layers: {
    attnQ: GgmlTypeName;
    attnK: GgmlTypeName;
    attnV: GgmlTypeName;
    attnOutput: GgmlTypeName;
    ffnGate: GgmlTypeName;
    ffnUp: GgmlTypeName;
    ffnDown: GgmlTypeName;
  }[];
}

export function modelShape(m: ModelInfo): ModelShape {
  return {
    nLayer: m.nLayer,
    nEmbd: m.nEmbd,
    nHead: m.nHead,
    nHeadKv: m.nHeadKv,
    headDim: m.headDim,
    nFf: m.nFf,
    nVocab: m.nVocab,
    tiedEmbeddings: m.tiedEmbeddings,
    qkvBias: m.qkvBias,
    qkNorm: m.qkNorm,
    tokenEmbd: m.tokenEmbd.typeName,
    output: m.output.typeName,
    layers: m.layers.map((l) => ({
      attnQ: l.attnQ.typeName,
      attnK: l.attnK.typeName,
      attnV: l.attnV.typeName,
      attnOutput: l.attnOutput.typeName,
      ffnGate: l.ffnGate.typeName,
      ffnUp: l.ffnUp.typeName,
      ffnDown: l.ffnDown.typeName,
    })),
  };
}

export interface ModelRankSplit {
  rank: number;
  rate: number;
  /** The read bandwidth (GB/s) the rate was made from, where it was measured. */
  speed?: number;
  /** KV heads [lo, hi); the rank's query heads are these times the group size. */
  kvHeads: Range;
  qHeads: Range;
  /** Slice of n_ff [lo, hi). */
  ff: Range;
  /** Rows of the output projection [lo, hi). */
  vocab: Range;
  /** Weights the rank copies into its node's memory (its slices and the mirrored norms). */
  weightBytes: number;
  /** K and V in f16 for its KV heads, every layer, `context` positions. */
  kvCacheBytes: number;
}

export interface ModelSplit {
  ranks: ModelRankSplit[];
  context: number;
  /** Query heads per KV head. */
  groupSize: number;
  /** KV heads per indivisible unit (more than 1 when one head's attn_output columns are not whole blocks). */
  kvUnit: number;
  /** n_ff cut granularity: the largest block of ffn_gate/ffn_up/ffn_down's types. */
  ffBlock: number;
  /**
   * token_embd: `shared`, one copy per host in the model file's pages that every rank maps (a
   * step looks up one `rowBytes` row per token), or `mirrored`, a copy in each rank's node memory
   * (`bytes` more per rank), chosen when the ranks sit on more than one memory node (the file's
   * pages live on one of them, so the others would look rows up across the link) and every rank
   * has room for the copy. `reason` says which held.
   */
  tokenEmbd: { placement: EmbeddingPlacement; bytes: number; rowBytes: number; reason: string };
  /**
   * The output projection: `sharded` by vocabulary rows (each rank reads its rows for every
   * token, then the logits are gathered: `gatherBytes` per token) or `single` (the fastest rank
   * reads every row, nothing is gathered), whichever the cost model (`seconds` per token: the
   * slowest rank's read, plus the gather over the slowest link) says is faster. Tied: the rows
   * are token_embd's, copied per rank like any slice.
   */
  output: {
    placement: OutputPlacement;
    tied: boolean;
    bytes: number;
    largestShareBytes: number;
    gatherBytes: number;
    seconds: Record<OutputPlacement, number>;
    reason: string;
  };
  /** Why a rank has no heads, why cuts are coarse, ... */
  notes: string[];
}

export type EmbeddingPlacement = 'shared' | 'mirrored';
export type OutputPlacement = 'sharded' | 'single';

export interface ModelSplitOptions {
  /** Positions of KV cache to count; default 4096. */
  context?: number;
  /** Where each rank runs: its memory node (ranks of one host with different nodes can mirror token_embd) and the bytes it may hold. Absent: unknown, token_embd stays shared. */
  places?: readonly { host: number; memoryNode: number; memoryBytes?: number }[];
  /** The slowest link the logits cross when gathered, GB/s; default: within one host, the ranks' own read bandwidth; across hosts, 1.25 (10 Gb Ethernet). */
  gatherGBps?: number;
  /** Overrides the decisions (`auto` or absent: the cost model decides). */
  embeddings?: EmbeddingPlacement | 'auto';
  output?: OutputPlacement | 'auto';
}

/** Read bandwidth assumed for a rank whose speed was not measured, GB/s (only ratios matter). */
const ASSUMED_RANK_GBPS = 10;
/** The link assumed between hosts when none was measured, GB/s (10 Gb Ethernet). */
const ASSUMED_HOST_LINK_GBPS = 1.25;

/** Where a rank reads its weights from: its host, its memory node there (-1: not known), its cpus. */
export interface SpeedPlace {
  host: number;
  memoryNode: number;
  cpus?: number;
}

/**
 * Rates from measured speeds (GB/s of read bandwidth, what decoding runs at): each rank's speed in
 * halves of the fastest, at least a quarter. Equal nodes measured up to 25% apart (two cores of
 * a shared VM, measured at once, have differed by 20%) get equal rates, so the split, and with
 * it the order of every sum, is the same run after run; a node with at most three quarters of
 * the fastest one's bandwidth gets half the work. No speeds: all equal.
 *
 * Ranks that read one memory node of one host (`places`: virtual nodes, cores of one socket)
 * share its bandwidth: when they decode, all of them read at once. Measured one by one, or
 * partly overlapping as executors start, they differ by chance (two 1-core ranks of one node:
 * 15.5 and 21.0 GB/s, which gave one of them twice the other's work and cost about a quarter
 * of the tokens/s). Such a group's ranks take the group's best speed per cpu times their cpus.
 */
export function ratesFromSpeeds(
  speeds: readonly number[],
  places?: readonly SpeedPlace[] | undefined,
): number[] {
  const shared = sharedNodeSpeeds(speeds, places);
  const fastest = Math.max(0, ...shared.filter((v) => Number.isFinite(v)));
  if (!(fastest > 0)) return shared.map(() => 1);
  return shared.map((v) =>
    Number.isFinite(v) && v > 0 ? Math.max(0.25, Math.round((2 * v) / fastest) / 2) : 1,
  );
}

/** Notes for `--dry-run`: which ranks share a memory node, so their rates ignore their own measurements. */
export function sharedNodeNotes(places: readonly SpeedPlace[] | undefined): string[] {
  return [...memoryNodeGroups(places ?? [])]
    .filter(([, ranks]) => ranks.length > 1)
    .map(
      ([where, ranks]) =>
        `ranks ${ranks.join(', ')} read one memory node (${where}) and share its bandwidth: their rates follow their cpus, not their separate measurements`,
    );
}

/** Ranks by the memory node they read ("host H, memory node N"); ranks of unknown nodes in none. */
function memoryNodeGroups(places: readonly SpeedPlace[]): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  places.forEach((p, rank) => {
    if (p.memoryNode < 0) return;
    const k = `host ${p.host}, memory node ${p.memoryNode}`;
    groups.set(k, [...(groups.get(k) ?? []), rank]);
  });
  return groups;
}

function sharedNodeSpeeds(speeds: readonly number[], places?: readonly SpeedPlace[]): number[] {
  const out = [...speeds];
  if (!places || places.length !== speeds.length) return out;
  const measured = (i: number) => Number.isFinite(speeds[i]) && speeds[i]! > 0;
  const cpus = (i: number) => Math.max(1, places[i]!.cpus ?? 1);
  for (const ranks of memoryNodeGroups(places).values()) {
    const perCpu = Math.max(0, ...ranks.filter(measured).map((i) => speeds[i]! / cpus(i)));
    for (const i of ranks) if (measured(i)) out[i] = perCpu * cpus(i);
  }
  return out;
}

function lcm(a: number, b: number): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return (a / gcd(a, b)) * b;
}

/**
 * splitRange's cumulative rounding (every part within one unit of its share), then, when there
 * are at least as many units as parts, no part left empty: a unit moves to it from the part
 * furthest above its share.
 */
function splitNonEmpty(total: number, weights: number[], unit: number): Range[] {
  const parts = splitRange([0, total], weights, unit);
  const units = Math.ceil(total / unit);
  if (units < weights.length) return parts;
  const counts = parts.map((r) => Math.ceil(len(r) / unit));
  const sum = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] !== 0) continue;
    let best = -1;
    for (let j = 0; j < counts.length; j++) {
      if (counts[j]! < 2) continue;
      const surplus = counts[j]! - (units * weights[j]!) / sum;
      if (best < 0 || surplus > counts[best]! - (units * weights[best]!) / sum) best = j;
    }
    counts[best]!--;
    counts[i] = 1;
  }
  const out: Range[] = [];
  let at = 0;
  for (const c of counts) {
    const hi = Math.min(total, at + c * unit);
    out.push([at, hi]);
    at = hi;
  }
  return out;
}

export function planModelSplit(
  model: ModelInfo | ModelShape,
  ranks: readonly { rate: number; speed?: number }[],
  options: ModelSplitOptions = {},
): ModelSplit {
  const m: ModelShape = 'path' in model ? modelShape(model) : model;
  const context = options.context ?? 4096;
  if (ranks.length < 1) throw new PlanInputError('a model split needs at least one rank');
  for (const [i, r] of ranks.entries()) {
    if (!(r.rate > 0) || !Number.isFinite(r.rate)) {
      throw new PlanInputError(`rank ${i} has rate ${r.rate}; rates must be positive numbers`);
    }
  }
  if (!Number.isSafeInteger(context) || context < 1) {
    throw new PlanInputError(`context ${context} must be a positive integer`);
  }
  if (m.nHead % m.nHeadKv !== 0) {
    throw new PlanInputError(`head_count ${m.nHead} is not a multiple of head_count_kv ${m.nHeadKv}`);
  }
  const rates = ranks.map((r) => r.rate);
  const notes: string[] = [];
  const groupSize = m.nHead / m.nHeadKv;
  const maxBlock = (pick: (l: ModelShape['layers'][number]) => GgmlTypeName[]): number =>
    m.layers.reduce((b, l) => Math.max(b, ...pick(l).map((t) => ggmlType(t).blockElements)), 1);

  // attn_output is cut by columns: a rank's columns are whole heads and must be whole blocks.
  const groupCols = groupSize * m.headDim;
  const outBlock = maxBlock((l) => [l.attnOutput]);
  const kvUnit = lcm(groupCols, outBlock) / groupCols;
  if (kvUnit > 1) {
    notes.push(
      `attn_output's ${outBlock}-element blocks span ${kvUnit} KV-head groups of ${groupCols} columns: heads are assigned ${kvUnit} KV heads at a time`,
    );
  }
  const kvParts = splitNonEmpty(m.nHeadKv, rates, kvUnit);
  const kvUnits = Math.ceil(m.nHeadKv / kvUnit);
  if (kvUnits < ranks.length) {
    const idle = kvParts.filter((r) => len(r) === 0).length;
    notes.push(
      `${ranks.length} ranks for ${kvUnits} KV-head unit${kvUnits === 1 ? '' : 's'}: ${idle} rank${idle === 1 ? ' has' : 's have'} no attention heads (they still compute their FFN and vocabulary slices)`,
    );
  }

  const ffBlock = maxBlock((l) => [l.ffnGate, l.ffnUp, l.ffnDown]);
  const ffParts = splitRange([0, m.nFf], rates, ffBlock);
  const idleFf = ffParts.filter((r) => len(r) === 0).length;
  if (idleFf > 0) {
    notes.push(
      `n_ff ${m.nFf} has ${Math.ceil(m.nFf / ffBlock)} blocks of ${ffBlock}: ${idleFf} rank(s) get no FFN slice`,
    );
  }
  const outputType = m.tiedEmbeddings ? m.tokenEmbd : m.output;
  const outputRow = rowBytes(outputType, m.nEmbd);
  const f32 = 4;
  const output = chooseOutput(m.nVocab, outputRow, ranks, rates, options);
  const vocabParts: Range[] =
    output.placement === 'sharded'
      ? splitRange([0, m.nVocab], rates, 1)
      : ranks.map((_, i): Range =>
          i < output.rank ? [0, 0] : i === output.rank ? [0, m.nVocab] : [m.nVocab, m.nVocab],
        );

  // Mirrored on every rank: the norms and q/k norms (token_embd: see tokenEmbd).
  const mirrored = (m.nLayer * 2 + 1) * m.nEmbd * f32 + (m.qkNorm ? m.nLayer * 2 * m.headDim * f32 : 0);

  const out: ModelRankSplit[] = ranks.map((r, i) => {
    const kvHeads = kvParts[i]!;
    const qHeads: Range = [kvHeads[0] * groupSize, kvHeads[1] * groupSize];
    const ff = ffParts[i]!;
    const vocab = vocabParts[i]!;
    const qRows = len(qHeads) * m.headDim;
    const kvRows = len(kvHeads) * m.headDim;
    let bytes = mirrored;
    for (const l of m.layers) {
      bytes += qRows * rowBytes(l.attnQ, m.nEmbd);
      bytes += kvRows * (rowBytes(l.attnK, m.nEmbd) + rowBytes(l.attnV, m.nEmbd));
      if (qRows > 0) bytes += m.nEmbd * rowBytes(l.attnOutput, qRows);
      if (m.qkvBias) bytes += (qRows + 2 * kvRows) * f32;
      bytes += len(ff) * (rowBytes(l.ffnGate, m.nEmbd) + rowBytes(l.ffnUp, m.nEmbd));
      if (len(ff) > 0) bytes += m.nEmbd * rowBytes(l.ffnDown, len(ff));
    }
    bytes += len(vocab) * outputRow;
    return {
      rank: i,
      rate: r.rate,
      ...(r.speed !== undefined ? { speed: r.speed } : {}),
      kvHeads,
      qHeads,
      ff,
      vocab,
      weightBytes: bytes,
      kvCacheBytes: 2 * 2 * context * m.nLayer * kvRows,
    };
  });
  const embdRow = rowBytes(m.tokenEmbd, m.nEmbd);
  const tokenEmbd = chooseEmbeddings(embdRow * m.nVocab, out, options);
  if (tokenEmbd.placement === 'mirrored') for (const r of out) r.weightBytes += embdRow * m.nVocab;
  return {
    ranks: out,
    context,
    groupSize,
    kvUnit,
    ffBlock,
    tokenEmbd: { ...tokenEmbd, bytes: embdRow * m.nVocab, rowBytes: embdRow },
    output: {
      placement: output.placement,
      tied: m.tiedEmbeddings,
      bytes: outputRow * m.nVocab,
      largestShareBytes: Math.max(...vocabParts.map((r) => len(r) * outputRow)),
      gatherBytes: m.nVocab * f32,
      seconds: output.seconds,
      reason: output.reason,
    },
    notes,
  };
}

/**
 * Sharded against single for the output projection, per token: the slowest rank's read of its
 * rows, plus (sharded) the logits gathered over the slowest link. The fastest rank takes the
 * whole projection when that is cheaper (a slow link between hosts and a small projection).
 */
function chooseOutput(
  nVocab: number,
  rowBytesOut: number,
  ranks: readonly { rate: number; speed?: number }[],
  rates: number[],
  o: ModelSplitOptions,
): { placement: OutputPlacement; rank: number; seconds: Record<OutputPlacement, number>; reason: string } {
  // Ranks that read one memory node read at its speed, whatever each measured alone (as the
  // rates take it): a rank measured slow by chance would otherwise make one rank read every row.
  const speeds = sharedNodeSpeeds(
    ranks.map((r) => r.speed ?? Number.NaN),
    o.places,
  ).map((v) => (v > 0 ? v : ASSUMED_RANK_GBPS));
  const hosts = new Set((o.places ?? []).map((p) => p.host));
  const crossHost = hosts.size > 1;
  const link = o.gatherGBps ?? (crossHost ? ASSUMED_HOST_LINK_GBPS : Math.min(...speeds));
  const shares = splitRange([0, nVocab], rates, 1);
  const sharded =
    Math.max(...shares.map((r, i) => (len(r) * rowBytesOut) / (speeds[i]! * 1e9))) +
    (ranks.length > 1 ? (nVocab * 4) / (link * 1e9) : 0);
  let best = 0;
  // The fastest by rate (rates are rounded so that the choice holds run after run); ties: the
  // lowest rank, rank 0 where it can be (the logits are read there).
  for (let i = 1; i < rates.length; i++) if (rates[i]! > rates[best]!) best = i;
  const single = (nVocab * rowBytesOut) / (speeds[best]! * 1e9);
  const seconds = { sharded, single };
  const ms = (v: number) => `${(v * 1e3).toFixed(3)} ms`;
  const linkWords = `the logits gathered over ${o.gatherGBps !== undefined ? 'a' : crossHost ? 'an assumed' : 'shared memory, a'} ${link.toFixed(2)} GB/s link`;
  if (o.output === 'sharded' || o.output === 'single')
    return {
      placement: o.output,
      rank: best,
      seconds,
      reason: `asked for (sharded ${ms(sharded)}, single ${ms(single)} a token)`,
    };
  if (ranks.length === 1)
    return { placement: 'sharded', rank: 0, seconds, reason: 'one rank: it reads every row' };
  return single < sharded
    ? {
        placement: 'single',
        rank: best,
        seconds,
        reason: `rank ${best} reading every row (${ms(single)} a token) beats sharding with ${linkWords} (${ms(sharded)})`,
      }
    : {
        placement: 'sharded',
        rank: best,
        seconds,
        reason: `sharding with ${linkWords} (${ms(sharded)} a token) beats one rank reading every row (${ms(single)})`,
      };
}

/** Shared against mirrored for token_embd (see ModelSplit.tokenEmbd). */
function chooseEmbeddings(
  bytes: number,
  ranks: readonly ModelRankSplit[],
  o: ModelSplitOptions,
): { placement: EmbeddingPlacement; reason: string } {
  if (o.embeddings === 'shared' || o.embeddings === 'mirrored')
    return { placement: o.embeddings, reason: 'asked for' };
  const places = o.places;
  if (!places || places.length !== ranks.length)
    return { placement: 'shared', reason: "the ranks' memory nodes are not known" };
  const perHost = new Map<number, Set<number>>();
  for (const p of places) perHost.set(p.host, (perHost.get(p.host) ?? new Set()).add(p.memoryNode));
  if (![...perHost.values()].some((nodes) => nodes.size > 1))
    return {
      placement: 'shared',
      reason: "each host's ranks share one memory node, where the file's pages are too",
    };
  const short = ranks.find((r, i) => {
    const have = places[i]!.memoryBytes;
    return have !== undefined && r.weightBytes + r.kvCacheBytes + bytes > have;
  });
  if (short)
    return {
      placement: 'shared',
      reason: `rank ${short.rank}'s node has no room for a copy beside its weights and KV cache`,
    };
  return {
    placement: 'mirrored',
    reason: 'the ranks sit on different memory nodes: a copy on each keeps every lookup in node-local memory',
  };
}

/** Where token_embd and the output projection live, and why, in words (text and HTML). */
export function embeddingLines(s: ModelSplit): string[] {
  const e = s.tokenEmbd;
  const o = s.output;
  return [
    e.placement === 'shared'
      ? `token_embd: shared, one copy per host (${formatBytes(e.bytes)}, the file's pages every rank maps; one ${formatBytes(e.rowBytes)} row looked up per token): ${e.reason}`
      : `token_embd: mirrored, a ${formatBytes(e.bytes)} copy in each rank's node memory: ${e.reason}`,
    o.placement === 'sharded'
      ? `output${o.tied ? ' (tied: token_embd)' : ''}: sharded by vocabulary rows, the largest share reading ${formatBytes(o.largestShareBytes)} per token of ${formatBytes(o.bytes)}, the logits gathered (${formatBytes(o.gatherBytes)} per token): ${o.reason}`
      : `output${o.tied ? ' (tied: token_embd)' : ''}: single, one rank reading all ${formatBytes(o.bytes)} per token, nothing gathered: ${o.reason}`,
  ];
}

/** The plan as `--dry-run` prints it. */
export function renderModelSplit(s: ModelSplit): string {
  const range = (r: Range): string => `[${r[0]}, ${r[1]})`;
  const speeds = s.ranks.some((r) => r.speed !== undefined);
  const rows = s.ranks.map((r) => [
    String(r.rank),
    String(r.rate) + (speeds ? ` (${r.speed !== undefined ? r.speed.toFixed(1) : '?'} GB/s)` : ''),
    range(r.kvHeads),
    range(r.qHeads),
    range(r.ff),
    range(r.vocab),
    formatBytes(r.weightBytes),
    formatBytes(r.kvCacheBytes),
  ]);
  const head = [
    'rank',
    speeds ? 'rate (read bandwidth)' : 'rate',
    'kv heads',
    'q heads',
    'n_ff',
    'vocab rows',
    'weights',
    `kv cache @${s.context}`,
  ];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((x, c) => x.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  return [
    line(head),
    ...rows.map(line),
    ...embeddingLines(s),
    `${s.groupSize} query heads per KV head; n_ff cut in blocks of ${s.ffBlock}`,
    ...(speeds
      ? ["shares follow each rank's rate: its measured read bandwidth in halves of the fastest rank's"]
      : []),
    ...s.notes.map((n) => `note: ${n}`),
  ].join('\n');
}
