// `redblue bench transport --quick --json` end to end: two pretend hosts (network namespaces; the
// tests run as root), a real supervisor in each, the native data path and grpc-js measured
// against raw TCP sockets that move the bytes the same way, and everything removed afterwards.
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { BenchReport } from '../../bench/report.js';
import { QUICK } from '../../bench/transport.js';
import { listAreas } from '../../transport/shared-area.js';
import { cliPath, repoRoot } from '../helpers/cli.js';

const labs = () =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('rblab'));

const SIZES = QUICK.sizes.map((b) => `${b >> 20}MiB`);

describe('redblue bench transport', () => {
  it('--quick --json reports every case against its reference, and leaves nothing behind', () => {
    const before = labs().length;
    const run = spawnSync(process.execPath, [cliPath, 'bench', 'transport', '--quick', '--json'], {
      encoding: 'utf8',
      timeout: 180_000,
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as BenchReport;
    expect(report.benchmark).toBe('transport');
    const byCase = new Map(report.results.map((r) => [r.case, r]));
    for (const size of SIZES) {
      for (const path of ['grpc_stream', 'host_client']) {
        for (const op of ['read', 'write']) {
          const r = byCase.get(`${path}_${op}_${size}`);
          expect(r, `${path}_${op}_${size}`).toBeDefined();
          expect(r!.unit).toBe('GB/s');
          expect(r!.value).toBeGreaterThan(0);
          expect(r!.referenceValue).toBeGreaterThan(0);
          expect(r!.reference).toBe('raw-tcp');
          // a read is measured against a raw socket pulling, a write against one pushing
          expect(r!.details!.rawDirection).toBe(op === 'read' ? 'pull' : 'push');
          expect(r!.referenceValue).toBe(
            Math.max(r!.details!.rawNodeGBps as number, r!.details!.rawNativeGBps as number),
          );
        }
      }
    }
    // the same path under TLS, against itself without TLS in the same rounds
    for (const size of SIZES)
      for (const op of ['read', 'write']) {
        const r = byCase.get(`tls_stream_${op}_${size}`);
        expect(r, `tls_stream_${op}_${size}`).toBeDefined();
        expect(r!.value).toBeGreaterThan(0);
        expect(r!.reference).toBe('data-path-without-tls');
        expect(r!.referenceValue).toBe(byCase.get(`grpc_stream_${op}_${size}`)!.value);
      }
    // UCX reads and writes of a supervisor's area, against ucx_perftest on the same path, with
    // the raw socket of the same run beside it
    for (const size of SIZES)
      for (const [op, test, raw] of [
        ['read', 'tag_bw', 'grpc_stream_read'],
        ['write', 'ucp_am_bw', 'grpc_stream_write'],
      ] as const) {
        const r = byCase.get(`ucx_${op}_${size}`);
        expect(r, `ucx_${op}_${size}`).toBeDefined();
        expect(r!.unit).toBe('GB/s');
        expect(r!.value).toBeGreaterThan(0);
        expect(r!.reference).toBe(`ucx_perftest-${test}`);
        expect(r!.referenceValue).toBeGreaterThan(0);
        expect(r!.details!.rawTcpGBps).toBe(byCase.get(`${raw}_${size}`)!.referenceValue);
      }
    for (const rtt of ['data_path_rtt', 'grpc_unary_rtt', 'ucx_rtt_8B']) {
      const r = byCase.get(rtt)!;
      expect(r.unit).toBe('µs');
      expect(r.value).toBeGreaterThan(0);
      expect(r.ratio).toBeCloseTo(r.referenceValue / r.value); // lower is better
    }
    expect(byCase.get('gemm_f32_512_2hosts')!.value).toBeGreaterThan(0);
    expect(byCase.get('ucx_gemm_f32_512_2hosts')!.value).toBeGreaterThan(0);
    expect(byCase.get('ucx_rtt_8B')!.details!.ucxPerftestTagLatRttUs).toBeGreaterThan(0);
    // the layer stack with the leaders over UCX, against one host
    const ucxLayer = byCase.get('ucx_layer_q4_0_1024x1024_m1_2hosts')!;
    expect(ucxLayer.value).toBeGreaterThan(0);
    expect(ucxLayer.reference).toBe('1-host');
    expect(ucxLayer.referenceValue).toBe(byCase.get('layer_q4_0_1024x1024_m1_2hosts')!.referenceValue);
    // an exchange's latency over either link, against the raw socket's round trip of the same run
    for (const name of ['grpc_exchange_4B', 'ucx_exchange_4B']) {
      const r = byCase.get(name)!;
      expect(r.unit).toBe('µs');
      expect(r.value).toBeGreaterThan(0);
      expect(r.referenceValue).toBe(byCase.get('data_path_rtt')!.referenceValue);
      expect(r.ratio).toBeCloseTo(r.referenceValue / r.value);
    }
    // the pretend hosts and the runs' staging files are gone
    expect(labs().length).toBe(before);
    expect(listAreas()).toEqual([]);
  }, 200_000);
});
