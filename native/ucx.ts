// The TypeScript face of bulk data over UCX (native/src/bindings/ucx_bindings.cc, over
// native/src/ucx/ucx_rma.h); transport/ucx-data.ts wraps it for the host role.
import { loadAddon } from './addon.js';

/** read, readAdd, write: (offset in the peer's area, buffer, offset in it, bytes[, reps]). */
type UcxMove = (
  offset: number,
  buffer: ArrayBuffer,
  at: number,
  bytes: number,
  reps?: number,
) => Promise<void | number>;

export interface NativeUcxRemote {
  read: UcxMove;
  readAdd: UcxMove;
  write: UcxMove;
  close(): void;
}

export interface NativeUcxData {
  /** This process's UCX worker address. */
  readonly address: Buffer | undefined;
  /** Registers `buffer` for peers (replacing the one before) and returns its descriptor. */
  expose(buffer: ArrayBuffer): Buffer;
  unexpose(): void;
  /** A peer's exposed area, from its descriptor; calls fail after `timeoutMs` without answer. */
  connect(descriptor: Buffer, timeoutMs: number): NativeUcxRemote;
  close(): void;
}

interface UcxAddon {
  UcxData: new () => NativeUcxData;
  ucxBytesMoved(): number;
}

/** A UCX worker of this process (loads redblue_ucx.so, with UCX's memory hooks off). */
export function ucxData(): NativeUcxData {
  return new (loadAddon<UcxAddon>().UcxData)();
}

/** Bytes this process has moved to or from peers' areas over UCX. */
export function ucxBytesMoved(): number {
  return loadAddon<UcxAddon>().ucxBytesMoved();
}
