// A host's supervisor refuses unauthenticated calls and checks every request: nothing it receives
// reaches memory outside its staging area, and each refusal says what was wrong.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Supervisor } from '../../executor/host/supervisor.js';
import { startLoopbackSupervisor } from '../helpers/supervisor.js';
import { HostClient } from '../../transport/host-client.js';
import { authMetadata, hostsServices, MAX_MESSAGE_BYTES } from '../../transport/grpc-data.js';

const TOKEN = 'validate-test-token-0123456789';
let sup: Supervisor;
let client: HostClient;
let address = '';

beforeAll(async () => {
  ({ sup, address } = await startLoopbackSupervisor(TOKEN));
  client = new HostClient(address, 'host 0', { token: TOKEN });
}, 30_000);

afterAll(async () => {
  client?.close();
  await sup?.stop();
});

const code = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return { code: (e as { code?: number }).code, message: (e as Error).message };
  }
  throw new Error('the call succeeded');
};

describe('supervisor security and validation', () => {
  it('refuses calls without the token, or with a wrong one', async () => {
    for (const auth of [{}, { token: 'not-the-token-at-all-00000' }]) {
      const c = new HostClient(address, 'host 0', auth);
      try {
        const r = await code(c.hello());
        expect(r.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(r.message).toMatch(/host 0: unauthenticated: missing or wrong token/);
        expect((await code(c.stage(1024))).code).toBe(grpc.status.UNAUTHENTICATED);
      } finally {
        c.close();
      }
    }
  });

  it('reports its topology to an authenticated caller', async () => {
    const h = await client.hello();
    expect(h.nodes).toHaveLength(1);
    expect(h.nodes[0]!.cpus.length).toBeGreaterThan(0);
    expect(h.virtualNodes).toBe(true);
  });

  it('needs a session before any work', async () => {
    const r = await code(client.stage(1024));
    expect(r.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(r.message).toMatch(/no session: call Open first/);
  });

  it('checks offsets, shapes, dtypes and sizes once a session is open', async () => {
    const session = await client.open(
      { session: 'validate', hostIndex: 0, peers: [address] },
      () => undefined,
    );
    try {
      const busy = new HostClient(address, 'host 0', { token: TOKEN });
      const second = await code(
        busy.open({ session: 'other', hostIndex: 0, peers: [address] }, () => undefined),
      );
      busy.close();
      expect(second.message).toMatch(/busy with session validate/);

      await client.stage(4096);
      const outside = await code(client.write(4000, new Uint8Array(200)));
      expect(outside.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(outside.message).toMatch(/write: bytes \[4000, 4200\) lie outside the 4096-byte staging area/);
      expect((await code(client.read(0, new Uint8Array(5000)))).message).toMatch(
        /outside the 4096-byte staging area/,
      );
      expect((await code(client.fill(2, 4, 1, 1))).message).toMatch(/multiples of 4/);
      expect((await code(client.stage(2 ** 52))).message).toMatch(/bytes must be a whole number in \[64, /);

      const brick = { m: { lo: 0, hi: 9 }, n: { lo: 0, hi: 4 }, k: { lo: 0, hi: 4 } };
      const gemm = { m: 8, n: 4, k: 4, aOffset: 0, bOffset: 128, cOffset: 256, partialOffset: 512 };
      const badBrick = await code(client.gemm({ ...gemm, bricks: [{ node: 0, bricks: [brick] }] }));
      expect(badBrick.message).toMatch(/brick.m.hi must be a whole number in \[0, 8\], got 9/);
      const badNode = await code(client.gemm({ ...gemm, bricks: [{ node: 3, bricks: [] }] }));
      expect(badNode.message).toMatch(/node must be a whole number in \[0, 0\], got 3/);
      const bigC = await code(client.gemm({ ...gemm, cOffset: 4000, bricks: [] }));
      expect(bigC.message).toMatch(/C: bytes \[4000, 4128\) lie outside/);

      const place = {
        dtype: 'q3_k',
        n: 8,
        k: 64,
        layers: 1,
        seed: 1,
        placement: ['shard'],
        firstRank: 0,
        rowsPerRank: [8],
        count: 1,
        fresh: true,
      };
      expect((await code(client.placeLayers(place))).message).toMatch(
        /dtype must be one of q4_0, q8_0, f32, got "q3_k"/,
      );
      expect((await code(client.placeLayers({ ...place, dtype: 'q4_0', k: 40 }))).message).toMatch(
        /k = 40 must be a multiple of 32/,
      );
      expect((await code(client.placeLayers({ ...place, dtype: 'f32', rowsPerRank: [5] }))).message).toMatch(
        /rowsPerRank must add up to n = 8/,
      );
      const run = {
        m: 1,
        iters: 1,
        seed: 1,
        collect: false,
        yOffset: 0,
        xOffset: 0,
        firstRank: 0,
        world: 1,
        run: 'r1',
      };
      expect((await code(client.runLayers({ ...run, world: 2, hostFirstRanks: [0, 1, 2] }))).message).toMatch(
        /hostFirstRanks must list the first rank of every host/,
      );
      expect(
        (await code(client.runLayers({ ...run, run: '../etc', hostFirstRanks: [0, 1] }))).message,
      ).toMatch(/run must be a short name/);
      // A single message above the limit is refused by the server itself (a client that would
      // send it is made with no send limit of its own).
      const raw = new (hostsServices().Host)(address, grpc.credentials.createInsecure(), {
        'grpc.max_send_message_length': -1,
      }) as unknown as {
        loadModel: (
          req: unknown,
          md: grpc.Metadata,
          cb: (e: grpc.ServiceError | null) => void,
        ) => grpc.ClientUnaryCall;
      };
      const tooBig = await new Promise<grpc.ServiceError | null>((resolve) => {
        raw.loadModel({ path: 'x'.repeat(MAX_MESSAGE_BYTES + 1) }, authMetadata({ token: TOKEN }), resolve);
      });
      expect(tooBig?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      // Valid requests still work after all those refusals.
      await client.fill(0, 16, 1, 1);
      const back = new Uint8Array(64);
      await client.read(0, back);
      expect(new Float32Array(back.buffer).some((x) => x !== 0)).toBe(true);
    } finally {
      session.cancel();
      await client.closeSession();
    }
  }, 30_000);

  it('checks model loads and steps: the file on this host, the splits, the ranks, the run', async () => {
    const session = await client.open({ session: 'model', hostIndex: 0, peers: [address] }, () => undefined);
    try {
      const split = {
        kvHeads: { lo: 0, hi: 2 },
        ff: { lo: 0, hi: 512 },
        vocab: { lo: 0, hi: 100 },
        vocabPerRank: [100],
      };
      const load = { path: '/nowhere/model.gguf', ctx: 64, firstRank: 0, world: 1, ranks: [split] };
      const missing = await code(client.loadModel(load));
      expect(missing.code).toBe(grpc.status.NOT_FOUND);
      expect(missing.message).toMatch(
        /host 0: the model \/nowhere\/model.gguf is not readable on .+ \(ENOENT\): copy it there or give its path on the hosts with --host-model/,
      );
      const readable = { ...load, path: 'package.json' };
      const bad = async (req: typeof load) => (await code(client.loadModel(req))).message;
      expect(await bad({ ...readable, ranks: [] })).toMatch(/ranks must give one split per node \(1\)/);
      expect(await bad({ ...readable, ranks: [{ ...split, ff: { lo: 9, hi: 3 } }] })).toMatch(
        /ff.hi must be/,
      );
      expect(await bad({ ...readable, ranks: [{ ...split, vocabPerRank: [1, 2] }] })).toMatch(/vocabPerRank/);
      expect(await bad({ ...readable, firstRank: 1 })).toMatch(/firstRank must be/);
      expect(await bad({ ...readable, ctx: 0 })).toMatch(/ctx must be/);

      const step = {
        tokens: [1],
        pos: 0,
        logits: 'last' as const,
        firstRank: 0,
        world: 1,
        run: 'g1',
        hostFirstRanks: [0, 1],
      };
      const refused = async (req: typeof step) => (await code(client.forward(req))).message;
      expect(await refused({ ...step, logits: 'some' as 'last' })).toMatch(
        /logits must be one of last, all, none/,
      );
      expect(await refused({ ...step, tokens: [] })).toMatch(/tokens must not be empty/);
      expect(await refused({ ...step, tokens: [-1] })).toMatch(/token must be/);
      expect(await refused({ ...step, hostFirstRanks: [0, 2], world: 2 })).toMatch(
        /this host has ranks \[0, 1\)/,
      );
      expect(await refused({ ...step, run: 'no spaces' })).toMatch(/run must be a short name/);
      // Rows of logits (a vocabulary each) beyond a row a slot: refused before anything is sized.
      const runs = [0, 1].map((slot) => ({ slot, pos: 0, count: 40, logits: true, logitRows: 40 }));
      expect(await refused({ ...step, tokens: Array(80).fill(1), runs } as typeof step)).toMatch(
        /a step returns at most 64 rows of logits/,
      );
      // A valid step before any model is loaded: the executor says what to do first.
      await client.stage(64);
      expect(await refused(step)).toMatch(/executor rank 0: .*loadModel first/);
    } finally {
      session.cancel();
      await client.closeSession();
    }
  }, 30_000);
});
