// Bricks on the wire. The planner's Brick holds [lo, hi) tuples everywhere in TypeScript; the
// protos (executor.proto, hosts.proto) carry `Range {lo, hi}` messages. This is the one place
// that converts between the two.
import * as grpc from '@grpc/grpc-js';
import type { Brick, Range } from '../planner/types.js';
import { RpcError } from './grpc-data.js';

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

/**
 * A range as received from a caller not to be trusted: present, whole numbers, lo ≤ hi ≤ max;
 * else an error naming the field (INVALID_ARGUMENT).
 */
export function checkedRange(name: string, w: unknown, max = Number.MAX_SAFE_INTEGER): WireRange {
  const r = w as Partial<WireRange> | null | undefined;
  if (!r || typeof r !== 'object') throw new RpcError(grpc.status.INVALID_ARGUMENT, `${name} is missing`);
  const { lo, hi } = r;
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo! < 0 || lo! > hi! || hi! > max)
    throw new RpcError(
      grpc.status.INVALID_ARGUMENT,
      `${name} must be a range 0 ≤ lo ≤ hi ≤ ${max}, got [${String(lo)}, ${String(hi)})`,
    );
  return { lo: lo!, hi: hi! };
}

/** A brick from a caller not to be trusted (checkedRange for each of m, n, k). */
export function checkedBrick(name: string, w: unknown): Brick {
  const b = w as Partial<WireBrick> | null | undefined;
  if (!b || typeof b !== 'object') throw new RpcError(grpc.status.INVALID_ARGUMENT, `${name} is missing`);
  return {
    m: rangeFromWire(checkedRange(`${name}.m`, b.m)),
    n: rangeFromWire(checkedRange(`${name}.n`, b.n)),
    k: rangeFromWire(checkedRange(`${name}.k`, b.k)),
  };
}
