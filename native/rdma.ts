// RDMA devices as rdma-core shows them in sysfs (/sys/class/infiniband/DEV/ports/N): what
// `redblue topo` lists and what `--transport auto` looks for before choosing UCX.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RdmaPort {
  port: number;
  /** e.g. "4: ACTIVE". */
  state: string;
  /** "InfiniBand" or "Ethernet" (RoCE). */
  linkLayer: string;
}
export interface RdmaDevice {
  name: string;
  ports: RdmaPort[];
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
};

export function rdmaDevices(root = '/sys/class/infiniband'): RdmaDevice[] {
  let names: string[];
  try {
    names = readdirSync(root).sort();
  } catch {
    return [];
  }
  return names.map((name) => {
    let ports: string[] = [];
    try {
      ports = readdirSync(join(root, name, 'ports'));
    } catch {
      // a device without ports listed
    }
    return {
      name,
      ports: ports
        .map(Number)
        .filter(Number.isInteger)
        .sort((a, b) => a - b)
        .map((port) => ({
          port,
          state: read(join(root, name, 'ports', String(port), 'state')),
          linkLayer: read(join(root, name, 'ports', String(port), 'link_layer')),
        })),
    };
  });
}
