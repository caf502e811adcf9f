// The two ends of `redblue bench transport`, run inside the pretend hosts (network namespaces):
//   node transport-peer.js raw-server HOST:PORT   a raw TCP server: "send me N bytes" → N bytes,
//                                                 "take N bytes" (top bit set) + N bytes → 8 bytes
//   node transport-peer.js client JSON            measures gRPC against the raw socket, prints JSON
//   node transport-peer.js ucx-check JSON         exact bytes over UCX (test/hosts/ucx.test.ts)
// gRPC is measured against a real host supervisor (`redblue executor`), pulling blocks of its
// staging area (the path partial sums take between hosts) and pushing into it: through the data
// path the engine uses (the Data service on gRPC's C++ core), block after block in native code as
// the native raw socket is measured, and once more with a JS call per block (HostClient, as the
// coordinator moves data today); and the same native path to a second supervisor that uses TLS
// (the cluster certificate), which must move bytes as fast. Every figure is the best of `rounds`
// rounds, the rounds interleaved so that drift on a shared machine touches every method alike.
import { readFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { HostClient } from '../transport/host-client.js';
import { DataClient } from '../transport/native-data.js';
import { rawTcpFetch, rawTcpPush, rawTcpServe } from '../native/raw-tcp.js';
import { ucxBytesMoved, ucxData, type NativeUcxRemote } from '../native/ucx.js';
import { hostOf, joinHostPort } from '../common/address.js';

export interface ClientArgs {
  grpc: string;
  raw: string;
  token: string;
  sizes: number[];
  /** Bytes to move per size and round (at least two blocks). */
  totalBytes: number;
  pings: number;
  rounds: number;
  /** A supervisor serving with TLS (same machine as `grpc`), and the cluster certificate's files. */
  tls: { grpc: string; cert: string; key: string; ca: string };
  /** A supervisor started with `--transport ucx` (same machine as `grpc`): its area over UCX. */
  ucx?: string;
}

export interface PeerResults {
  /** GB/s per block size: the native data path, blocks moved one after another in native code. */
  grpcRead: Record<string, number>;
  grpcWrite: Record<string, number>;
  /** The same path with a JS call per block (HostClient.read / write). */
  hostClientRead: Record<string, number>;
  hostClientWrite: Record<string, number>;
  /** The native data path under TLS, blocks one after another in native code. */
  tlsRead: Record<string, number>;
  tlsWrite: Record<string, number>;
  /** A raw TCP socket (Node), pulling from the server (as a read) and pushing to it (a write). */
  raw: Record<string, number>;
  rawPush: Record<string, number>;
  /** The same from a native (C++) raw socket client and server. */
  rawNative: Record<string, number>;
  rawNativePush: Record<string, number>;
  /** Microseconds per round trip of a small message: a grpc-js unary call, an 8-byte read on
   * the native data path (native loop), and the raw socket (Node). */
  grpcRttUs: number;
  dataPathRttUs: number;
  rawRttUs: number;
  /** With `ucx`: GB/s of blocks read from and written into its area over UCX (native loop), and
   * microseconds per 8-byte read (a request and its answer: a round trip). */
  ucxRead?: Record<string, number>;
  ucxWrite?: Record<string, number>;
  ucxRttUs?: number;
}

/** A session on a `--transport ucx` supervisor, an area of `bytes`, and a UCX remote to it. */
async function ucxArea(
  address: string,
  token: string,
  bytes: number,
): Promise<{ host: HostClient; remote: NativeUcxRemote; close: () => Promise<void> }> {
  const host = new HostClient(address, 'bench UCX host', { token });
  const session = await host.open(
    { session: `ucx-${process.pid}`, hostIndex: 0, peers: [address] },
    () => undefined,
  );
  const { ucxArea: descriptor } = await host.stage(bytes);
  if (!descriptor) throw new Error(`${address} gave no UCX area: start it with --transport ucx`);
  const data = ucxData();
  const remote = data.connect(descriptor, 60_000);
  return {
    host,
    remote,
    close: async () => {
      remote.close();
      data.close();
      session.cancel();
      await host.closeSession();
      host.close();
    },
  };
}

function hostPort(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
}

const PUSH = 1n << 63n;

function rawServer(address: string): void {
  const block = Buffer.alloc(64 << 20, 7);
  const server = createServer((s) => {
    s.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    let taking = 0; // bytes of a push still to come
    let at = 0; // where they land in `block`
    // A push's bytes land in memory, as any receiver's must (the data path's land in the staging
    // area): copied into `block` in order.
    const take = (d: Buffer): Buffer => {
      const used = Math.min(taking, d.length);
      for (let done = 0; done < used;) {
        const n = Math.min(used - done, block.length - at);
        d.copy(block, at, done, done + n);
        done += n;
        at = (at + n) % block.length;
      }
      taking -= used;
      if (taking === 0) s.write(Buffer.alloc(8));
      return d.subarray(used);
    };
    s.on('data', (d: Buffer) => {
      if (taking > 0) d = take(d);
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      while (taking === 0 && pending.length >= 8) {
        const head = pending.readBigUInt64LE(0);
        pending = pending.subarray(8);
        if (head & PUSH) {
          // Take n bytes, then answer with 8.
          taking = Number(head & ~PUSH);
          at = 0;
          pending = take(pending);
          continue;
        }
        // Answer with n bytes (a block, or an 8-byte pong).
        for (let left = Number(head); left > 0; left -= block.length)
          s.write(block.subarray(0, Math.min(left, block.length)));
      }
    });
    s.on('error', () => undefined);
  });
  const { host, port } = hostPort(address);
  // and the native one on the next port
  rawTcpServe(host, port + 1);
  server.listen(port, host, () => process.stdout.write('ready\n'));
}

/** Asks for `bytes` and resolves when they all arrived. */
function rawFetch(s: Socket, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= bytes) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    const req = Buffer.alloc(8);
    req.writeBigUInt64LE(BigInt(bytes));
    s.write(req);
  });
}

/** Sends `bytes` (from `src`) and resolves when the server has taken them all. */
function rawPush(s: Socket, src: Uint8Array, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (d: Buffer) => {
      got += d.length;
      if (got >= 8) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    const req = Buffer.alloc(8);
    req.writeBigUInt64LE(BigInt(bytes) | PUSH);
    s.write(req);
    s.write(src.subarray(0, bytes));
  });
}

async function timeIt(reps: number, f: () => Promise<unknown>): Promise<number> {
  await f(); // warm-up (connection, first allocation)
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) await f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function client(a: ClientArgs): Promise<PeerResults> {
  const auth = { token: a.token };
  const host = new HostClient(a.grpc, 'bench host', auth);
  const tlsAuth = {
    tls: { cert: readFileSync(a.tls.cert), key: readFileSync(a.tls.key), ca: readFileSync(a.tls.ca) },
  };
  const tlsHost = new HostClient(a.tls.grpc, 'bench TLS host', tlsAuth);
  const session = await host.open({ session: 'bench', hostIndex: 0, peers: [a.grpc] }, () => undefined);
  const tlsSession = await tlsHost.open(
    { session: 'bench-tls', hostIndex: 0, peers: [a.tls.grpc] },
    () => undefined,
  );
  const dataOf = async (h: HostClient, address: string, creds: object) => {
    const { dataPort } = await h.hello();
    if (!dataPort) throw new Error(`${address} serves no native data path`);
    return new DataClient(joinHostPort(hostOf(address), dataPort), creds);
  };
  const data = await dataOf(host, a.grpc, auth);
  const tlsData = await dataOf(tlsHost, a.tls.grpc, tlsAuth);
  const maxSize = Math.max(...a.sizes);
  await host.stage(maxSize);
  await tlsHost.stage(maxSize);
  const dst = new Uint8Array(maxSize);
  const src = new Uint8Array(maxSize).fill(3);
  const { host: rh, port: rp } = hostPort(a.raw);
  const sock = connect(rp, rh);
  sock.setNoDelay(true);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const out: PeerResults = {
    grpcRead: {},
    grpcWrite: {},
    hostClientRead: {},
    hostClientWrite: {},
    tlsRead: {},
    tlsWrite: {},
    raw: {},
    rawPush: {},
    rawNative: {},
    rawNativePush: {},
    grpcRttUs: Infinity,
    dataPathRttUs: Infinity,
    rawRttUs: Infinity,
  };
  const ucx = a.ucx ? await ucxArea(a.ucx, a.token, maxSize) : undefined;
  if (ucx) {
    out.ucxRead = {};
    out.ucxWrite = {};
    out.ucxRttUs = Infinity;
  }
  const DEADLINE = 600_000;
  // The fastest of the rounds (seconds for `reps` blocks) as GB/s.
  const best = (into: Record<string, number>, key: string, bytes: number, seconds: number) =>
    (into[key] = Math.max(into[key] ?? 0, bytes / seconds / 1e9));
  for (let round = 0; round < a.rounds; round++) {
    for (const size of a.sizes) {
      const reps = Math.max(2, Math.ceil(a.totalBytes / size));
      const key = String(size);
      const view = dst.subarray(0, size);
      const from = src.subarray(0, size);
      const bytes = reps * size;
      best(out.raw, key, bytes, await timeIt(reps, () => rawFetch(sock, size)));
      best(out.rawPush, key, bytes, await timeIt(reps, () => rawPush(sock, from, size)));
      best(out.rawNative, key, bytes, await rawTcpFetch(rh, rp + 1, size, reps));
      best(out.rawNativePush, key, bytes, await rawTcpPush(rh, rp + 1, size, reps));
      await data.read(0, view, DEADLINE); // warm-up
      best(out.grpcRead, key, bytes, await data.repeat('read', 0, view, DEADLINE, reps));
      best(out.grpcWrite, key, bytes, await data.repeat('write', 0, from, DEADLINE, reps));
      best(out.hostClientRead, key, bytes, await timeIt(reps, () => host.read(0, view)));
      best(out.hostClientWrite, key, bytes, await timeIt(reps, () => host.write(0, from)));
      await tlsData.read(0, view, DEADLINE); // warm-up (the TLS handshake)
      best(out.tlsRead, key, bytes, await tlsData.repeat('read', 0, view, DEADLINE, reps));
      best(out.tlsWrite, key, bytes, await tlsData.repeat('write', 0, from, DEADLINE, reps));
      if (ucx) {
        await ucx.remote.read(0, view.buffer as ArrayBuffer, 0, size); // warm-up (wire-up)
        best(
          out.ucxRead!,
          key,
          bytes,
          (await ucx.remote.read(0, view.buffer as ArrayBuffer, 0, size, reps)) as number,
        );
        best(
          out.ucxWrite!,
          key,
          bytes,
          (await ucx.remote.write(0, from.buffer as ArrayBuffer, 0, size, reps)) as number,
        );
      }
    }
    const us = (seconds: number) => (seconds / a.pings) * 1e6;
    out.rawRttUs = Math.min(out.rawRttUs, us(await timeIt(a.pings, () => rawFetch(sock, 8))));
    out.grpcRttUs = Math.min(out.grpcRttUs, us(await timeIt(a.pings, () => host.hello())));
    out.dataPathRttUs = Math.min(
      out.dataPathRttUs,
      us(await data.repeat('read', 0, dst.subarray(0, 8), DEADLINE, a.pings)),
    );
    if (ucx)
      out.ucxRttUs = Math.min(
        out.ucxRttUs!,
        us((await ucx.remote.read(0, dst.buffer as ArrayBuffer, 0, 8, a.pings)) as number),
      );
  }
  await ucx?.close();
  sock.destroy();
  session.cancel();
  tlsSession.cancel();
  await host.closeSession();
  await tlsHost.closeSession();
  data.close();
  tlsData.close();
  host.close();
  tlsHost.close();
  return out;
}

export interface UcxCheckArgs {
  address: string;
  token: string;
  /** Block sizes and area offsets to move, each size at each offset. */
  sizes: number[];
  offsets: number[];
}
export interface UcxCheckResult {
  checked: number;
  /** "read SIZE@OFFSET" or "write SIZE@OFFSET" for every block whose bytes differ. */
  mismatches: string[];
  ucxBytes: number;
  bytes: number;
}

/**
 * Exact bytes over UCX: a pattern written over gRPC read back over UCX, and another written over
 * UCX read back over gRPC, every size at every offset (odd ones included), into and from odd
 * places of local buffers.
 */
async function ucxCheck(a: UcxCheckArgs): Promise<UcxCheckResult> {
  const span = Math.max(...a.sizes) + Math.max(...a.offsets);
  const { host, remote, close } = await ucxArea(a.address, a.token, span);
  const pattern = (seed: number, n: number) => {
    const b = new Uint8Array(n);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 255;
    }
    return b;
  };
  const out: UcxCheckResult = { checked: 0, mismatches: [], ucxBytes: 0, bytes: 0 };
  const before = ucxBytesMoved();
  let seed = 1;
  for (const size of a.sizes)
    for (const offset of a.offsets) {
      // gRPC writes, UCX reads (into a buffer at an odd place of its own).
      const want = pattern(seed++, size);
      await host.write(offset, want);
      const into = new Uint8Array(size + 3);
      await remote.read(offset, into.buffer as ArrayBuffer, 3, size);
      if (!Buffer.from(into.subarray(3)).equals(Buffer.from(want)))
        out.mismatches.push(`read ${size}@${offset}`);
      // UCX writes (from an odd place), gRPC reads.
      const src = new Uint8Array(size + 5);
      src.set(pattern(seed++, size), 5);
      await remote.write(offset, src.buffer as ArrayBuffer, 5, size);
      const back = new Uint8Array(size);
      await host.read(offset, back);
      if (!Buffer.from(back).equals(Buffer.from(src.subarray(5))))
        out.mismatches.push(`write ${size}@${offset}`);
      out.checked += 2;
      out.bytes += 2 * size;
    }
  out.ucxBytes = ucxBytesMoved() - before;
  await close();
  return out;
}

const [role, arg] = process.argv.slice(2);
const answer = (p: Promise<unknown>) =>
  p.then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`transport bench ${role}: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
if (role === 'raw-server' && arg) rawServer(arg);
else if (role === 'ucx-check' && arg) answer(ucxCheck(JSON.parse(arg) as UcxCheckArgs));
else if (role === 'client' && arg) answer(client(JSON.parse(arg) as ClientArgs));
