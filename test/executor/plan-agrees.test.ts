// `redblue plan` (this machine) and `redblue run gemm` plan the same box the same way: one
// topology → cluster conversion with one measured rate (planner/machine-cluster.ts).
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

interface PlanJson {
  strategy: { description: string };
  ranks: { rank: number; bricks: { m: number[]; n: number[]; k: number[] }[] }[];
}

describe('plan and run agree', () => {
  for (const nodes of [1, 2, 3]) {
    it(`choose the same grid for gemm 512×384×1024 on ${nodes} (virtual) node(s)`, () => {
      const shape = ['--m', '512', '--n', '384', '--k', '1024', '--virtual-nodes', String(nodes)];
      const planned = runCli(['plan', ...shape, '--json']);
      expect(planned.code, planned.stderr).toBe(0);
      const p = JSON.parse(planned.stdout) as PlanJson;
      expect(p.ranks).toHaveLength(nodes);
      const ran = runCli(['run', 'gemm', ...shape, '--json']);
      expect(ran.code, ran.stderr).toBe(0);
      const r = JSON.parse(ran.stdout) as { plan: string; perRank: { rank: number; bricks: number }[] };
      expect(r.plan).toBe(p.strategy.description);
      expect(r.perRank.map((x) => x.bricks)).toEqual(p.ranks.map((x) => x.bricks.length));
    });
  }

  it('refuses --virtual-nodes beside a cluster that is not this machine', () => {
    const r = runCli(['plan', '--m', '8', '--n', '8', '--k', '8', '--ranks', '2', '--virtual-nodes', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--virtual-nodes splits this machine/);
  });
});
