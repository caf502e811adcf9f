// The native data path between hosts (native/src/hosts/data_service.h): the Data service of
// proto/hosts.proto served and called with gRPC's C++ core, off the event loop. Typed wrappers
// with the argument checks; the addon checks again.
import {
  dataAddon,
  type DataCredentials,
  type NativeDataClient,
  type NativeDataServer,
} from '../native/data.js';
import { joinHostPort } from '../common/address.js';

/** Only the fields the native side reads (an Auth may carry more). */
function credentials(c: DataCredentials): DataCredentials {
  return { ...(c.token !== undefined ? { token: c.token } : {}), ...(c.tls ? { tls: c.tls } : {}) };
}

/**
 * Serves Read, Write and Pipe of one staging area (replaceable) on `host:port` (0: any free
 * port), with the cluster's credentials: its token and/or TLS (the Host service's own).
 */
export class DataServer {
  private readonly s: NativeDataServer;
  constructor(host: string, creds: DataCredentials, port = 0) {
    this.s = new (dataAddon().DataServer)({ address: joinHostPort(host, port), ...credentials(creds) });
  }
  get port(): number {
    return this.s.port;
  }
  /**
   * The staging file (a SharedArea's name) that Read, Write and Pipe reach, its first `bytes` (the
   * area's size; the file may be longer, rounded to huge pages); the server maps it itself, so the
   * caller may close its own mapping at any time. undefined clears it.
   */
  setArea(name: string | undefined, bytes?: number): void {
    this.s.setArea(name ?? null, bytes);
  }
  // The mailbox (post, forgetOtherRuns, clearMailbox, and DataClient.fetch): the leaders' link
  // drives it natively (hosts/grpc_host_link.cc); from JS only its tests do.
  /**
   * This host's block of all-gather `tag` (copied), for `readers` peers to fetch over their data
   * path (a fetch that came first gets it now); dropped once they all have.
   */
  post(tag: string, block: Uint8Array, readers: number): void {
    this.s.post(tag, block.buffer as ArrayBuffer, block.byteOffset, block.byteLength, readers);
  }
  /** A new run (`run`, the tags' text before their last ':'): blocks and waits of others end. */
  forgetOtherRuns(run: string): void {
    this.s.forgetOtherRuns(run);
  }
  /** The session ended: fetches still waiting fail (UNAVAILABLE, with the reason). */
  clearMailbox(reason: string): void {
    this.s.clearMailbox(reason);
  }
  close(): void {
    this.s.close();
  }
}

export class DataClient {
  private readonly c: NativeDataClient;
  constructor(
    readonly address: string,
    creds: DataCredentials,
  ) {
    this.c = new (dataAddon().DataClient)({ address, ...credentials(creds) });
  }
  async read(offset: number, dst: Uint8Array, deadlineMs: number, chunkBytes = 0): Promise<void> {
    await this.move('read', offset, dst, deadlineMs, chunkBytes);
  }
  /** The peer's block of all-gather `tag`, waiting (up to the deadline) until it is posted. */
  async fetch(tag: string, fromHost: number, deadlineMs: number): Promise<Buffer> {
    return this.c.fetch(tag, fromHost, deadlineMs);
  }
  /** Opens the connection now; false if the peer was not reached within `deadlineMs`. */
  connect(deadlineMs: number): Promise<boolean> {
    return this.c.connect(deadlineMs);
  }
  /**
   * Adds the peer's f32 values at `offset` into `dst` as they arrive (a cross-host reduction's
   * exchange: no copy, no JS loop). dst must be 4-byte aligned, as any Float32Array is.
   */
  async readAdd(offset: number, dst: Float32Array, deadlineMs: number, chunkBytes = 0): Promise<void> {
    await this.move('readAdd', offset, dst, deadlineMs, chunkBytes);
  }
  /** readAdd into `bytes` of `area` at `at` (a staging area's buffer: the native side reaches all of it). */
  async readAddInto(
    offset: number,
    area: ArrayBuffer,
    at: number,
    bytes: number,
    deadlineMs: number,
  ): Promise<void> {
    await this.c.readAdd(offset, area, at, bytes, 0, deadlineMs);
  }
  async write(offset: number, src: Uint8Array, deadlineMs: number, chunkBytes = 0): Promise<void> {
    await this.move('write', offset, src, deadlineMs, chunkBytes);
  }
  /**
   * The same read or write `reps` times over, one after another in native code (no JS between
   * them): the seconds they took. What `bench transport` measures the path itself with.
   */
  async repeat(
    op: 'read' | 'write',
    offset: number,
    view: Uint8Array,
    deadlineMs: number,
    reps: number,
  ): Promise<number> {
    if (!Number.isInteger(reps) || reps < 1)
      throw new RangeError(`reps must be a positive integer, not ${reps}`);
    return (await this.move(op, offset, view, deadlineMs, 0, reps)) as number;
  }
  /** Async, so that a bad argument (thrown by the addon at once) is a rejection too. */
  private async move(
    op: 'read' | 'readAdd' | 'write',
    offset: number,
    view: ArrayBufferView,
    deadlineMs: number,
    chunkBytes: number,
    reps?: number,
  ): Promise<void | number> {
    const buffer = view.buffer as ArrayBuffer;
    return this.c[op](offset, buffer, view.byteOffset, view.byteLength, chunkBytes, deadlineMs, reps);
  }
  close(): void {
    this.c.close();
  }
}

/** The message and gRPC status code of a native data path failure ("… [grpc N]"). */
export function statusOf(e: unknown): { message: string; code?: number } {
  const text = e instanceof Error ? e.message : String(e);
  const m = /^(.*) \[grpc (\d+)\]$/s.exec(text);
  return m ? { message: m[1]!, code: Number(m[2]) } : { message: text };
}
