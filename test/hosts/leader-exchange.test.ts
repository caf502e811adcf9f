// The per-layer exchange between host leaders runs natively, leader executor to leader executor:
// two supervisors (two pretend hosts on loopback, with their own node executors) run a layer
// stack across both, and neither supervisor relays a single block through its JS (the leader
// link, Host.Fetch). The same run under TLS, which still goes through the supervisors, shows
// that the count is real; both give the Y of one box.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../executor/host/supervisor.js';
import { LocalCluster } from '../../executor/host/local-cluster.js';
import { RemoteCluster } from '../../executor/coordinator/remote-cluster.js';
import { runRemoteLayers } from '../../executor/coordinator/remote-layer.js';
import { runLayers } from '../../executor/coordinator/layer-run.js';
import { readTopology } from '../../native/topology.js';
import type { Auth } from '../../transport/grpc-data.js';
import { maxAbsDiff } from '../helpers/reference.js';
import { makeCerts } from './lab-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-leaders-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const shape = { dtype: 'q8_0' as const, n: 50, k: 64, m: 3, layers: 4, iters: 3, seed: 1 };

/** Runs the stack on two loopback hosts (2 nodes and 1): Y, and each supervisor's relay count. */
async function acrossHosts(auth: Auth): Promise<{ y: Float32Array; relayed: number[] }> {
  const sups = [2, 1].map(
    (nodes) =>
      new Supervisor({ listen: '127.0.0.1:0', topology: readTopology({ virtualNodes: nodes }), auth }),
  );
  let rc: RemoteCluster | undefined;
  try {
    const ports = await Promise.all(sups.map((s) => s.start()));
    rc = await RemoteCluster.connect({ addresses: ports.map((p) => `127.0.0.1:${p}`), auth });
    const r = await runRemoteLayers(rc, { ...shape, placement: ['shard', 'shard', 'shard'], collect: true });
    return { y: r.y!, relayed: sups.map((s) => s.relayedExchanges) };
  } finally {
    await rc?.stop();
    await Promise.all(sups.map((s) => s.stop()));
  }
}

describe('the exchange between host leaders', () => {
  it('never passes through a supervisor on the native path, and gives the Y of one box', async () => {
    const native = await acrossHosts({ token: 'leader-exchange-test-token-0123' });
    expect(native.relayed).toEqual([0, 0]);

    const certs = makeCerts(dir, 'leaders');
    const tls = await acrossHosts({
      tls: { cert: readFileSync(certs.cert), key: readFileSync(certs.key), ca: readFileSync(certs.ca) },
    });
    // TLS runs still hand every layer's block to the supervisor (4 layers × 3 passes, at least).
    for (const r of tls.relayed) expect(r).toBeGreaterThanOrEqual(shape.layers * shape.iters);

    const cluster = await LocalCluster.start({ topology: readTopology({ virtualNodes: 3 }) });
    try {
      const box = await runLayers(cluster, {
        ...shape,
        placement: ['shard', 'shard', 'shard'],
        collect: true,
      });
      expect(native.y.length).toBe(shape.layers * shape.m * shape.n);
      expect(maxAbsDiff(native.y, box.y!)).toBeLessThan(1e-5);
      expect(maxAbsDiff(tls.y, box.y!)).toBeLessThan(1e-5);
    } finally {
      await cluster.stop();
    }
  }, 120_000);
});
