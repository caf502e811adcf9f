// `redblue bench transport`: the multi-host transport between two pretend hosts (network
// namespaces on a bridge; root needed), in one run: gRPC stream throughput for 1 MiB and 64 MiB
// blocks against a raw TCP socket between the same namespaces, the same path under TLS against
// it without, small-message round trips against the raw socket's, UCX reads and writes of the
// staging area against ucx_perftest on the same path (and the raw socket), and a gemm and a
// layer stack across 2 hosts against the same on 1 host.
import type { Command } from 'commander';
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeCerts } from './certs.js';
import { createLab, type Lab } from './netns-lab.js';
import { machineInfo, renderReport, result, type BenchReport, type BenchResult } from './report.js';
import type { ClientArgs, PeerResults } from './transport-peer.js';

const log = (s: string) => process.stderr.write(`bench transport: ${s}\n`);
const here = (rel: string) =>
  fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? `../dist/${rel}` : `../${rel}`, import.meta.url));
const CLI = here('cli/main.js');
const PEER = here('bench/transport-peer.js');

export interface TransportBenchOptions {
  sizes: number[];
  totalBytes: number;
  pings: number;
  /** Interleaved rounds of the stream and round-trip cases (each figure the best of them). */
  rounds: number;
  gemm: number;
  repeats: number;
  /** Layer stack (q4_0 n×k, m = 1) on 2 hosts against 1. */
  layer: { n: number; k: number; layers: number; iters: number };
  /** Passes of the 8-layer stack of 4-byte blocks that measures an exchange's latency. */
  exchanges: number;
  /** ucx_perftest's iterations at least, and its warm-up ones (`-w`). */
  perftest: { minIters: number; warmup: number };
}

export const FULL: TransportBenchOptions = {
  sizes: [1 << 20, 64 << 20],
  totalBytes: 512 << 20,
  pings: 2000,
  rounds: 5,
  gemm: 2048,
  repeats: 3,
  layer: { n: 11008, k: 4096, layers: 8, iters: 20 },
  exchanges: 500,
  perftest: { minIters: 20, warmup: 20 },
};
export const QUICK: TransportBenchOptions = {
  // A smoke run: every case at a small and a larger size, not the full run's figures (64 MiB
  // streams were a third of the test suite's 26 s for this bench).
  sizes: [1 << 20, 8 << 20],
  totalBytes: 16 << 20,
  pings: 200,
  rounds: 1,
  gemm: 512,
  repeats: 1,
  layer: { n: 1024, k: 1024, layers: 2, iters: 3 },
  exchanges: 20,
  // A smoke run: 20 warm-up transfers of 64 MiB alone took a second and a half.
  perftest: { minIters: 4, warmup: 2 },
};

/** Spawns in host i and waits for a line matching `ready`. */
function startIn(
  lab: Lab,
  i: number,
  args: string[],
  ready: RegExp,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = lab.spawn(i, process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (ready.test(out)) resolve(p);
    });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
    p.on('exit', (code) =>
      reject(new Error(`${args.slice(0, 3).join(' ')} in host ${i} exited (${code}): ${err}`)),
    );
  });
}

function runIn(
  lab: Lab,
  i: number,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
  command = process.execPath,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = lab.spawn(i, command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
    let killed = false;
    const t = setTimeout(() => {
      killed = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) return resolve(out);
      // The whole command: which case of several alike (hosts, shape) is the one that failed.
      const what = args.slice(1).join(' ').slice(0, 400);
      const how = killed ? `killed after ${timeoutMs / 1e3} s without an answer` : `exit code ${code}`;
      reject(new Error(`${what} in host ${i} failed (${how}): ${err.trim()}`));
    });
  });
}

const mib = (b: number) => `${b >> 20}MiB`;

/**
 * UCX's own benchmark between the same namespaces (host 1 → host 0): `test` (tag_bw, ucp_am_bw,
 * tag_lat) with `size`-byte messages. Returns GB/s for bandwidth tests, and for latency tests the
 * microseconds of a round trip (ucx_perftest reports half of one).
 */
async function ucxPerftest(
  lab: Lab,
  env: NodeJS.ProcessEnv,
  port: number,
  test: string,
  size: number,
  iters: number,
  warmup: number,
): Promise<number> {
  const server = lab.spawn(0, 'ucx_perftest', ['-p', String(port)], { stdio: 'ignore', env });
  try {
    await new Promise((r) => setTimeout(r, 500)); // it prints nothing before a client comes
    const out = await runIn(
      lab,
      1,
      [
        lab.addresses[0]!,
        '-p',
        String(port),
        '-t',
        test,
        '-s',
        String(size),
        '-n',
        String(iters),
        '-w',
        String(warmup),
      ],
      120_000,
      env,
      'ucx_perftest',
    );
    // Final: iters, latency 50%/average/overall (µs), bandwidth average/overall (MB/s), rates.
    const f = /Final:\s+(.*)/.exec(out)?.[1]?.trim().split(/\s+/).map(Number);
    if (!f || f.length < 6 || f.some((x) => !Number.isFinite(x)))
      throw new Error(`ucx_perftest ${test}: no result in ${out}`);
    return test.endsWith('_lat') ? 2 * f[2]! : (f[5]! * 2 ** 20) / 1e9;
  } finally {
    server.kill('SIGKILL');
  }
}

export async function benchTransport(o: TransportBenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const dir = mkdtempSync(join(tmpdir(), 'redblue-bench-transport-'));
  const token = join(dir, 'token');
  writeFileSync(token, `bench-${process.pid}-${Date.now()}-token\n`, { mode: 0o600 });
  const lab = createLab(3);
  const procs: ChildProcess[] = [];
  try {
    const [a0, a1] = [lab.addresses[0]!, lab.addresses[1]!];
    log(`pretend hosts ${a0} and ${a1}, coordinator ${lab.addresses[2]}`);
    // One core per host, so that 2 hosts have twice the cores of 1.
    const exec = (i: number, cpu: number, port = 7070, extra: string[] = [], env = process.env) =>
      startIn(
        lab,
        i,
        [
          CLI,
          'executor',
          '--listen',
          `${lab.addresses[i]}:${port}`,
          '--token-file',
          token,
          '--cpus',
          String(cpu),
          '--virtual-nodes',
          '1',
          ...extra,
        ],
        /ready \d+/,
        env,
      );
    // The same hosts with the leaders exchanging over UCX, on TCP between the namespaces; a second
    // supervisor in host 0 serving with TLS, for the same transfers under TLS; a raw TCP server.
    // Started side by side (one after another they took 2.5 s); each one started is stopped at
    // the end, whichever failed to start.
    const ucxEnv = { ...process.env, UCX_TLS: process.env.UCX_TLS ?? 'tcp' };
    const certs = makeCerts(dir, 'bench');
    const starting = await Promise.allSettled([
      exec(0, 0),
      exec(1, 1),
      exec(0, 0, 7090, ['--transport', 'ucx'], ucxEnv),
      exec(1, 1, 7090, ['--transport', 'ucx'], ucxEnv),
      startIn(
        lab,
        0,
        [
          CLI,
          'executor',
          '--listen',
          `${a0}:7080`,
          ...['--tls-cert', certs.cert, '--tls-key', certs.key, '--tls-ca', certs.ca],
          ...['--cpus', '0', '--virtual-nodes', '1'],
        ],
        /ready \d+/,
      ),
      startIn(lab, 0, [PEER, 'raw-server', `${a0}:7071`], /ready/),
    ]);
    for (const r of starting) if (r.status === 'fulfilled') procs.push(r.value);
    for (const r of starting) if (r.status === 'rejected') throw r.reason;

    log('streams and round trips (gRPC against a raw TCP socket, host 1 → host 0)');
    const args: ClientArgs = {
      grpc: `${a0}:7070`,
      raw: `${a0}:7071`,
      token: readFileSync(token, 'utf8').trim(),
      sizes: o.sizes,
      totalBytes: o.totalBytes,
      pings: o.pings,
      rounds: o.rounds,
      tls: { grpc: `${a0}:7080`, ...certs },
      ucx: `${a0}:7090`,
    };
    const peer = JSON.parse(
      await runIn(lab, 1, [PEER, 'client', JSON.stringify(args)], 300_000, ucxEnv),
    ) as PeerResults;
    const results: BenchResult[] = [];
    for (const size of o.sizes) {
      const k = String(size);
      // The faster of two raw sockets in the same run (Node's and a native one), moving the
      // bytes the same way: pulled from host 0 for reads, pushed to it for writes.
      const rawRead = Math.max(peer.raw[k]!, peer.rawNative[k]!);
      const rawWrite = Math.max(peer.rawPush[k]!, peer.rawNativePush[k]!);
      const rawDetails = (write: boolean) =>
        write
          ? { rawNodeGBps: peer.rawPush[k]!, rawNativeGBps: peer.rawNativePush[k]!, rawDirection: 'push' }
          : { rawNodeGBps: peer.raw[k]!, rawNativeGBps: peer.rawNative[k]!, rawDirection: 'pull' };
      const NATIVE =
        "gRPC C++ core (the Data service's Pipe, the engine's data path), blocks one after another in native code";
      const HOST_CLIENT = 'the same path with a JS call per block (HostClient.read / write)';
      const TLS = 'the same native path to a supervisor serving with TLS (the cluster certificate)';
      const stream = (name: string, value: number, implementation: string) => {
        const write = name.endsWith('_write');
        return result({
          case: `${name}_${mib(size)}`,
          metric: 'throughput',
          value,
          unit: 'GB/s',
          reference: 'raw-tcp',
          referenceValue: write ? rawWrite : rawRead,
          details: { implementation, rounds: o.rounds, ...rawDetails(write) },
        });
      };
      results.push(
        stream('grpc_stream_read', peer.grpcRead[k]!, NATIVE),
        stream('grpc_stream_write', peer.grpcWrite[k]!, NATIVE),
        stream('host_client_read', peer.hostClientRead[k]!, HOST_CLIENT),
        stream('host_client_write', peer.hostClientWrite[k]!, HOST_CLIENT),
        // TLS against the same path without it, measured in the same rounds.
        ...(['read', 'write'] as const).map((dir) =>
          result({
            case: `tls_stream_${dir}_${mib(size)}`,
            metric: 'throughput',
            value: dir === 'read' ? peer.tlsRead[k]! : peer.tlsWrite[k]!,
            unit: 'GB/s',
            reference: 'data-path-without-tls',
            referenceValue: dir === 'read' ? peer.grpcRead[k]! : peer.grpcWrite[k]!,
            details: { implementation: TLS, rounds: o.rounds },
          }),
        ),
      );
      // UCX against UCX's own benchmark on the same path (ucx_perftest, tagged messages for
      // reads, active messages for writes), with the raw socket beside it.
      log(`ucx_perftest ${mib(size)} (tag_bw, ucp_am_bw)`);
      const iters = Math.max(o.perftest.minIters, Math.ceil(o.totalBytes / size));
      for (const [dir, test, mine, raw] of [
        ['read', 'tag_bw', peer.ucxRead?.[k], rawRead],
        ['write', 'ucp_am_bw', peer.ucxWrite?.[k], rawWrite],
      ] as const) {
        if (mine === undefined) throw new Error(`the UCX ${dir} of ${mib(size)} was not measured`);
        // The best of as many runs as our figure's rounds.
        let perftest = 0;
        for (let r = 0; r < o.rounds; r++)
          perftest = Math.max(
            perftest,
            await ucxPerftest(
              lab,
              ucxEnv,
              7300 + 10 * results.length + r,
              test,
              size,
              iters,
              o.perftest.warmup,
            ),
          );
        results.push(
          result({
            case: `ucx_${dir}_${mib(size)}`,
            metric: 'throughput',
            value: mine,
            unit: 'GB/s',
            reference: `ucx_perftest-${test}`,
            referenceValue: perftest,
            details: {
              implementation:
                dir === 'read'
                  ? 'a request (active message) answered by one tagged send from the registered staging area, blocks one after another in native code'
                  : 'an active message received in place into the registered staging area (rendezvous), then acknowledged',
              transport: `UCX_TLS=${ucxEnv.UCX_TLS}`,
              rawTcpGBps: raw,
              ratioToRawTcp: mine / raw,
              rounds: o.rounds,
            },
          }),
        );
      }
    }
    results.push(
      result({
        case: 'data_path_rtt',
        metric: 'latency',
        value: peer.dataPathRttUs,
        unit: 'µs',
        reference: 'raw-tcp-8B',
        referenceValue: peer.rawRttUs,
        direction: 'lower-is-better',
        details: { implementation: 'an 8-byte read on the native data path (Pipe), native loop' },
      }),
      result({
        case: 'ucx_rtt_8B',
        metric: 'latency',
        value: peer.ucxRttUs!,
        unit: 'µs',
        reference: 'raw-tcp-8B',
        referenceValue: peer.rawRttUs,
        direction: 'lower-is-better',
        details: {
          implementation: 'an 8-byte UCX read: the request and its answer (a round trip), native loop',
          transport: `UCX_TLS=${ucxEnv.UCX_TLS}`,
          ucxPerftestTagLatRttUs: await ucxPerftest(
            lab,
            ucxEnv,
            7290,
            'tag_lat',
            8,
            o.pings,
            o.perftest.warmup,
          ),
        },
      }),
      result({
        case: 'grpc_unary_rtt',
        metric: 'latency',
        value: peer.grpcRttUs,
        unit: 'µs',
        reference: 'raw-tcp-8B',
        referenceValue: peer.rawRttUs,
        direction: 'lower-is-better',
        details: { implementation: 'a grpc-js unary call (Host.Hello)' },
      }),
    );

    log(`gemm ${o.gemm}³ f32: 2 hosts × 1 core against 1 host × 1 core`);
    let reduceLink = '';
    let plan = '';
    const allSeconds = new Map<string, number[]>();
    const gemm = async (hosts: string): Promise<number> => {
      let best = Infinity;
      const seen: number[] = [];
      allSeconds.set(hosts, seen);
      for (let r = 0; r < o.repeats; r++) {
        const n = String(o.gemm);
        const out = await runIn(
          lab,
          2,
          [
            CLI,
            'launch',
            '--hosts',
            hosts,
            '--token-file',
            token,
            'gemm',
            '--m',
            n,
            '--n',
            n,
            '--k',
            n,
            '--json',
          ],
          300_000,
        );
        const r = JSON.parse(out) as { seconds: number; reduceLink?: string; plan?: string };
        best = Math.min(best, r.seconds);
        seen.push(Number(r.seconds.toFixed(4)));
        plan = r.plan ?? '';
        reduceLink = r.reduceLink ?? 'none (no k split: no partial C crossed)';
      }
      return best;
    };
    const one = await gemm(`${a0}:7070`);
    const two = await gemm(`${a0}:7070,${a1}:7070`);
    const flop = 2 * o.gemm ** 3;
    results.push(
      result({
        case: `gemm_f32_${o.gemm}_2hosts`,
        metric: 'GFLOP/s',
        value: flop / two / 1e9,
        unit: 'GFLOP/s',
        reference: '1-host',
        referenceValue: flop / one / 1e9,
        details: {
          coresPerHost: 1,
          repeats: o.repeats,
          reduceLink,
          plan,
          seconds: allSeconds.get(`${a0}:7070,${a1}:7070`),
          oneHostSeconds: allSeconds.get(`${a0}:7070`),
        },
      }),
    );
    // The same on the supervisors serving UCX: the cross-host reduction of partial C (when the
    // plan splits k) over UCX; A and B still come from the coordinator over gRPC.
    const twoUcx = await gemm(`${a0}:7090,${a1}:7090`);
    results.push(
      result({
        case: `ucx_gemm_f32_${o.gemm}_2hosts`,
        metric: 'GFLOP/s',
        value: flop / twoUcx / 1e9,
        unit: 'GFLOP/s',
        reference: '1-host',
        referenceValue: flop / one / 1e9,
        details: { coresPerHost: 1, repeats: o.repeats, reduceLink, transport: `UCX_TLS=${ucxEnv.UCX_TLS}` },
      }),
    );

    const { n, k, layers, iters } = o.layer;
    log(`layer stack ${layers} × q4_0 ${n}×${k}, m = 1: 2 hosts × 1 core against 1 host × 1 core`);
    // Best of 3 runs of the placed stack, on 1 host as on 2: the first run also opens the
    // leaders' streams and grows their windows, which a run of 20 passes does not amortize.
    const [REPEATS, ROUNDS] = [3, 2];
    const layer = async (hosts: string, shape = { n, k, layers, iters, repeats: REPEATS }) => {
      const out = await runIn(
        lab,
        2,
        [
          CLI,
          'launch',
          '--hosts',
          hosts,
          '--token-file',
          token,
          'layer',
          ...['--n', String(shape.n), '--k', String(shape.k)],
          ...['--layers', String(shape.layers), '--iters', String(shape.iters)],
          ...['--dtype', 'q4_0', '--placement', 'shard', '--repeats', String(shape.repeats), '--json'],
        ],
        300_000,
      );
      return JSON.parse(out) as {
        passesPerSecond: number;
        exchangeSecondsPerPass: number;
        computeSecondsPerPass: number;
      };
    };
    // The three in turn, ROUNDS times, each the fastest of its rounds: a slow minute on this
    // shared VM then costs each side a round, not one side the whole figure.
    type LayerFigures = Awaited<ReturnType<typeof layer>>;
    const rounds: LayerFigures[][] = [];
    for (let round = 0; round < ROUNDS; round++)
      rounds.push([
        await layer(`${a0}:7070`),
        await layer(`${a0}:7070,${a1}:7070`),
        await layer(`${a0}:7090,${a1}:7090`),
      ]);
    const fastest = (i: number): LayerFigures =>
      rounds.map((r) => r[i]!).reduce((a, b) => (a.passesPerSecond >= b.passesPerSecond ? a : b));
    const [l1, l2, u2] = [fastest(0), fastest(1), fastest(2)];
    results.push(
      result({
        case: `layer_q4_0_${n}x${k}_m1_2hosts`,
        metric: 'passes/s',
        value: l2.passesPerSecond,
        unit: 'passes/s',
        reference: '1-host',
        referenceValue: l1.passesPerSecond,
        details: {
          layers,
          bestOfRuns: REPEATS * ROUNDS, // alternated with 1 host's
          exchangeMsPerPass2Hosts: l2.exchangeSecondsPerPass * 1e3,
          computeMsPerPass2Hosts: l2.computeSecondsPerPass * 1e3,
        },
      }),
    );
    results.push(
      result({
        case: `ucx_layer_q4_0_${n}x${k}_m1_2hosts`,
        metric: 'passes/s',
        value: u2.passesPerSecond,
        unit: 'passes/s',
        reference: '1-host',
        referenceValue: l1.passesPerSecond,
        details: {
          layers,
          transport: `UCX between the leaders (UCX_TLS=${ucxEnv.UCX_TLS})`,
          exchangeMsPerPass2Hosts: u2.exchangeSecondsPerPass * 1e3,
          computeMsPerPass2Hosts: u2.computeSecondsPerPass * 1e3,
          grpcPassesPerSecond2Hosts: l2.passesPerSecond,
        },
      }),
    );
    // Latency: a stack whose layers have one row per host (4-byte blocks) and next to no compute,
    // so that each layer's time is the exchange between the two leaders.
    log('exchanges of 4-byte blocks between the leaders, over gRPC and over UCX');
    const tiny = { n: 2, k: 32, layers: 8, iters: o.exchanges, repeats: 1 };
    for (const [name, hosts, how] of [
      ['grpc_exchange_4B', `${a0}:7070,${a1}:7070`, 'the leaders over the native gRPC link'],
      ['ucx_exchange_4B', `${a0}:7090,${a1}:7090`, `the leaders over UCX (UCX_TLS=${ucxEnv.UCX_TLS})`],
    ] as const) {
      const r = await layer(hosts, tiny);
      results.push(
        result({
          case: name,
          metric: 'latency',
          value: (r.exchangeSecondsPerPass / tiny.layers) * 1e6,
          unit: 'µs',
          reference: 'raw-tcp-8B',
          referenceValue: peer.rawRttUs,
          direction: 'lower-is-better',
          details: {
            implementation: `one all-gather of a layer's 4-byte blocks between 2 hosts, ${how}; reference: an 8-byte ping-pong on a raw socket`,
            exchanges: tiny.layers * tiny.iters,
          },
        }),
      );
    }
    return { benchmark: 'transport', results, machine: machineInfo(), startedAt };
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function registerBenchTransport(bench: Command): void {
  bench
    .command('transport')
    .description(
      'gRPC and UCX between two pretend hosts (network namespaces; root) against raw TCP and ucx_perftest, and gemm and a layer stack on 2 hosts vs 1',
    )
    .option('--quick', 'smaller sizes (a smoke run)')
    .option('--json', 'print results as JSON')
    .action(async (o: { quick?: boolean; json?: boolean }) => {
      const report = await benchTransport(o.quick ? QUICK : FULL);
      process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
    });
}
