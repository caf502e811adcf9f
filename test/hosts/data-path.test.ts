// The native data path between hosts: the Data service of proto/hosts.proto on gRPC's C++ core.
// Bytes arrive exactly; a plain grpc-js client can call it (it is gRPC on the wire); the token,
// the bounds and a replaced or missing staging area are checked; a host that went away is an
// error, never a hang. Also through a real supervisor: Hello names the port, and HostClient's
// reads and writes take it.
import * as grpc from '@grpc/grpc-js';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTopology } from '../../native/topology.js';
import { Supervisor } from '../../executor/host/supervisor.js';
import { HostClient } from '../../transport/host-client.js';
import { createSharedArea, type SharedArea } from '../../transport/shared-area.js';
import { DataClient, DataServer, statusOf } from '../../transport/native-data.js';
import { rawTcpFetch, rawTcpServe } from '../../native/raw-tcp.js';
import { makeCerts } from '../../bench/certs.js';
import { loadService } from '../../transport/proto.js';

const TOKEN = 'data-path-token-0123456789';

/** The Data service as grpc-js sees it, from proto/hosts.proto. */
function dataService(): grpc.ServiceClientConstructor {
  return loadService('hosts.proto', 'redblue.hosts.v1.Data', {
    longs: Number,
    enums: String,
    defaults: true,
  });
}

const failure = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return statusOf(e);
  }
  throw new Error('the call succeeded');
};

describe('native data path', () => {
  let server: DataServer;
  let shared: SharedArea;
  let area: Uint8Array;
  let client: DataClient;
  beforeAll(() => {
    server = new DataServer('127.0.0.1', { token: TOKEN });
    shared = createSharedArea('data-path-test', 3 << 20);
    area = new Uint8Array(shared.buffer);
    area.set(randomBytes(area.byteLength));
    server.setArea(shared.name, shared.buffer.byteLength);
    client = new DataClient(`127.0.0.1:${server.port}`, { token: TOKEN });
  });
  afterAll(() => {
    client?.close();
    server?.close();
    shared?.close();
  });

  it('reads and writes exactly, in chunks of any size, at any offset', async () => {
    for (const [offset, bytes, chunk] of [
      [0, 0, 0],
      [5, 1, 0],
      [17, 4095, 4096],
      [1, (1 << 20) + 3, 0],
      [100, (2 << 20) + 12345, 65536],
    ] as const) {
      const dst = new Uint8Array(bytes + 7).fill(0xee);
      await client.read(offset, dst.subarray(3, 3 + bytes), 10_000, chunk);
      expect(Buffer.compare(dst.subarray(3, 3 + bytes), area.subarray(offset, offset + bytes))).toBe(0);
      // the bytes around the destination are untouched
      expect([...dst.subarray(0, 3), ...dst.subarray(3 + bytes)]).toEqual(new Array(7).fill(0xee));
      const src = randomBytes(bytes);
      await client.write(offset, src, 10_000, chunk);
      expect(Buffer.compare(area.subarray(offset, offset + bytes), src)).toBe(0);
    }
  });

  it('is gRPC on the wire: a grpc-js client reads and writes through the Data service', async () => {
    const js = new (dataService())(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 8 << 20,
    }) as unknown as {
      read(r: unknown, md: grpc.Metadata): grpc.ClientReadableStream<{ offset: number; data: Buffer }>;
      write(
        md: grpc.Metadata,
        cb: (e: grpc.ServiceError | null, r: { bytes: number }) => void,
      ): grpc.ClientWritableStream<unknown>;
      close(): void;
    };
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    const got = Buffer.alloc(300_000);
    await new Promise<void>((resolve, reject) => {
      const call = js.read({ offset: 1000, bytes: got.length, chunkBytes: 65536 }, md);
      call.on('data', (b) => b.data.copy(got, b.offset));
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    expect(Buffer.compare(got, area.subarray(1000, 1000 + got.length))).toBe(0);
    const block = randomBytes(5000);
    const reply = await new Promise<{ bytes: number }>((resolve, reject) => {
      const call = js.write(md, (e, r) => (e ? reject(e) : resolve(r)));
      call.write({ offset: 77, data: block });
      call.end();
    });
    expect(reply.bytes).toBe(5000);
    expect(Buffer.compare(area.subarray(77, 5077), block)).toBe(0);
    // and without the token it is refused
    const refused = await new Promise<grpc.ServiceError>((resolve) => {
      const call = js.read({ offset: 0, bytes: 10 }, new grpc.Metadata());
      call.on('data', () => undefined);
      call.on('error', resolve);
    });
    expect(refused.code).toBe(grpc.status.UNAUTHENTICATED);
    js.close();
  });

  it('serves Pipe to a grpc-js client: reads, writes, a failed operation and fetches (one, then followed) on one stream', async () => {
    type Reply = {
      block?: { offset: number; data: Buffer };
      last: boolean;
      bytes: number;
      code: number;
      error: string;
    };
    const js = new (dataService())(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 8 << 20,
    }) as unknown as { pipe(md: grpc.Metadata): grpc.ClientDuplexStream<unknown, Reply>; close(): void };
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    const call = js.pipe(md);
    const replies: Reply[] = [];
    let wake: (() => void) | undefined;
    call.on('data', (r: Reply) => {
      replies.push(r);
      wake?.();
    });
    call.on('error', () => wake?.());
    // The replies of one operation, up to the one marked last.
    const operation = async (req: unknown): Promise<Reply[]> => {
      call.write(req);
      return answer();
    };
    const answer = async (): Promise<Reply[]> => {
      const out: Reply[] = [];
      for (let i = 0; i < 1000; i++) {
        while (replies.length) {
          const r = replies.shift()!;
          out.push(r);
          if (r.last) return out;
        }
        await new Promise<void>((r) => (wake = r));
      }
      throw new Error('no last reply');
    };
    const read = await operation({ read: { offset: 3000, bytes: 200_000, chunkBytes: 65536 } });
    expect(read.length).toBe(4); // 65536 × 3 + 3392, the last marked
    const got = Buffer.alloc(200_000);
    for (const r of read) r.block!.data.copy(got, r.block!.offset);
    expect(Buffer.compare(got, area.subarray(3000, 203_000))).toBe(0);
    const block = randomBytes(7000);
    const wrote = await operation({ write: { offset: 11, data: block }, last: true });
    expect(wrote).toMatchObject([{ last: true, bytes: 7000, code: 0 }]);
    expect(Buffer.compare(area.subarray(11, 7011), block)).toBe(0);
    const bad = await operation({ read: { offset: area.byteLength, bytes: 1 } });
    expect(bad).toMatchObject([{ last: true, code: grpc.status.INVALID_ARGUMENT }]);
    expect(bad[0]!.error).toMatch(/lie outside the 3145728-byte staging area/);
    // the stream goes on after a failed operation
    const again = await operation({ read: { offset: 11, bytes: 7000 } });
    expect(Buffer.compare(again[0]!.block!.data, block)).toBe(0);
    // an all-gather block, posted by the host, fetched on the same stream
    const posted = randomBytes(3000);
    server.post('wire-run:0', posted, 1);
    const fetched = await operation({ fetch: { tag: 'wire-run:0', fromHost: 1 } });
    expect(fetched).toMatchObject([{ last: true, code: 0 }]);
    expect(Buffer.compare(fetched[0]!.block!.data, posted)).toBe(0);
    // A followed fetch: one request, then every later block of the run as it is posted (an
    // empty one too), in order, with no request of their own.
    const blocks = [randomBytes(2000), new Uint8Array(0), randomBytes(70_000)];
    server.post('wire-run:5', blocks[0]!, 1);
    const f5 = await operation({ fetch: { tag: 'wire-run:5', fromHost: 1, follow: true } });
    expect(Buffer.compare(f5[0]!.block!.data, blocks[0]!)).toBe(0);
    const f6 = answer(); // waits for the post
    await new Promise((r) => setTimeout(r, 50));
    server.post('wire-run:6', blocks[1]!, 1);
    expect(await f6).toMatchObject([{ last: true, code: 0 }]);
    expect((await f6)[0]!.block).toBeFalsy();
    server.post('wire-run:7', blocks[2]!, 1);
    const f7 = await answer();
    expect(Buffer.compare(f7[0]!.block!.data, blocks[2]!)).toBe(0);
    call.end();
    // A followed fetch needs a tag that ends in a sequence number.
    const bad2 = js.pipe(md);
    const ended = new Promise<grpc.ServiceError>((r) => bad2.on('error', r));
    bad2.on('data', () => {});
    bad2.write({ fetch: { tag: 'wire-run', fromHost: 1, follow: true } });
    expect(await ended).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: /a followed fetch's tag ends in ':<sequence number>', got wire-run/,
    });
    js.close();
  });

  it('skips a field number too large for an int in a ReadRequest (wire_fuzz found it written out of bounds)', async () => {
    const varint = (v: bigint) => {
      const out: number[] = [];
      while (v >= 0x80n) {
        out.push(Number((v & 0x7fn) | 0x80n));
        v >>= 7n;
      }
      out.push(Number(v));
      return out;
    };
    // ReadRequest { field 0x80000001: 5, offset: 11, bytes: 100 }, inside PipeRequest.read
    const inner = [...varint((0x80000001n << 3n) | 0n), 5, 0x08, 11, 0x10, 100];
    const req = Buffer.from([0x0a, inner.length, ...inner]);
    const raw = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    const call = raw.makeBidiStreamRequest(
      '/redblue.hosts.v1.Data/Pipe',
      (b: Buffer) => b,
      (b: Buffer) => b,
      md,
    );
    const first = new Promise<Buffer>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
    });
    call.write(req);
    const reply = await first;
    call.end();
    raw.close();
    // PipeReply.block (field 1) holds offset 11 and the area's 100 bytes from there.
    expect(reply.includes(Buffer.from(area.subarray(11, 111)))).toBe(true);
  });

  it('adds f32 values into the destination as they arrive (readAdd), for any chunk size', async () => {
    const f32 = new Float32Array(area.buffer, area.byteOffset, area.byteLength / 4);
    for (const [first, count, chunk] of [
      [0, 1, 0],
      [3, 1023, 4096],
      [101, (1 << 18) + 7, 65536],
      [7, (2 << 18) + 3, 0],
    ] as const) {
      // small integers, so that every sum is exact in f32
      for (let i = 0; i < count; i++) f32[first + i] = ((i * 7) % 1000) - 500;
      const dst = new Float32Array(count + 2);
      for (let i = 0; i < dst.length; i++) dst[i] = i % 13;
      await client.readAdd(first * 4, dst.subarray(1, 1 + count), 10_000, chunk);
      expect(dst[0]).toBe(0);
      expect(dst[count + 1]).toBe((count + 1) % 13);
      let wrong = 0;
      for (let i = 0; i < count; i++) if (dst[1 + i] !== ((i + 1) % 13) + (((i * 7) % 1000) - 500)) wrong++;
      expect(wrong).toBe(0);
    }
    const odd = new Float32Array(new ArrayBuffer(64), 0, 8);
    await expect(client.readAdd(2, odd, 5000)).resolves.toBeUndefined(); // a byte offset in the area is fine
    await expect(client.readAdd(0, odd, 5000, 4098)).rejects.toThrow(/multiples of 4|chunkBytes/);
  });

  it('hands all-gather blocks to the peers that fetch them, waiting for the post, until a run or session ends', async () => {
    const fetcher = new DataClient(`127.0.0.1:${server.port}`, { token: TOKEN });
    try {
      // a fetch that comes first waits for the post; one after it gets the block at once
      const early = fetcher.fetch('mb-run:0', 1, 10_000);
      await new Promise((r) => setTimeout(r, 50));
      const block = randomBytes((1 << 20) + 5); // more than one chunk
      server.post('mb-run:0', block, 2);
      expect(Buffer.compare(await early, block)).toBe(0);
      expect(Buffer.compare(await client.fetch('mb-run:0', 2, 10_000), block)).toBe(0);
      // both readers had it, so it is gone: the next fetch waits, until another run starts
      const late = fetcher.fetch('mb-run:0', 1, 10_000).then(
        () => 'got it',
        (e: unknown) => statusOf(e),
      );
      await new Promise((r) => setTimeout(r, 50));
      server.forgetOtherRuns('mb-run2');
      expect(await late).toMatchObject({ code: grpc.status.ABORTED, message: /run mb-run2 replaced/ });
      // an empty block, and the end of a session failing the fetches that still wait
      server.post('mb-run2:0', new Uint8Array(0), 1);
      expect((await fetcher.fetch('mb-run2:0', 1, 10_000)).byteLength).toBe(0);
      const waiting = fetcher.fetch('mb-run2:1', 1, 10_000).catch((e: unknown) => statusOf(e));
      await new Promise((r) => setTimeout(r, 50));
      server.clearMailbox('the session ended');
      expect(await waiting).toMatchObject({ code: grpc.status.UNAVAILABLE, message: /the session ended/ });
      await expect(fetcher.fetch('', 1, 1000)).rejects.toThrow(/1-200 characters/);
    } finally {
      fetcher.close();
    }
  });

  it('runs calls at once, each on a pipe of its own, with exact bytes', async () => {
    const ops = Array.from({ length: 6 }, async (_, i) => {
      const at = 1 + i * 300_001;
      const src = randomBytes(300_000);
      await client.write(at, src, 10_000, 65536);
      const back = new Uint8Array(300_000);
      await client.read(at, back, 10_000, 4096 * (i + 1));
      return Buffer.compare(back, src);
    });
    expect(await Promise.all(ops)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('replaces a pipe that lost its server while idle (the peer restarted), once', async () => {
    const first = new DataServer('127.0.0.1', { token: TOKEN });
    const port = first.port;
    first.setArea(shared.name, shared.buffer.byteLength);
    const c = new DataClient(`127.0.0.1:${port}`, { token: TOKEN });
    const dst = new Uint8Array(1000);
    await c.read(5, dst, 5000); // leaves an idle pipe behind
    first.close();
    const second = new DataServer('127.0.0.1', { token: TOKEN }, port);
    second.setArea(shared.name, shared.buffer.byteLength);
    try {
      await c.read(7, dst, 5000);
      expect(Buffer.compare(dst, area.subarray(7, 1007))).toBe(0);
    } finally {
      c.close();
      second.close();
    }
  });

  it('refuses a wrong token, bytes outside the area and bad chunk sizes, saying what was wrong', async () => {
    const wrong = new DataClient(`127.0.0.1:${server.port}`, { token: 'not-the-token' });
    const denied = await failure(wrong.read(0, new Uint8Array(16), 5000));
    expect(denied.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(denied.message).toMatch(/missing or wrong token/);
    wrong.close();
    const outside = await failure(client.read(area.byteLength - 10, new Uint8Array(11), 5000));
    expect(outside.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(outside.message).toMatch(
      /read: bytes \[3145718, 3145729\) lie outside the 3145728-byte staging area/,
    );
    const far = await failure(client.write(2 ** 40, new Uint8Array(1), 5000));
    expect(far.message).toMatch(/write: bytes \[1099511627776, 1099511627777\) lie outside/);
    await expect(client.read(0, new Uint8Array(16), 5000, 100)).rejects.toThrow(/chunkBytes must be 0/);
  });

  it('fails calls, never crashes, while the area is replaced or gone', async () => {
    const spare = createSharedArea('data-path-spare', 3 << 20);
    const reads = Array.from({ length: 8 }, () =>
      client.read(0, new Uint8Array(3 << 20), 10_000, 4096).then(
        () => 'ok',
        (e: unknown) => statusOf(e).message,
      ),
    );
    server.setArea(spare.name, spare.buffer.byteLength);
    // Our own mapping and the file may go at once: the server holds its own mapping.
    spare.close();
    server.setArea(undefined);
    for (const r of await Promise.all(reads))
      expect(r).toMatch(/^ok$|replaced during the read|no staging area/);
    const none = await failure(client.read(0, new Uint8Array(4), 5000));
    expect(none.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(() => server.setArea('no-such-staging-file')).toThrow(
      /cannot open \/dev\/shm\/no-such-staging-file/,
    );
    server.setArea(shared.name, shared.buffer.byteLength);
    await client.read(0, new Uint8Array(4), 5000);
  });

  it('reports a host that went away within seconds', async () => {
    const gone = new DataServer('127.0.0.1', { token: TOKEN });
    const port = gone.port;
    gone.close();
    const c = new DataClient(`127.0.0.1:${port}`, { token: TOKEN });
    const t0 = Date.now();
    const e = await failure(c.read(0, new Uint8Array(4), 3000));
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(e.message).toMatch(/unreachable/);
    c.close();
  });
});

describe('native data path under TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'redblue-data-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const files = (c: { cert: string; key: string; ca: string }) => ({
    cert: readFileSync(c.cert),
    key: readFileSync(c.key),
    ca: readFileSync(c.ca),
  });

  it('moves exact bytes for a client with the cluster certificate, and refuses any other', async () => {
    const good = files(makeCerts(dir, 'good'));
    const evil = files(makeCerts(dir, 'evil'));
    const server = new DataServer('127.0.0.1', { token: TOKEN, tls: good });
    const shared = createSharedArea('data-path-tls', 1 << 20);
    const area = new Uint8Array(shared.buffer);
    area.set(randomBytes(area.byteLength));
    server.setArea(shared.name, shared.buffer.byteLength);
    const at = `127.0.0.1:${server.port}`;
    const ok = new DataClient(at, { token: TOKEN, tls: good });
    const plain = new DataClient(at, { token: TOKEN });
    const stranger = new DataClient(at, { token: TOKEN, tls: evil });
    const noToken = new DataClient(at, { tls: good });
    try {
      const back = new Uint8Array(300_000);
      await ok.read(1000, back, 5000, 4096);
      expect(Buffer.compare(back, area.subarray(1000, 301_000))).toBe(0);
      const src = randomBytes(70_000);
      await ok.write(5, src, 5000);
      expect(Buffer.compare(area.subarray(5, 70_005), src)).toBe(0);
      const theirs = new Float32Array(shared.buffer, 0, 1024);
      theirs.forEach((_, i) => (theirs[i] = i * 0.25));
      const sum = new Float32Array(1024).fill(1);
      await ok.readAdd(0, sum, 5000);
      expect(Array.from(sum)).toEqual(Array.from(theirs, (x) => 1 + x));
      // No TLS, or a certificate of another CA: the handshake fails (quickly, never a hang).
      const t0 = Date.now();
      for (const c of [plain, stranger]) {
        const e = await failure(c.read(0, new Uint8Array(16), 3000));
        expect(e.code).toBe(grpc.status.UNAVAILABLE);
      }
      expect(Date.now() - t0).toBeLessThan(10_000);
      // The token is still checked under TLS.
      expect((await failure(noToken.read(0, new Uint8Array(16), 5000))).code).toBe(
        grpc.status.UNAUTHENTICATED,
      );
    } finally {
      for (const c of [ok, plain, stranger, noToken]) c.close();
      server.close();
      shared.close();
    }
  });

  it('says which TLS piece is missing or of the wrong kind', () => {
    const good = files(makeCerts(dir, 'parts'));
    expect(() => new DataServer('127.0.0.1', { tls: { ...good, ca: '' } })).toThrow(
      /tls needs cert, key and ca/,
    );
    expect(() => new DataClient('127.0.0.1:1', { tls: { ...good, key: 42 as unknown as string } })).toThrow(
      /tls.key must be PEM text/,
    );
  });
});

describe('data client threads at process exit', () => {
  it('a process that ends with clients open, closed, or with calls in flight, exits cleanly', () => {
    // Each client runs its calls on a thread of its own (core/serial_worker.h); node frees that
    // thread's way back to JS when the process ends, so the thread must notice, not touch it.
    const url = (rel: string) => JSON.stringify(new URL(rel, import.meta.url).href);
    const script = `
      import { DataServer, DataClient } from ${url('../../dist/transport/native-data.js')};
      import { createSharedArea } from ${url('../../dist/transport/shared-area.js')};
      const [how, n] = [process.argv[2], 8];
      const area = createSharedArea('exit-' + process.pid, 1 << 20);
      const server = new DataServer('127.0.0.1', { token: 'exit-token' });
      server.setArea(area.name);
      const clients = Array.from({ length: n }, () => new DataClient('127.0.0.1:' + server.port, { token: 'exit-token' }));
      await Promise.all(clients.map((c) => c.read(0, new Uint8Array(4096), 5000)));
      area.close();
      if (how === 'in-flight') for (const c of clients) void c.read(0, new Uint8Array(1 << 20), 5000).catch(() => {});
      if (how !== 'open') for (const c of clients) c.close(); // queued calls still run
      if (how === 'in-flight') process.exit(0); // else the event loop simply ends
    `;
    const outcomes: string[] = [];
    for (let i = 0; i < 15; i++) {
      const how = ['open', 'closed', 'in-flight'][i % 3]!;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, how], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      outcomes.push(`${how}: ${r.status}/${r.signal}${r.stderr ? ` ${r.stderr.slice(-300)}` : ''}`);
    }
    expect(outcomes).toEqual(
      Array.from({ length: 15 }, (_, i) => `${['open', 'closed', 'in-flight'][i % 3]}: 0/null`),
    );
  }, 120_000);
});

describe('raw TCP reference (bench transport)', () => {
  it('serves and fetches whole blocks, and names the address it cannot reach', async () => {
    const port = rawTcpServe('127.0.0.1', 0);
    expect(port).toBeGreaterThan(0);
    const seconds = await rawTcpFetch('127.0.0.1', port, (1 << 20) + 5, 3);
    expect(seconds).toBeGreaterThan(0);
    const closed = new DataServer('127.0.0.1', { token: TOKEN }); // a port that is free once closed
    const free = closed.port;
    closed.close();
    await expect(rawTcpFetch('127.0.0.1', free, 16, 1)).rejects.toThrow(
      `cannot connect to 127.0.0.1:${free}`,
    );
    expect(() => rawTcpServe('not-an-address', 0)).toThrow(/not an IPv4 address/);
  });
});

describe('supervisor with the native data path', () => {
  let sup: Supervisor;
  let host: HostClient;
  beforeAll(async () => {
    sup = new Supervisor({
      listen: '127.0.0.1:0',
      topology: readTopology({ virtualNodes: 1 }),
      auth: { token: TOKEN },
    });
    host = new HostClient(`127.0.0.1:${await sup.start()}`, 'host 0', { token: TOKEN });
  }, 30_000);
  afterAll(async () => {
    host?.close();
    await sup?.stop();
  });

  it('serves the data path on the port it is given (--data-port), and says so when it cannot', async () => {
    const probe = new DataServer('127.0.0.1', { token: TOKEN }); // a port that is free once closed
    const port = probe.port;
    probe.close();
    const fixed = new Supervisor({
      listen: '127.0.0.1:0',
      dataPort: port,
      topology: readTopology({ virtualNodes: 1 }),
      auth: { token: TOKEN },
    });
    const c = new HostClient(`127.0.0.1:${await fixed.start()}`, 'fixed', { token: TOKEN });
    try {
      expect((await c.hello()).dataPort).toBe(port);
      // a second supervisor cannot have the same data port
      const clash = new Supervisor({
        listen: '127.0.0.1:0',
        dataPort: port,
        topology: readTopology({ virtualNodes: 1 }),
        auth: { token: TOKEN },
      });
      await expect(clash.start()).rejects.toThrow(`the data service cannot listen on 127.0.0.1:${port}`);
      await clash.stop();
    } finally {
      c.close();
      await fixed.stop();
    }
  });

  it('names its data port in Hello, and HostClient moves the staging area through it', async () => {
    const hello = await host.hello();
    expect(hello.dataPort).toBeGreaterThan(0);
    const session = await host.open(
      { session: 'data', hostIndex: 0, peers: [host.address] },
      () => undefined,
    );
    try {
      await host.stage(1 << 20);
      const src = randomBytes(1 << 20);
      await host.write(0, src);
      const back = new Uint8Array(1 << 20);
      await host.read(0, back);
      expect(Buffer.compare(back, src)).toBe(0);
      // a DataClient of our own on the port Hello named reads the same bytes
      const own = new DataClient(`127.0.0.1:${hello.dataPort}`, { token: TOKEN });
      const direct = new Uint8Array(4096);
      await own.read(4096, direct, 5000);
      expect(Buffer.compare(direct, src.subarray(4096, 8192))).toBe(0);
      own.close();
    } finally {
      session.cancel();
      await host.closeSession();
    }
  });
});
