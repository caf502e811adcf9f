// The TypeScript face of the native data path (native/src/bindings/data_bindings.cc);
// transport/native-data.ts wraps it with argument checks.
import { loadAddon } from './addon.js';

export interface NativeDataServer {
  readonly port: number;
  setArea(name: string | null, bytes?: number): void;
  post(tag: string, buffer: ArrayBuffer, offset: number, bytes: number, readers: number): void;
  forgetOtherRuns(run: string): void;
  clearMailbox(reason: string): void;
  close(): void;
}
/** read, readAdd, write: (area offset, buffer, offset in it, bytes, chunk, deadline[, reps]). */
type NativeMove = (
  offset: number,
  buffer: ArrayBuffer,
  at: number,
  bytes: number,
  chunk: number,
  deadlineMs: number,
  reps?: number,
) => Promise<void | number>;
export interface NativeDataClient {
  read: NativeMove;
  readAdd: NativeMove;
  write: NativeMove;
  connect(deadlineMs: number): Promise<boolean>;
  fetch(tag: string, fromHost: number, deadlineMs: number): Promise<Buffer>;
  close(): void;
}
/**
 * Who may use a data path: the shared token sent with every call, and/or TLS with the cluster
 * certificate (PEM; servers require client certificates from the same CA).
 */
export interface DataCredentials {
  token?: string;
  tls?: { cert: Buffer | string; key: Buffer | string; ca: Buffer | string };
}
export interface DataAddon {
  DataServer: new (o: { address: string } & DataCredentials) => NativeDataServer;
  DataClient: new (o: { address: string } & DataCredentials) => NativeDataClient;
}

export const dataAddon = (): DataAddon => loadAddon<DataAddon>();
