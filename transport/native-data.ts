// The native data path between hosts (native/src/hosts/data_service.h): the Data service of
// proto/hosts.proto served and called with gRPC's C++ core, off the event loop. Typed wrappers
// with the argument checks; the addon checks again.
import { loadAddon } from '../native/addon.js';

interface NativeDataServer {
  readonly port: number;
  setArea(buffer: ArrayBuffer | null): void;
  close(): void;
}
interface NativeDataClient {
  read(
    offset: number,
    dst: ArrayBuffer,
    at: number,
    bytes: number,
    chunk: number,
    deadlineMs: number,
  ): Promise<void>;
  write(
    offset: number,
    src: ArrayBuffer,
    at: number,
    bytes: number,
    chunk: number,
    deadlineMs: number,
  ): Promise<void>;
  close(): void;
}
interface DataAddon {
  DataServer: new (o: { address: string; token?: string }) => NativeDataServer;
  DataClient: new (o: { address: string; token?: string }) => NativeDataClient;
}

/** Serves Read and Write of one staging area (replaceable) on `host:0` (a port of its own). */
export class DataServer {
  private readonly s: NativeDataServer;
  constructor(host: string, token: string | undefined) {
    this.s = new (loadAddon<DataAddon>().DataServer)({
      address: `${host}:0`,
      ...(token !== undefined ? { token } : {}),
    });
  }
  get port(): number {
    return this.s.port;
  }
  /** What Read and Write reach; undefined clears it (waits for copies in flight). */
  setArea(buffer: ArrayBuffer | undefined): void {
    this.s.setArea(buffer ?? null);
  }
  close(): void {
    this.s.close();
  }
}

export class DataClient {
  private readonly c: NativeDataClient;
  constructor(
    readonly address: string,
    token: string | undefined,
  ) {
    this.c = new (loadAddon<DataAddon>().DataClient)({ address, ...(token !== undefined ? { token } : {}) });
  }
  read(offset: number, dst: Uint8Array, deadlineMs: number, chunkBytes = 0): Promise<void> {
    return this.move('read', offset, dst, deadlineMs, chunkBytes);
  }
  write(offset: number, src: Uint8Array, deadlineMs: number, chunkBytes = 0): Promise<void> {
    return this.move('write', offset, src, deadlineMs, chunkBytes);
  }
  /** Async, so that a bad argument (thrown by the addon at once) is a rejection too. */
  private async move(
    op: 'read' | 'write',
    offset: number,
    view: Uint8Array,
    deadlineMs: number,
    chunkBytes: number,
  ): Promise<void> {
    const buffer = view.buffer as ArrayBuffer;
    return this.c[op](offset, buffer, view.byteOffset, view.byteLength, chunkBytes, deadlineMs);
  }
  close(): void {
    this.c.close();
  }
}

/** `host` of a `host:port` address (IPv6 in brackets stays bracketed). */
export function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  return i < 0 ? address : address.slice(0, i);
}

/** The message and gRPC status code of a native data path failure ("… [grpc N]"). */
export function statusOf(e: unknown): { message: string; code?: number } {
  const text = e instanceof Error ? e.message : String(e);
  const m = /^(.*) \[grpc (\d+)\]$/s.exec(text);
  return m ? { message: m[1]!, code: Number(m[2]) } : { message: text };
}

interface RawTcpAddon {
  rawTcpServe(host: string, port: number): number;
  rawTcpFetch(host: string, port: number, bytes: number, reps: number): Promise<number>;
}

/**
 * A plain TCP server in native code (the reference of `bench transport`): answers "send me N
 * bytes" with N bytes until the process ends. Returns its port.
 */
export function rawTcpServe(host: string, port: number): number {
  return loadAddon<RawTcpAddon>().rawTcpServe(host, port);
}

/** Seconds that `reps` requests of `bytes` took from a native raw TCP client (after a warm-up). */
export function rawTcpFetch(host: string, port: number, bytes: number, reps: number): Promise<number> {
  return loadAddon<RawTcpAddon>().rawTcpFetch(host, port, bytes, reps);
}
