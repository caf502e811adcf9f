// Checks of everything a supervisor receives from the network: whole numbers in range, known
// names, byte ranges inside the staging area. A failed check is an INVALID_ARGUMENT error that
// says what was wrong; nothing unchecked reaches the executors or native code.
import * as grpc from '@grpc/grpc-js';
import { RpcError } from '../../transport/grpc-data.js';
import type { WireRange } from '../../transport/bricks.js';

/** Largest dimension accepted (elements along m, n or k). */
export const MAX_DIM = 1 << 24;

export function invalid(message: string): RpcError {
  return new RpcError(grpc.status.INVALID_ARGUMENT, message);
}

export function int(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi) {
    throw invalid(`${name} must be a whole number in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  }
  return v;
}

export function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalid(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

export function list<T>(name: string, v: unknown, maxLength: number): T[] {
  if (!Array.isArray(v) || v.length > maxLength)
    throw invalid(`${name} must be a list of at most ${maxLength} entries`);
  return v as T[];
}

/** A byte range [offset, offset + bytes) that must lie inside an area of `total` bytes. */
export function byteRange(name: string, offset: unknown, bytes: unknown, total: number, align = 1): void {
  const o = int(`${name} offset`, offset, 0, Number.MAX_SAFE_INTEGER);
  const b = int(`${name} bytes`, bytes, 0, Number.MAX_SAFE_INTEGER);
  if (o % align !== 0 || b % align !== 0)
    throw invalid(`${name}: offset and size must be multiples of ${align}`);
  if (o + b > total) {
    throw invalid(`${name}: bytes [${o}, ${o + b}) lie outside the ${total}-byte staging area`);
  }
}

export function range(name: string, r: unknown, max: number): WireRange {
  const x = r as Partial<WireRange> | null;
  if (!x || typeof x !== 'object') throw invalid(`${name} is missing`);
  const lo = int(`${name}.lo`, x.lo, 0, max);
  const hi = int(`${name}.hi`, x.hi, 0, max);
  if (lo >= hi) throw invalid(`${name} [${lo}, ${hi}) is empty`);
  return { lo, hi };
}

/** Tags name the exchanges of a run: letters, digits and a few separators. */
export function tag(v: unknown): string {
  if (typeof v !== 'string' || !/^[\w.:-]{1,128}$/.test(v))
    throw invalid(`tag must be 1-128 of [A-Za-z0-9_.:-]`);
  return v;
}
