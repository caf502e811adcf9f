// A supervisor (host) on loopback for tests that talk to it directly: one virtual node, a token.
import { Supervisor } from '../../executor/host/supervisor.js';
import { readTopology } from '../../native/topology.js';

/** Starts it on a free port; `address` is host:port. */
export async function startLoopbackSupervisor(token: string): Promise<{ sup: Supervisor; address: string }> {
  const sup = new Supervisor({
    listen: '127.0.0.1:0',
    topology: readTopology({ virtualNodes: 1 }),
    auth: { token },
  });
  return { sup, address: `127.0.0.1:${await sup.start()}` };
}
