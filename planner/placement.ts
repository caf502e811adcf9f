// Where a stationary operand (weights kept across calls) lives on each node: a mirror (the whole
// matrix) when it fits beside the plan's working set, else a shard (exactly the block the node's
// bricks need, so it is never moved per call).
import { formatBytes } from '../common/format.js';
import type { RankFigures } from './evaluate.js';
import { footprint, rectArea } from './ownership.js';
import type { Brick, Placement, Plan, Problem, Rect } from './types.js';

function unionRect(bricks: Brick[], op: 'A' | 'B'): Rect | null {
  if (bricks.length === 0) return null;
  const fs = bricks.map((b) => footprint(op, b));
  return {
    rows: [Math.min(...fs.map((f) => f.rows[0])), Math.max(...fs.map((f) => f.rows[1]))],
    cols: [Math.min(...fs.map((f) => f.cols[0])), Math.max(...fs.map((f) => f.cols[1]))],
  };
}

export function shardBytes(bricks: Brick[], op: 'A' | 'B', bytesPerElement: number): number {
  return rectArea(unionRect(bricks, op)) * bytesPerElement;
}

export function placeStationary(
  problem: Problem,
  op: 'A' | 'B',
  bytesPerElement: number,
  limitBytes: number,
  ranks: { rank: number; host: number; node: number; figures: RankFigures }[],
): Placement[] {
  const whole: Rect =
    op === 'A'
      ? { rows: [0, problem.m], cols: [0, problem.k] }
      : { rows: [0, problem.k], cols: [0, problem.n] };
  const wholeBytes = rectArea(whole) * bytesPerElement;
  return ranks.map(({ rank, host, node, figures }) => {
    const shard = unionRect(figures.bricks, op);
    const shardBytes = rectArea(shard) * bytesPerElement;
    const others = figures.peakBytes - shardBytes;
    const base = { host, node, rank, operand: op };
    if (!shard) {
      return {
        ...base,
        mode: 'shard',
        block: null,
        bytes: 0,
        reason: 'idle rank: holds none of it',
      } satisfies Placement;
    }
    if (others + wholeBytes <= limitBytes) {
      return {
        ...base,
        mode: 'mirror',
        block: whole,
        bytes: wholeBytes,
        reason: `the whole ${op} (${wholeBytes} B) fits beside the working set (${others} B) within ${limitBytes} B, so any later plan can use it without moving it`,
      } satisfies Placement;
    }
    return {
      ...base,
      mode: 'shard',
      block: shard,
      bytes: shardBytes,
      reason:
        shardBytes === wholeBytes
          ? `its bricks need all of ${op}`
          : `a mirror of ${op} (${wholeBytes} B) plus the working set (${others} B) exceeds ${limitBytes} B; keeping the block its bricks need`,
    } satisfies Placement;
  });
}

/** What rank `p.rank` would hold of a stack: its working set beside the operand, and one layer's whole operand and shard. */
function stackFigures(plan: Plan, p: Placement): { others: number; whole: number; shard: number } {
  const bpe = plan.dtype.bytesPerElement;
  const r = plan.ranks[p.rank]!;
  return {
    others: r.peakMemoryBytes - p.bytes,
    whole: (p.operand === 'A' ? plan.problem.m * plan.problem.k : plan.problem.k * plan.problem.n) * bpe,
    shard: shardBytes(r.bricks, p.operand, bpe),
  };
}

/**
 * The placements of a stack of `layers` operands of the plan's shape, each placed as `plan` places
 * one: a node mirrors only when every layer's whole operand fits beside the working set, since
 * a node holds its part of every layer at once. The one rule for one host and for many.
 */
export function placeStack(plan: Plan, layers: number): Placement[] {
  const limit = plan.memory.limitBytes;
  return plan.placement.map((p) => {
    if (!p.block) return p; // idle: holds none of it
    const { others, whole: wholeBytes, shard } = stackFigures(plan, p);
    if (others + layers * wholeBytes <= limit)
      return {
        ...p,
        mode: 'mirror',
        block: {
          rows: [0, p.operand === 'A' ? plan.problem.m : plan.problem.k],
          cols: [0, p.operand === 'A' ? plan.problem.k : plan.problem.n],
        },
        bytes: layers * wholeBytes,
        reason: `${layers} whole ${p.operand} (${layers * wholeBytes} B) fit beside the working set (${others} B) within ${limit} B`,
      } satisfies Placement;
    return {
      ...p,
      mode: 'shard',
      block: unionRect(plan.ranks[p.rank]!.bricks, p.operand),
      bytes: layers * shard,
      reason:
        `${layers} mirrors of ${p.operand} (${layers * wholeBytes} B) plus the working set (${others} B) exceed ${limit} B` +
        (others + layers * shard > limit
          ? `; even the shards (${layers * shard} B) do not fit`
          : '; keeping the blocks its bricks need'),
    } satisfies Placement;
  });
}

/**
 * Why a stack of `layers` operands, held as `modes` says per rank, does not fit a rank's memory
 * limit (its operand beside its working set), naming the first that falls short and the fix;
 * undefined when every rank's does. A run that went ahead would fill the node until the kernel
 * killed an executor.
 */
export function stackShortfall(
  plan: Plan,
  layers: number,
  modes: readonly ('mirror' | 'shard')[],
): string | undefined {
  const limit = plan.memory.limitBytes;
  for (const p of plan.placement) {
    if (!p.block) continue;
    const { others, whole, shard } = stackFigures(plan, p);
    const mode = modes[p.rank] ?? 'shard';
    const held = layers * (mode === 'mirror' ? whole : shard);
    if (others + held <= limit) continue;
    const sharding = mode === 'mirror' && others + layers * shard <= limit ? ', --placement shard' : '';
    return `the stack does not fit: rank ${p.rank} would hold ${formatBytes(held)} of ${p.operand} (${layers} layers, ${mode === 'mirror' ? 'whole' : 'its shard'}) beside its working set of ${formatBytes(others)}, over its ${formatBytes(limit)}: ask for fewer --layers or a smaller --n or --k${sharding}, or run on more nodes or hosts`;
  }
  return undefined;
}
