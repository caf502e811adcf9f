// `redblue plan --hostfile FILE`: the planner's cluster as the hosts' executors report it. Starts
// `redblue executor` on every host over SSH, asks each for its topology, and stops them again.
import { randomBytes } from 'node:crypto';
import type { Cluster } from '../../planner/types.js';
import { readHostfile } from '../launch/hostfile.js';
import { RemoteCluster } from './remote-cluster.js';
import { SshLauncher } from '../launch/ssh-launch.js';

export async function clusterFromHostfile(
  file: string,
  overrides: { links?: Partial<Record<keyof Cluster['links'], object>>; node?: { flops?: number } } = {},
): Promise<Cluster> {
  const entries = readHostfile(file);
  const token = randomBytes(24).toString('base64url');
  const launcher = new SshLauncher();
  let rc: RemoteCluster | undefined;
  try {
    const addresses = await launcher.start(entries, { token });
    rc = await RemoteCluster.connect({ addresses, auth: { token }, openSessions: false });
    const c = rc.plannerCluster();
    for (const [cl, l] of Object.entries(overrides.links ?? {}))
      Object.assign(c.links[cl as keyof Cluster['links']], l);
    if (overrides.node?.flops)
      for (const h of c.hosts) for (const n of h.nodes) n.flops = overrides.node.flops;
    return c;
  } finally {
    await rc?.stop();
    await launcher.stop();
  }
}
