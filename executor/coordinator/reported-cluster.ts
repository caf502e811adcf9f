// `redblue plan --hostfile FILE`: the planner's cluster as the hosts' executors report it. Starts
// `redblue executor` on every host over SSH, asks each for its topology, and stops them again.
import { randomBytes } from 'node:crypto';
import type { Cluster } from '../../planner/types.js';
import type { ClusterOverrides } from '../../planner/cluster.js';
import { readHostfile } from '../launch/hostfile.js';
import { RemoteCluster } from './remote-cluster.js';
import { SshLauncher } from '../launch/ssh-launch.js';

export async function clusterFromHostfile(file: string, overrides: ClusterOverrides = {}): Promise<Cluster> {
  const entries = readHostfile(file);
  const token = randomBytes(24).toString('base64url');
  const launcher = new SshLauncher();
  let rc: RemoteCluster | undefined;
  try {
    const addresses = await launcher.start(entries, { token });
    rc = await RemoteCluster.connect({ addresses, auth: { token }, openSessions: false });
    return rc.plannerCluster(overrides);
  } finally {
    await rc?.stop();
    await launcher.stop();
  }
}
