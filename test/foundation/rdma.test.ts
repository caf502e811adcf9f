// RDMA devices read from a sysfs-shaped tree (rdma-core's /sys/class/infiniband): names, ports,
// state and link layer; none when the class is missing, as on this VM.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rdmaDevices } from '../../native/rdma.js';
import { chooseTransport } from '../../executor/host/options.js';

describe('RDMA devices', () => {
  it('lists each device with its ports, state and link layer', () => {
    const root = mkdtempSync(join(tmpdir(), 'redblue-ib-'));
    try {
      const port = (dev: string, n: number, state: string, layer: string) => {
        const p = join(root, dev, 'ports', String(n));
        mkdirSync(p, { recursive: true });
        writeFileSync(join(p, 'state'), `${state}\n`);
        writeFileSync(join(p, 'link_layer'), `${layer}\n`);
      };
      port('mlx5_1', 1, '1: DOWN', 'Ethernet');
      port('mlx5_0', 2, '4: ACTIVE', 'InfiniBand');
      port('mlx5_0', 1, '4: ACTIVE', 'InfiniBand');
      expect(rdmaDevices(root)).toEqual([
        {
          name: 'mlx5_0',
          ports: [
            { port: 1, state: '4: ACTIVE', linkLayer: 'InfiniBand' },
            { port: 2, state: '4: ACTIVE', linkLayer: 'InfiniBand' },
          ],
        },
        { name: 'mlx5_1', ports: [{ port: 1, state: '1: DOWN', linkLayer: 'Ethernet' }] },
      ]);
      expect(rdmaDevices(join(root, 'missing'))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('--transport auto picks UCX only with a device; an explicit choice stands', () => {
    const auto = chooseTransport('auto');
    if (rdmaDevices().length) expect(auto.transport).toBe('ucx');
    else
      expect(auto).toEqual({
        transport: 'grpc',
        reason: 'auto: no RDMA device (/sys/class/infiniband is empty)',
      });
    expect(chooseTransport('ucx')).toEqual({ transport: 'ucx', reason: '--transport ucx' });
    expect(chooseTransport('grpc').transport).toBe('grpc');
  });
});
