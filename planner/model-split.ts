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
   * token_embd stays one copy per host, in the model file's pages that every rank maps: a step
   * looks up one row per token (`rowBytes`), so a node-local copy per rank would cost `bytes`
   * each and save next to nothing.
   */
  tokenEmbd: { placement: 'shared'; bytes: number; rowBytes: number };
  /**
   * The output projection is cut by vocabulary rows (each rank reads its rows for every token)
   * and the logits are gathered (`gatherBytes` per token): one rank reading every row would read
   * `bytes` per token where the largest share reads `largestShareBytes`. Tied: the rows are
   * token_embd's, copied per rank like any slice.
   */
  output: {
    placement: 'sharded';
    tied: boolean;
    bytes: number;
    largestShareBytes: number;
    gatherBytes: number;
  };
  /** Why a rank has no heads, why cuts are coarse, ... */
  notes: string[];
}

export interface ModelSplitOptions {
  /** Positions of KV cache to count; default 4096. */
  context?: number;
}

/**
 * Rates from measured speeds (GB/s of read bandwidth, what decoding runs at): each rank's speed in
 * halves of the fastest, at least a quarter. Equal nodes measured up to 25% apart (two cores of
 * a shared VM, measured at once, have differed by 20%) get equal rates, so the split, and with
 * it the order of every sum, is the same run after run; a node with at most three quarters of
 * the fastest one's bandwidth gets half the work. No speeds: all equal.
 */
export function ratesFromSpeeds(speeds: readonly number[]): number[] {
  const fastest = Math.max(0, ...speeds.filter((v) => Number.isFinite(v)));
  if (!(fastest > 0)) return speeds.map(() => 1);
  return speeds.map((v) =>
    Number.isFinite(v) && v > 0 ? Math.max(0.25, Math.round((2 * v) / fastest) / 2) : 1,
  );
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
  const vocabParts = splitRange([0, m.nVocab], rates, 1);

  const f32 = 4;
  // Mirrored on every rank: the norms and q/k norms (token_embd is shared: see tokenEmbd).
  const mirrored = (m.nLayer * 2 + 1) * m.nEmbd * f32 + (m.qkNorm ? m.nLayer * 2 * m.headDim * f32 : 0);
  const outputType = m.tiedEmbeddings ? m.tokenEmbd : m.output;
  const outputRow = rowBytes(outputType, m.nEmbd);

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
  return {
    ranks: out,
    context,
    groupSize,
    kvUnit,
    ffBlock,
    tokenEmbd: { placement: 'shared', bytes: embdRow * m.nVocab, rowBytes: embdRow },
    output: {
      placement: 'sharded',
      tied: m.tiedEmbeddings,
      bytes: outputRow * m.nVocab,
      largestShareBytes: Math.max(...vocabParts.map((r) => len(r) * outputRow)),
      gatherBytes: m.nVocab * f32,
    },
    notes,
  };
}

/** Where token_embd and the output projection live, and why, in words (text and HTML). */
export function embeddingLines(s: ModelSplit): string[] {
  const e = s.tokenEmbd;
  const o = s.output;
  return [
    `token_embd: one shared copy per host (${formatBytes(e.bytes)}, the file's pages every rank maps); a step looks up one ${formatBytes(e.rowBytes)} row per token, so a copy per rank would cost ${formatBytes(e.bytes)} each for nothing`,
    `output${o.tied ? ' (tied: token_embd)' : ''}: sharded by vocabulary rows, the largest share reading ${formatBytes(o.largestShareBytes)} per token of ${formatBytes(o.bytes)}; the logits are gathered (${formatBytes(o.gatherBytes)} per token)`,
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
