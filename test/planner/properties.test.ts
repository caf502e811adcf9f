// Property tests over random shapes and rank counts: every plan is checked by an independent
// recomputation (check.ts): bricks partition the iteration space, the schedule delivers exactly the
// data each chunk needs and reduces every partial C once, volumes match, memory fits.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostsCluster, ranksCluster } from '../../planner/cluster.js';
import { buildTransfers, plan, PlanInputError, type DType, type Plan } from '../../planner/index.js';
import { checkPlan } from './check.js';

const PRIMES = [
  2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];
const dim = fc.oneof(
  { weight: 1, arbitrary: fc.constant(1) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 60 }) },
  { weight: 3, arbitrary: fc.integer({ min: 61, max: 5000 }) },
  { weight: 1, arbitrary: fc.constant(1_000_000) },
);
const ranks = fc.oneof(
  fc.constant(1),
  fc.constantFrom(...PRIMES),
  fc.constantFrom(3, 5, 9, 17, 33, 65),
  fc.integer({ min: 1, max: 80 }),
);
const dtype = fc.constantFrom<DType>('f32', 'bf16', 'f16', 'q8_0', 'q4_0');

function planAndCheck(p: Plan): void {
  expect(p.schedule.omitted).toBe(false);
  checkPlan(p, p.schedule.transfers);
}

describe('planner properties', () => {
  it('plans are exact on random shapes, rank counts and dtypes', () => {
    fc.assert(
      fc.property(
        dim,
        dim,
        dim,
        ranks,
        dtype,
        fc.constantFrom<'volume' | 'time'>('volume', 'time'),
        (m, n, k, P, dt, objective) => {
          const p = plan({ m, n, k, dtype: dt }, ranksCluster(P), {
            objective,
            maxScheduleTransfers: 1e7,
            baselines: false,
          });
          planAndCheck(p);
          // Compute balance within ε whenever each rank has a meaningful amount of work.
          const work = (m * n * k) / P;
          const gran = p.dtype.blockK;
          if (work >= 1e6 && Math.min(...[m, n, Math.ceil(k / gran)].filter((d) => d > 1)) >= 4 * P)
            expect(p.compute.imbalance).toBeLessThanOrEqual(0.03 + 1e-9);
          expect(p.compute.imbalance).toBeLessThan(Math.max(1, P)); // never worse than one rank doing it all
        },
      ),
      { numRuns: 120, seed: 1234 },
    );
  });

  it('sequential steps keep every rank under a tight memory limit, and the reported minimum is enough', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 8, max: 400 }),
        fc.integer({ min: 8, max: 400 }),
        fc.integer({ min: 8, max: 400 }),
        fc.integer({ min: 1, max: 24 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        (m, n, k, P, frac) => {
          const roomy = plan({ m, n, k, dtype: 'f32' }, ranksCluster(P), { baselines: false });
          const limit = Math.max(64, Math.floor(roomy.memory.peakBytes * frac));
          let p: Plan;
          try {
            p = plan({ m, n, k, dtype: 'f32' }, ranksCluster(P), {
              memoryBytes: limit,
              baselines: false,
              maxScheduleTransfers: 1e7,
            });
          } catch (e) {
            expect(e).toBeInstanceOf(PlanInputError);
            const min = Number(/minimum .*?: (\d+) B/.exec((e as Error).message)?.[1]);
            expect(min).toBeGreaterThan(limit);
            p = plan({ m, n, k, dtype: 'f32' }, ranksCluster(P), {
              memoryBytes: min,
              baselines: false,
              maxScheduleTransfers: 1e7,
            });
          }
          planAndCheck(p);
          expect(p.memory.peakBytes).toBeLessThanOrEqual(p.memory.limitBytes);
        },
      ),
      { numRuns: 60, seed: 99 },
    );
  });

  it('hosts × nodes plans are exact and carry no more data across hosts than the flat plan', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 16, max: 3000 }),
        fc.integer({ min: 16, max: 3000 }),
        fc.integer({ min: 16, max: 3000 }),
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 2, max: 4 }),
        fc.constantFrom<'volume' | 'time'>('volume', 'time'),
        (m, n, k, H, N, objective) => {
          const cluster = hostsCluster(H, N);
          const opts = { objective, baselines: false, maxScheduleTransfers: 1e7 };
          const hier = plan({ m, n, k, dtype: 'f32' }, cluster, { ...opts, hierarchical: true });
          const flat = plan({ m, n, k, dtype: 'f32' }, cluster, { ...opts, hierarchical: false });
          planAndCheck(hier);
          expect(hier.volume.perLinkClass.network).toBeLessThanOrEqual(flat.volume.perLinkClass.network);
        },
      ),
      { numRuns: 40, seed: 7 },
    );
  });

  it('stationary B is never moved and is placed on every working node', () => {
    const p = plan({ m: 64, n: 4096, k: 4096, dtype: 'q8_0' }, hostsCluster(2, 2), {
      stationary: 'B',
      maxScheduleTransfers: 1e7,
    });
    planAndCheck(p);
    expect(p.ranks.every((r) => r.volume.B === 0)).toBe(true);
    expect(p.placement).toHaveLength(4);
    for (const pl of p.placement) {
      expect(['mirror', 'shard']).toContain(pl.mode);
      expect(pl.reason.length).toBeGreaterThan(10);
    }
    const tight = plan({ m: 64, n: 4096, k: 4096, dtype: 'q8_0' }, hostsCluster(2, 2), {
      stationary: 'B',
      memoryBytes: 12 * 2 ** 20,
    });
    expect(tight.placement.every((pl) => pl.mode === 'shard')).toBe(true);
  });

  it('is deterministic', () => {
    const a = plan({ m: 3000, n: 500, k: 7000, dtype: 'bf16' }, hostsCluster(3, 2));
    const b = plan({ m: 3000, n: 500, k: 7000, dtype: 'bf16' }, hostsCluster(3, 2));
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });
});

describe('the checker itself', () => {
  it('rejects a plan whose volume, bricks or schedule were tampered with', () => {
    const p = plan({ m: 300, n: 200, k: 100, dtype: 'f32' }, ranksCluster(6), { maxScheduleTransfers: 1e7 });
    expect(() => checkPlan(p, p.schedule.transfers)).not.toThrow();
    const bad1 = structuredClone(p);
    bad1.ranks[0]!.volume.total += 1;
    expect(() => checkPlan(bad1, bad1.schedule.transfers)).toThrow(/volume/);
    const bad2 = structuredClone(p);
    bad2.ranks[1]!.bricks[0]!.k[1] -= 1;
    expect(() => checkPlan(bad2, bad2.schedule.transfers)).toThrow(/cover/);
    const bad3 = structuredClone(p);
    expect(() => checkPlan(bad3, bad3.schedule.transfers.slice(1))).toThrow();
  });
});

describe('schedule and objectives', () => {
  it('omits a long transfer list and regenerates exactly the same one on demand', () => {
    const full = plan({ m: 900, n: 700, k: 500, dtype: 'f16' }, hostsCluster(3, 2), {
      maxScheduleTransfers: 1e7,
    });
    const short = plan({ m: 900, n: 700, k: 500, dtype: 'f16' }, hostsCluster(3, 2), {
      maxScheduleTransfers: 0,
    });
    expect(short.schedule.omitted).toBe(true);
    expect(short.schedule.transfers).toEqual([]);
    const rebuilt = buildTransfers(short);
    expect(rebuilt).toEqual(full.schedule.transfers);
    checkPlan(short, rebuilt);
  });

  it('the time objective never predicts a slower plan than the volume objective', () => {
    for (const [m, n, k, P] of [
      [16384, 16384, 16384, 65],
      [4096, 65536, 1024, 48],
      [1, 8192, 8192, 24],
      [30000, 30000, 64, 100],
    ] as const) {
      const byTime = plan({ m, n, k, dtype: 'bf16' }, ranksCluster(P), {
        objective: 'time',
        baselines: false,
      });
      const byVolume = plan({ m, n, k, dtype: 'bf16' }, ranksCluster(P), {
        objective: 'volume',
        baselines: false,
      });
      expect(byTime.time.total).toBeLessThanOrEqual(byVolume.time.total * (1 + 1e-9));
      expect(byVolume.volume.maxPerRank).toBeLessThanOrEqual(byTime.volume.maxPerRank);
    }
  });
});

describe('hierarchy', () => {
  it('cuts the data crossing hosts on awkward host counts', () => {
    for (const [H, N] of [
      [5, 2],
      [7, 4],
    ] as const) {
      const cube = { m: 16384, n: 16384, k: 16384, dtype: 'f32' as const };
      const hier = plan(cube, hostsCluster(H, N), { baselines: false });
      const flat = plan(cube, hostsCluster(H, N), { baselines: false, hierarchical: false });
      expect(hier.strategy.family).toBe('hierarchical');
      expect(hier.strategy.levels.map((l) => l.name)).toEqual(['hosts', 'nodes']);
      expect(hier.volume.perLinkClass.network).toBeLessThan(0.9 * flat.volume.perLinkClass.network);
      expect(hier.compute.imbalance).toBeLessThanOrEqual(0.03);
    }
  });
});
