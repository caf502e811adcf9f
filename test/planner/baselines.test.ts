// Against flat COSMA and the other baselines, under the same cost model.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cosmaGrid, cosmaSteps } from '../../planner/baselines/cosma.js';
import { minFootprint } from '../../planner/bounds.js';
import { ranksCluster } from '../../planner/cluster.js';
import { plan } from '../../planner/index.js';

const cube = (P: number) =>
  plan({ m: 16384, n: 16384, k: 16384, dtype: 'f32' }, ranksCluster(P), { objective: 'volume' });

describe('flat COSMA as cosma.md describes it', () => {
  it('reproduces the re-simulated grids for m = n = k = 16384', () => {
    expect(cosmaGrid(16384, 16384, 16384, 65)).toEqual([1, 5, 13]);
    expect(cosmaGrid(16384, 16384, 16384, 67)).toEqual([1, 1, 67]);
    expect(cosmaGrid(16384, 16384, 16384, 9217)).toEqual([1, 13, 81]);
    expect(cosmaSteps(16384, 16384, 16384, [2, 2, 2])).toBe('pm2,pn2,pk2');
  });
});

describe('the plan against flat COSMA', () => {
  it('never moves more per rank than COSMA where COSMA keeps compute balanced', () => {
    let compared = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 200, max: 20000 }),
        fc.integer({ min: 200, max: 20000 }),
        fc.integer({ min: 200, max: 20000 }),
        fc.integer({ min: 2, max: 300 }),
        (m, n, k, P) => {
          const p = plan({ m, n, k, dtype: 'f32' }, ranksCluster(P), { objective: 'volume' });
          const c = p.baselines['COSMA']!;
          expect(p.compute.imbalance).toBeLessThanOrEqual(0.03 + 1e-9);
          if (c.imbalance <= 0.03) {
            compared++;
            expect(p.volume.maxPerRank).toBeLessThanOrEqual(c.volume.maxPerRank);
          } else {
            // COSMA idled ranks: its busiest rank computes more than ours, by its imbalance.
            expect(c.imbalance).toBeGreaterThan(p.compute.imbalance);
          }
        },
      ),
      { numRuns: 60, seed: 2024 },
    );
    expect(compared).toBeGreaterThan(10);
  });

  it('is far better for awkward P (primes, 2^a + 1)', () => {
    const p65 = cube(65);
    const p67 = cube(67);
    const p257 = cube(257);
    expect(p65.strategy.levels[0]!.grid).toEqual([4, 4, 4]);
    expect(p65.baselines['COSMA']!.ratioToPlan!).toBeGreaterThan(1.5);
    expect(p67.baselines['COSMA']!.ratioToPlan!).toBeGreaterThan(5);
    expect(p257.baselines['COSMA']!.ratioToPlan!).toBeGreaterThan(1.5);
    for (const p of [p65, p67, p257]) {
      expect(p.compute.imbalance).toBeLessThanOrEqual(0.03);
      expect(p.ratioToLowerBound!).toBeLessThan(1.1);
    }
  });
});

describe('baselines and bounds', () => {
  it('computes every baseline, with CARMA only for powers of two', () => {
    const p = cube(64);
    expect(Object.keys(p.baselines).sort()).toEqual([
      '1D-k',
      '1D-m',
      '1D-n',
      '2.5D',
      '2D-SUMMA',
      'CARMA',
      'COSMA',
    ]);
    expect(p.baselines['CARMA']!.applicable).toBe(true);
    expect(cube(63).baselines['CARMA']!.applicable).toBe(false);
    // 4×4×4 is the optimum for a cube on 64 ranks: the plan meets the memory-independent bound.
    expect(p.volume.maxPerRank).toBeCloseTo(p.lowerBound.memoryIndependent, -2);
    for (const b of Object.values(p.baselines))
      if (b.applicable) expect(b.volume.maxPerRank).toBeGreaterThanOrEqual(p.volume.maxPerRank);
    expect(p.baselines['1D-m']!.volume.maxPerRank).toBeGreaterThan(
      p.baselines['2D-SUMMA']!.volume.maxPerRank,
    );
  });

  it('uses the skinny-shape bound when the cube does not fit', () => {
    expect(minFootprint(1000, 10, 10, 10)).toBeCloseTo(300);
    // m = 1: the best brick is 1 × s × s
    expect(minFootprint(100, 1, 1000, 1000)).toBeCloseTo(2 * 10 + 100);
    const p = plan({ m: 1, n: 4096, k: 1_000_000, dtype: 'f32' }, ranksCluster(16), { objective: 'volume' });
    expect(p.ratioToLowerBound!).toBeGreaterThanOrEqual(1 - 1e-9);
  });
});
