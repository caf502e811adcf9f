// Bricks on the wire. The planner's Brick holds [lo, hi) tuples everywhere in TypeScript; the
// protos (executor.proto, hosts.proto) carry `Range {lo, hi}` messages. This is the one place
// that converts between the two.
import type { Brick, Range } from '../planner/types.js';

export interface WireRange {
  lo: number;
  hi: number;
}

export interface WireBrick {
  m: WireRange;
  n: WireRange;
  k: WireRange;
}

export function rangeToWire(r: Range): WireRange {
  return { lo: r[0], hi: r[1] };
}

export function rangeFromWire(w: WireRange): Range {
  return [w.lo, w.hi];
}

export function brickToWire(b: Brick): WireBrick {
  return { m: rangeToWire(b.m), n: rangeToWire(b.n), k: rangeToWire(b.k) };
}

/** A brick as received (check the ranges first where the sender is not trusted). */
export function brickFromWire(w: WireBrick): Brick {
  return { m: rangeFromWire(w.m), n: rangeFromWire(w.n), k: rangeFromWire(w.k) };
}
