// The per-layer exchange between host leaders runs natively, leader executor to leader executor
// (supervisors have no way left to relay a block): two supervisors (`redblue executor` on
// loopback, each with its own node executors) serve a layer stack launched across both, with a
// token and again under TLS (the leaders' link then uses the cluster certificate too); both give
// the Y of one box, and both sessions end cleanly.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../executor/host/local-cluster.js';
import { runLayers } from '../../executor/coordinator/layer-run.js';
import { readNpyMatrix } from '../../executor/coordinator/npy.js';
import { readTopology } from '../../native/topology.js';
import { cliPath, repoRoot } from '../helpers/cli.js';
import { maxAbsDiff } from '../helpers/reference.js';
import { makeCerts } from './lab-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-leaders-'));
const token = join(dir, 'token');
writeFileSync(token, 'leader-exchange-test-token-0123\n', { mode: 0o600 });
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Host {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
  exited: Promise<unknown>;
}

/** `redblue executor` on loopback; resolves once it prints "ready PORT". */
function startHost(args: string[]): Promise<Host> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [cliPath, 'executor', '--listen', '127.0.0.1:0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: repoRoot,
    });
    procs.push(proc);
    const exited = new Promise((r) => proc.on('exit', r));
    let err = '';
    let out = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]), stderr: () => err, exited });
    });
    void exited.then(() => reject(new Error(`executor exited: ${err}`)));
  });
}

/** Runs the CLI (asynchronously: the hosts' output keeps flowing meanwhile). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cliPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: repoRoot,
    });
    procs.push(p);
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const shape = ['--n', '50', '--k', '64', '--m', '3', '--layers', '4', '--iters', '3', '--dtype', 'q8_0'];

/** The stack on two loopback hosts (2 nodes and 1): its Y. */
async function acrossHosts(auth: string[], name: string): Promise<{ y: Float32Array }> {
  const hosts = await Promise.all([
    startHost(['--virtual-nodes', '2', ...auth]),
    startHost(['--virtual-nodes', '1', ...auth]),
  ]);
  try {
    const out = join(dir, `Y-${name}.npy`);
    const r = await cli([
      'launch',
      '--hosts',
      hosts.map((h) => `127.0.0.1:${h.port}`).join(','),
      ...auth,
      'layer',
      ...shape,
      '--placement',
      'shard',
      '--out',
      out,
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const h of hosts) h.proc.kill('SIGTERM');
    await Promise.all(hosts.map((h) => h.exited));
    for (const h of hosts) expect(h.stderr()).toMatch(/session \S+: ending \(closed by the coordinator\)/);
    return { y: readNpyMatrix(out).data };
  } finally {
    for (const h of hosts) h.proc.kill('SIGKILL');
  }
}

describe('the exchange between host leaders', () => {
  it('runs natively with a token and under TLS, and gives the Y of one box', async () => {
    const native = await acrossHosts(['--token-file', token], 'native');
    const c = makeCerts(dir, 'leaders');
    const tls = await acrossHosts(['--tls-cert', c.cert, '--tls-key', c.key, '--tls-ca', c.ca], 'tls');

    const cluster = await LocalCluster.start({ topology: readTopology({ virtualNodes: 3 }) });
    try {
      const box = await runLayers(cluster, {
        dtype: 'q8_0',
        n: 50,
        k: 64,
        m: 3,
        layers: 4,
        iters: 3,
        seed: 1,
        placement: ['shard', 'shard', 'shard'],
        collect: true,
      });
      expect(native.y.length).toBe(4 * 3 * 50);
      expect(maxAbsDiff(native.y, box.y!)).toBeLessThan(1e-5);
      expect(maxAbsDiff(tls.y, box.y!)).toBeLessThan(1e-5);
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});
