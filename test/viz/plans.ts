// Real plans from the planner for the visualisation tests.
import { hostsCluster, ranksCluster } from '../../planner/cluster.js';
import { plan } from '../../planner/index.js';
import type { MeasuredRun } from '../../planner/html/types.js';
import type { Plan } from '../../planner/types.js';

const MiB = 2 ** 20;

export const PLANS = {
  /** One rank: nothing moves. */
  one: () => plan({ m: 4096, n: 4096, k: 4096, dtype: 'f32' }, ranksCluster(1)),
  /** Two NUMA nodes of one host. */
  two: () => plan({ m: 4096, n: 8192, k: 2048, dtype: 'bf16' }, hostsCluster(1, 2)),
  /** 12 ranks on 3 hosts, short of memory: hierarchical, with sequential steps. */
  twelve: () =>
    plan({ m: 8192, n: 8192, k: 8192, dtype: 'f32' }, hostsCluster(3, 4), { memoryBytes: 200 * MiB }),
  /** 12 ranks on 3 hosts keeping B resident: too big to mirror, so sharded. */
  twelveStationary: () =>
    plan({ m: 8192, n: 32768, k: 8192, dtype: 'f32' }, hostsCluster(3, 4), {
      stationary: 'B',
      memoryBytes: 600 * MiB,
    }),
  /** 1,000 ranks, one per host (as `--ranks 1000`). */
  thousand: () => plan({ m: 16384, n: 16384, k: 16384, dtype: 'f32' }, ranksCluster(1000)),
  /** 2,048 ranks on 512 hosts: more boxes than the cube draws, so neighbours are merged. */
  merged: () => plan({ m: 16384, n: 16384, k: 16384, dtype: 'f32' }, hostsCluster(512, 4)),
  /** k far longer than m and n: split along k only. */
  longK: () => plan({ m: 64, n: 64, k: 1 << 20, dtype: 'f32' }, hostsCluster(1, 4)),
} satisfies Record<string, () => Plan>;

/** Made-up measurements, 10% and 30% above the prediction, as `redblue run --report` would pass. */
export function measuredFor(p: Plan): MeasuredRun {
  return {
    label: 'test numbers',
    ranks: p.ranks.map((r) => ({
      rank: r.rank,
      compute: r.time.compute * 1.1,
      exchange: r.time.communication * 1.3,
      total: r.time.compute * 1.1 + r.time.communication * 1.3,
    })),
  };
}
