// The exchange between host leaders over UCX, between pretend hosts (network namespaces) with
// UCX_TLS=tcp: the same Y as over gRPC and as one box, UCX carrying the blocks (the leaders'
// reports count what they sent over it), `auto` choosing gRPC where no RDMA device exists and
// saying so, and a peer killed mid-run failing the run within seconds, naming the host.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../bench/netns-lab.js';
import { readNpyMatrix } from '../../executor/coordinator/npy.js';
import { rdmaDevices } from '../../native/rdma.js';
import {
  childrenOf,
  cliIn,
  eventually,
  oneCoreArgs,
  saidAt,
  shmOf,
  startExecutor,
  type Started,
} from './lab-helpers.js';
import { repoRoot } from '../helpers/cli.js';
import type { UcxCheckArgs, UcxCheckResult } from '../../bench/transport-peer.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-ucx-'));
const token = join(dir, 'token');
writeFileSync(token, 'ucx-between-leaders-token-0123\n', { mode: 0o600 });
const COORD = 2;
let lab: Lab;
const ucx: Started[] = [];
const auto: Started[] = [];

beforeAll(async () => {
  lab = createLab(3);
  const env = { ...process.env, UCX_TLS: 'tcp' };
  const [u0, u1, a0, a1] = await Promise.all([
    ...[0, 1].map((i) =>
      startExecutor(
        lab,
        i,
        [...oneCoreArgs(lab, i, 7070, token), '--transport', 'ucx'],
        20_000,
        undefined,
        env,
      ),
    ),
    ...[0, 1].map((i) => startExecutor(lab, i, oneCoreArgs(lab, i, 7071, token))),
  ]);
  ucx.push(u0!, u1!);
  auto.push(a0!, a1!);
}, 60_000);

afterAll(() => {
  for (const s of [...ucx, ...auto]) s.proc.kill('SIGKILL');
  lab?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const hostsAt = (port: number) => `${lab.addresses[0]}:${port},${lab.addresses[1]}:${port}`;
/** A layer stack over UCX that would run for many minutes: it ends only if something fails. */
const endlessRun = () =>
  cliIn(
    lab,
    COORD,
    [
      'launch',
      '--hosts',
      hostsAt(7070),
      '--token-file',
      token,
      'layer',
      ...['--n', '4096', '--k', '4096', '--layers', '4', '--iters', '100000'],
    ],
    60_000,
  );
/** transport-peer's exact-bytes check, run from the coordinator's namespace over UCX. */
async function ucxCheck(args: UcxCheckArgs): Promise<{ code: number | null; out: string; err: string }> {
  const peer = lab.spawn(
    COORD,
    process.execPath,
    [join(repoRoot, 'dist/bench/transport-peer.js'), 'ucx-check', JSON.stringify(args)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UCX_TLS: 'tcp' } },
  );
  let out = '';
  let err = '';
  peer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  peer.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => peer.on('exit', r));
  return { code, out, err };
}
const shape = { n: 50, k: 64, m: 3, layers: 2, iters: 2 };
const layerArgs = (hosts: string, out: string) => [
  'launch',
  '--hosts',
  hosts,
  '--token-file',
  token,
  'layer',
  ...['--n', String(shape.n), '--k', String(shape.k), '--m', String(shape.m)],
  ...['--layers', String(shape.layers), '--iters', String(shape.iters), '--dtype', 'q8_0'],
  ...['--placement', 'shard', '--out', out, '--json'],
];

describe('UCX between host leaders', () => {
  it('auto chooses as the RDMA devices say, and says why', async () => {
    const expected = rdmaDevices().length
      ? /leaders exchange over ucx \(auto: RDMA device/
      : /leaders exchange over grpc \(auto: no RDMA device/;
    // The line follows "ready PORT" on stderr.
    const said = (s: Started, re: RegExp) => eventually(() => re.test(s.stderr()), 5000);
    for (const s of auto) expect(await said(s, expected)).toBe(true);
    for (const s of ucx) expect(await said(s, /leaders exchange over ucx \(--transport ucx\)/)).toBe(true);
  });

  it('gives the Y of gRPC and of one box, with UCX carrying the blocks', async () => {
    const runs: { link: string[]; sent: number[]; y: Float32Array }[] = [];
    for (const [port, name] of [
      [7070, 'ucx'],
      [7071, 'grpc'],
    ] as const) {
      const out = join(dir, `Y-${name}.npy`);
      const r = await cliIn(lab, COORD, layerArgs(hostsAt(port), out));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const json = JSON.parse(r.stdout) as {
        perRank: { link?: string; linkBytesSent?: number; rows: number[] }[];
      };
      runs.push({
        link: json.perRank.map((p) => p.link ?? ''),
        sent: json.perRank.map((p) => p.linkBytesSent ?? 0),
        y: readNpyMatrix(out).data,
      });
    }
    const [overUcx, overGrpc] = runs;
    expect(overUcx!.link).toEqual(['ucx', 'ucx']);
    expect(overGrpc!.link).toEqual(['grpc', 'grpc']);
    // Each leader sent its rows of every layer's output, every pass, over UCX: 25 rows × m f32.
    const perLeader = shape.layers * shape.iters * (shape.n / 2) * shape.m * 4;
    expect(overUcx!.sent).toEqual([perLeader, perLeader]);
    expect(overGrpc!.sent).toEqual([0, 0]);
    // An all-gather moves bits: the same Y to the bit over either transport.
    expect(Array.from(overUcx!.y)).toEqual(Array.from(overGrpc!.y));
    // And one box of 2 executors gives it too.
    const box = join(dir, 'Y-box.npy');
    const one = await cliIn(lab, COORD, [
      'run',
      'layer',
      '--virtual-nodes',
      '2',
      ...['--n', String(shape.n), '--k', String(shape.k), '--m', String(shape.m)],
      ...['--layers', String(shape.layers), '--iters', String(shape.iters), '--dtype', 'q8_0'],
      ...['--placement', 'shard', '--out', box, '--json'],
    ]);
    expect(one.code).toBe(0);
    expect(Array.from(readNpyMatrix(box).data)).toEqual(Array.from(overUcx!.y));
  }, 60_000);

  it('reduces gemm partials over UCX: C bit-identical to gRPC, UCX carrying the bytes', async () => {
    const cs: Float32Array[] = [];
    for (const [port, name] of [
      [7070, 'ucx'],
      [7071, 'grpc'],
    ] as const) {
      const out = join(dir, `C-${name}.npy`);
      const r = await cliIn(lab, COORD, [
        'launch',
        '--hosts',
        hostsAt(port),
        '--token-file',
        token,
        'gemm',
        // Thin C, long k: the planner splits k across the hosts, so partial C crosses.
        ...['--m', '33', '--n', '29', '--k', '20011', '--seed', '7', '--out', out, '--json'],
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const json = JSON.parse(r.stdout) as { reduceLink?: string; reduceBytes: number };
      expect(json.reduceLink).toBe(name);
      expect(json.reduceBytes).toBeGreaterThan(0);
      cs.push(readNpyMatrix(out).data);
    }
    expect(cs[0]!.length).toBe(33 * 29);
    expect(Buffer.from(cs[0]!.buffer).equals(Buffer.from(cs[1]!.buffer))).toBe(true);
  }, 60_000);

  it('refuses a wrong token before any UCX address or area is handed out', async () => {
    const wrong = join(dir, 'wrong-token');
    writeFileSync(wrong, 'not-the-cluster-token-0123456789\n', { mode: 0o600 });
    const r = await cliIn(lab, COORD, [
      'launch',
      '--hosts',
      hostsAt(7070),
      '--token-file',
      wrong,
      'gemm',
      ...['--m', '33', '--n', '29', '--k', '20011'],
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/host \d \(10\.213\.\d+\.\d:7070\): unauthenticated/);
    // And the exact-bytes peer, with the wrong token, gets no area descriptor.
    const args: UcxCheckArgs = {
      address: `${lab.addresses[0]}:7070`,
      token: 'not-the-cluster-token-0123456789',
      sizes: [1],
      offsets: [0],
    };
    const refused = await ucxCheck(args);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/unauthenticated: missing or wrong token/);
  }, 30_000);

  it('moves exact bytes over UCX, from 0 to 16 MiB + 1, at odd offsets', async () => {
    // 16 MiB + 1: four 4 MiB bounce chunks round the three buffers and one byte more, sixteen
    // 1 MiB pieces through a depth of four (native/src/ucx/ucx_rma.cc); 64 MiB took 6 s more.
    const sizes = [0, 1, 7, 4095, 4097, 65_537, (1 << 20) + 3, (16 << 20) + 1];
    const offsets = [0, 1, 4099];
    const args: UcxCheckArgs = {
      address: `${lab.addresses[0]}:7070`,
      token: readFileSync(token, 'utf8').trim(),
      sizes,
      offsets,
    };
    // From the coordinator's namespace: the supervisor of host 0 stages an area and exposes it.
    const { code, out, err } = await ucxCheck(args);
    expect(err).toBe('');
    expect(code).toBe(0);
    const r = JSON.parse(out) as UcxCheckResult;
    expect(r.mismatches).toEqual([]);
    expect(r.checked).toBe(2 * sizes.length * offsets.length);
    // Every byte went over UCX (the peer's own count of what it moved by UCX).
    expect(r.ucxBytes).toBe(r.bytes);
    expect(r.bytes).toBe(2 * offsets.length * sizes.reduce((a, b) => a + b, 0));
  }, 120_000);

  it('fails within seconds, naming the host, when a peer leader is killed mid-run', async () => {
    const sup = ucx.map((s) => s.proc.pid!);
    const run = endlessRun();
    expect(await eventually(() => childrenOf(sup[1]!).length > 0, 20_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    const killedAt = Date.now();
    for (const pid of childrenOf(sup[1]!)) process.kill(pid, 'SIGKILL');
    const r = await run;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/host 1 \(10\.213\.\d+\.2:7070\)/);
    // 100000 passes would take many minutes: the run ended because the peer was lost.
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // Host 0 stops its executors once the coordinator ends its session.
    expect(await eventually(() => childrenOf(sup[0]!).length === 0, 15_000)).toBe(true);
  }, 60_000);

  it('UCX failing at a Stage: a clear error naming the host and the fix, nothing left in /dev/shm, the host still serving', async () => {
    // A device UCX cannot use: its worker cannot start, so the area cannot be registered.
    const broken = await startExecutor(
      lab,
      0,
      [...oneCoreArgs(lab, 0, 7072, token), '--transport', 'ucx'],
      20_000,
      undefined,
      { ...process.env, UCX_TLS: 'tcp', UCX_NET_DEVICES: 'no-such-device' },
    );
    try {
      for (let attempt = 0; attempt < 1; attempt++) {
        const r = await cliIn(lab, COORD, [
          'launch',
          '--hosts',
          `${lab.addresses[0]}:7072`,
          '--token-file',
          token,
          'gemm',
          ...['--m', '8', '--n', '8', '--k', '8'],
        ]);
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(
          /host 0 \(10\.213\.\d+\.1:7072\): .*--transport ucx: UCX \(ucp_init\): No such device/,
        );
        expect(r.stderr).toMatch(/UCX_NET_DEVICES=no-such-device.*ucx_info -d/);
      }
      expect(broken.proc.exitCode).toBeNull(); // still serving
      const pid = broken.proc.pid!;
      expect(await eventually(() => shmOf([pid]).length === 0 && childrenOf(pid).length === 0, 10_000)).toBe(
        true,
      );
    } finally {
      broken.proc.kill('SIGKILL');
    }
  }, 60_000);

  // Last: host 1's link stays down.
  it('fails within seconds, naming the host, when a link goes down mid-run, and leaves nothing behind', async () => {
    const sup = ucx.map((s) => s.proc.pid!);
    const run = endlessRun();
    expect(await eventually(() => childrenOf(sup[1]!).length > 0, 20_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    const downAt = Date.now();
    lab.linkDown(1);
    const r = await run;
    const exitMs = Date.now() - downAt;
    expect(r.code).not.toBe(0);
    const hostNamed = /host 1 \(10\.213\.\d+\.2:7070\)/;
    expect(r.stderr).toMatch(hostNamed);
    // Said once, as it happened, not again at exit.
    expect(r.stderr.match(/redblue: host 1 /g)?.length).toBe(1);
    // The coordinator's keepalives (every 0.5 s, answered within 1 s) notice the link, not the
    // UCX exchange (whose timeout is minutes), and the error is printed at once; then host 0's
    // session is ended (its executor, stuck in that exchange, ends it when told to stop; up to
    // 3 s). Measured here: the error 1.4-1.6 s after the link went down, the exit 1.5-1.9 s; the
    // bounds leave room for a loaded machine (a run beside the whole suite took 4.9 s to exit).
    const saidMs = saidAt(r, hostNamed)! - downAt;
    expect(saidMs).toBeLessThan(3_000);
    expect(exitMs).toBeLessThan(8_000);
    // Both hosts stop their executors (host 1 when its keepalives to the coordinator fail) and
    // free their shared memory, the registered staging areas included.
    expect(await eventually(() => sup.every((p) => childrenOf(p).length === 0), 15_000)).toBe(true);
    expect(await eventually(() => shmOf(sup).length === 0, 5000)).toBe(true);
  }, 60_000);
});
