// One LocalCluster for every test of a describe block: started before the first, stopped after
// the last.
import { afterAll, beforeAll } from 'vitest';
import { LocalCluster } from '../../executor/host/local-cluster.js';
import type { MachineTopology } from '../../native/topology.js';

export function sharedCluster(topology: MachineTopology): () => LocalCluster {
  let cluster: LocalCluster | undefined;
  beforeAll(async () => {
    cluster = await LocalCluster.start({ topology });
  });
  afterAll(async () => {
    await cluster?.stop();
  });
  return () => cluster!;
}
