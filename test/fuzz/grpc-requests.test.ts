// Every unary gRPC request a host supervisor or a node executor accepts, fuzzed: messages built
// from the .proto definitions with random and edge values in every field (nested messages,
// repeated fields, absurd sizes, hostile strings), and raw random bytes that may not decode at
// all, sent to a real supervisor (in a session, so requests reach its checks and its executors)
// and to a real executor process. Each call must end, within its deadline, in a reply or a gRPC
// error that says something; both keep serving afterwards. `FUZZ_GRPC_RUNS` sets the number of
// requests per method (default 40 here; npm run fuzz sets 1000).
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../../executor/host/supervisor.js';
import { startLoopbackSupervisor } from '../helpers/supervisor.js';
import { LocalCluster } from '../../executor/host/local-cluster.js';
import { HostClient } from '../../transport/host-client.js';
import { readTopology } from '../../native/topology.js';

const RUNS = Number(process.env.FUZZ_GRPC_RUNS ?? 40);
const TOKEN = 'grpc-fuzz-token-0123456789';
const root = protobuf.loadSync([
  fileURLToPath(new URL('../../proto/executor.proto', import.meta.url)),
  fileURLToPath(new URL('../../proto/hosts.proto', import.meta.url)),
]);
root.resolveAll();

// Sizes a request may ask for: small ones that run, and absurd ones that must be refused
// (valid large sizes that would really allocate gigabytes are left out: this is not a load test).
const SIZES = [0, 1, 2, 3, 7, 31, 32, 64, 100, 4096, 2 ** 40, 2 ** 53 - 1];
const STRINGS = [
  '',
  'x',
  'last',
  'all',
  'none',
  'q4_0',
  '../../../etc/passwd',
  '\u0000',
  'é'.repeat(300),
  'a'.repeat(5000),
];

/** A random value for one field of `type` (protobufjs reflection), nested at most `depth` deep. */
function value(field: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  const one = (): fc.Arbitrary<unknown> => {
    if (field.resolvedType instanceof protobuf.Type)
      return depth > 0 ? message(field.resolvedType, depth - 1) : fc.constant({});
    if (field.resolvedType instanceof protobuf.Enum)
      return fc.constantFrom(...Object.values(field.resolvedType.values));
    switch (field.type) {
      case 'bool':
        return fc.boolean();
      case 'string':
        return fc.oneof(fc.constantFrom(...STRINGS), fc.string({ maxLength: 40 }));
      case 'bytes':
        return fc.uint8Array({ maxLength: 64 });
      case 'double':
      case 'float':
        return fc.constantFrom(0, -1, 0.5, 1e300, -1e-300, Number.NaN, Infinity);
      case 'int32':
      case 'sint32':
        return fc.oneof(
          fc.constantFrom(0, 1, -1, 2 ** 31 - 1, -(2 ** 31)),
          fc.integer({ min: -5, max: 100 }),
        );
      case 'uint32':
        return fc.oneof(fc.constantFrom(...SIZES.filter((v) => v < 2 ** 32), 2 ** 32 - 1), fc.nat(100));
      default: // 64-bit integers
        return fc.oneof(fc.constantFrom(...SIZES), fc.nat(100));
    }
  };
  return field.repeated ? fc.array(one(), { maxLength: 4 }) : one();
}

function message(type: protobuf.Type, depth = 3): fc.Arbitrary<Record<string, unknown>> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of type.fieldsArray) fields[f.name] = value(f, depth);
  return fc.record(fields, { requiredKeys: [] });
}

interface Outcome {
  ok: boolean;
  code?: number;
  details?: string;
}

function call(client: grpc.Client, path: string, body: Buffer, md: grpc.Metadata): Promise<Outcome> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      md,
      { deadline: Date.now() + 15_000 },
      (err) => resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true }),
    );
  });
}

/** Fuzzes every unary method of `service` on `client`, `RUNS` typed messages and `RUNS / 4` raw bodies each. */
async function fuzzService(
  client: grpc.Client,
  service: protobuf.Service,
  md: grpc.Metadata,
  skip: readonly string[],
): Promise<Map<string, { ok: number; refused: number }>> {
  const tally = new Map<string, { ok: number; refused: number }>();
  for (const m of service.methodsArray) {
    if (m.requestStream || m.responseStream || skip.includes(m.name)) continue;
    const type = m.resolvedRequestType!;
    const path = `/${service.fullName.slice(1)}/${m.name}`;
    const t = { ok: 0, refused: 0 };
    tally.set(m.name, t);
    const bodies: Buffer[] = fc
      .sample(message(type), { numRuns: RUNS, seed: 20261204 })
      .map((o) => Buffer.from(type.encode(type.fromObject(o)).finish()));
    for (let i = 0; i < Math.max(1, RUNS / 4); i++) bodies.push(randomBytes(1 + ((i * 7) % 48)));
    for (const body of bodies) {
      const r = await call(client, path, body, md);
      if (r.ok) t.ok++;
      else {
        t.refused++;
        if (process.env.FUZZ_SHOW && t.refused <= 3) console.log(m.name, r.code, r.details);
        // An error names its problem: a status and words, never an empty or internal crash.
        expect(r.code, `${m.name}: ${r.details}`).not.toBe(grpc.status.UNKNOWN);
        expect(r.details ?? '', m.name).not.toBe('');
        expect(r.code, `${m.name} timed out: ${r.details}`).not.toBe(grpc.status.DEADLINE_EXCEEDED);
        // A missing or mistyped field is named, not met with a JavaScript error from inside.
        expect(r.details ?? '', m.name).not.toMatch(
          /Cannot read propert|is not a function|of undefined|of null|is not iterable/,
        );
      }
    }
  }
  return tally;
}

describe('fuzzed gRPC requests to a supervisor', () => {
  let sup: Supervisor;
  let host: HostClient;
  let session: { cancel(): void } | undefined;
  let address = '';
  beforeAll(async () => {
    ({ sup, address } = await startLoopbackSupervisor(TOKEN));
    host = new HostClient(address, 'fuzzed host', { token: TOKEN });
    session = await host.open({ session: 'fuzz', hostIndex: 0, peers: [address] }, () => undefined);
    await host.stage(1 << 16);
  }, 60_000);
  afterAll(async () => {
    session?.cancel();
    host?.close();
    await sup?.stop();
  });

  it('a supervisor in a session answers every request with a reply or a clear error, and keeps serving', async () => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    try {
      const tally = await fuzzService(client, root.lookupService('redblue.hosts.v1.Host'), md, [
        'EndSession',
      ]);
      if (process.env.FUZZ_SHOW) console.log(JSON.stringify([...tally]));
      expect([...tally.keys()]).toEqual(
        expect.arrayContaining(['Stage', 'Fill', 'Gemm', 'LoadModel', 'Forward']),
      );
      // Still serving, and the session still there.
      expect((await host.hello()).dataPort).toBeGreaterThan(0);
      await host.stage(4096);
      // Without the token: refused before any check.
      const anon = await call(client, '/redblue.hosts.v1.Host/Stage', Buffer.alloc(0), new grpc.Metadata());
      expect(anon.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  }, 300_000);
});

// Its own block: the supervisor's session above has ended (executors of one process share one
// shared-memory group name).
describe('fuzzed gRPC requests to an executor', () => {
  it('a node executor answers every request with a reply or a clear error, and keeps serving', async () => {
    const cluster = await LocalCluster.start({ topology: readTopology({ virtualNodes: 1 }) });
    try {
      // Attached to a real staging area first, so that steps reach their checks of offsets,
      // bricks and sizes against it (Attach itself is fuzzed last: a bad one detaches).
      await cluster.stage('fuzz', 1 << 16);
      const client = cluster.clients[0]!.raw;
      const service = root.lookupService('redblue.v1.Executor');
      const tally = await fuzzService(client, service, new grpc.Metadata(), ['Shutdown', 'Attach']);
      if (process.env.FUZZ_SHOW) console.log(JSON.stringify([...tally]));
      expect(tally.size).toBeGreaterThanOrEqual(8);
      const attach = await fuzzService(
        client,
        service,
        new grpc.Metadata(),
        service.methodsArray.map((m) => m.name).filter((n) => n !== 'Attach'),
      );
      expect(attach.has('Attach')).toBe(true);
      // What the fuzzer found, kept: a Gemm without cRows and a brick without ranges are named.
      await cluster.stage('fuzz-again', 1 << 16);
      const gemmType = root.lookupType('redblue.v1.GemmRequest');
      const gemm = (req: Record<string, unknown>) =>
        call(
          client,
          '/redblue.v1.Executor/Gemm',
          Buffer.from(gemmType.encode(gemmType.fromObject(req)).finish()),
          new grpc.Metadata(),
        );
      expect((await gemm({ m: 4, n: 4, k: 4 })).details).toMatch(/cRows is missing/);
      expect(
        (await gemm({ m: 4, n: 4, k: 4, cRows: { lo: 0, hi: 4 }, allBricks: [{ rank: 0, bricks: [{}] }] }))
          .details,
      ).toMatch(/allBricks\[0\]\.bricks\[0\]\.m is missing/);
      expect(await cluster.clients[0]!.hello({})).toMatchObject({ rank: 0 });
    } finally {
      await cluster.stop();
    }
  }, 300_000);
});
