// The raw TCP reference of `bench transport` (native/src/hosts/raw_tcp.cc): what plain sockets
// move between the same hosts, beside the data path. Benchmarks and tests only; no product code
// path uses it.
import { loadAddon } from './addon.js';

interface RawTcpAddon {
  rawTcpServe(host: string, port: number): number;
  rawTcpFetch(host: string, port: number, bytes: number, reps: number): Promise<number>;
  rawTcpPush(host: string, port: number, bytes: number, reps: number): Promise<number>;
}

/**
 * A plain TCP server in native code (the reference of `bench transport`): answers "send me N
 * bytes" with N bytes, and takes N bytes pushed to it, until the process ends. Returns its port.
 */
export function rawTcpServe(host: string, port: number): number {
  return loadAddon<RawTcpAddon>().rawTcpServe(host, port);
}

/** Seconds that `reps` requests of `bytes` took from a native raw TCP client (after a warm-up). */
export function rawTcpFetch(host: string, port: number, bytes: number, reps: number): Promise<number> {
  return loadAddon<RawTcpAddon>().rawTcpFetch(host, port, bytes, reps);
}

/** Seconds that `reps` pushes of `bytes` to a rawTcpServe server took (after a warm-up). */
export function rawTcpPush(host: string, port: number, bytes: number, reps: number): Promise<number> {
  return loadAddon<RawTcpAddon>().rawTcpPush(host, port, bytes, reps);
}
