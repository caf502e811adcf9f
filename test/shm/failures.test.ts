// Failure handling with real processes: a peer killed in the middle of collectives becomes an
// error on every other rank (never a hang), stale segments of killed runs are detected and
// removed, live segments are protected, and nothing is left in /dev/shm.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runRanks, startRank, uniqueName, type Rank } from './harness.js';
import { listSegments, removeStaleSegment, ShmCommunicator } from '../../transport/shm.js';

const mine = () => listSegments().filter((p) => p.includes(`redblue-shm-t${process.pid}-`));

beforeAll(() => {
  ensureBuilt();
  expect(mine()).toEqual([]);
});

afterAll(() => {
  expect(mine()).toEqual([]);
});

async function killAll(ranks: Rank[]) {
  for (const r of ranks) r.child.kill('SIGKILL');
  await Promise.all(ranks.map((r) => r.exited));
}

// Starts a run whose ranks open the segment and then block forever; resolves once all joined.
async function holdingRun(name: string, size: number): Promise<{ ranks: Rank[]; path: string }> {
  const ranks = Array.from({ length: size }, (_, rank) =>
    startRank({ name, rank, size, scenario: 'hold', seed: 0, options: {} }),
  );
  const ready = await Promise.all(ranks.map((r) => r.next('ready')));
  return { ranks, path: ready[0]!.path as string };
}

describe('shm failure handling', () => {
  it('a peer killed (SIGKILL) during all-reduces becomes an error on every other rank within 2 s', async () => {
    const name = uniqueName('kill');
    const size = 3;
    // A long timeout: an error before it can only come from the dead-peer detection.
    const ranks = Array.from({ length: size }, (_, rank) =>
      startRank({
        name,
        rank,
        size,
        scenario: 'untilFailure',
        seed: 0,
        len: 1 << 20,
        options: { timeoutMs: 60_000 },
      }),
    );
    try {
      await Promise.all(ranks.map((r) => r.next('started')));
      await new Promise((res) => setTimeout(res, 50));
      const victim = ranks[1]!;
      const killedAt = Date.now();
      victim.child.kill('SIGKILL');
      const survivors = [ranks[0]!, ranks[2]!];
      const results = await Promise.all(survivors.map((r) => r.next('result')));
      for (const res of results) {
        expect(res.fatal).toBeUndefined();
        expect(res.error).toMatch(/rank 1 .*died/);
        expect(res.at - killedAt).toBeLessThan(2000);
      }
      await Promise.all(survivors.map((r) => r.exited));
    } finally {
      await killAll(ranks);
    }
    // The survivors closed; the last one removed the segment although rank 1 never left.
    expect(mine()).toEqual([]);
  });

  it('a sender killed while its receiver waits becomes an error on the receiver within 2 s', async () => {
    const name = uniqueName('killp2p');
    const ranks = Array.from({ length: 2 }, (_, rank) =>
      startRank({
        name,
        rank,
        size: 2,
        scenario: 'untilFailure',
        op: 'p2p',
        seed: 0,
        len: 1 << 18,
        options: { timeoutMs: 60_000 },
      }),
    );
    try {
      await ranks[0]!.next('started');
      const killedAt = Date.now();
      ranks[1]!.child.kill('SIGKILL');
      const res = await ranks[0]!.next('result');
      expect(res.fatal).toBeUndefined();
      expect(res.error).toMatch(/recv failed: rank 1 .*died/);
      expect(res.at - killedAt).toBeLessThan(2000);
    } finally {
      await killAll(ranks);
    }
    expect(mine()).toEqual([]);
  });

  it('processes that exit without close() still leave and remove the segment', async () => {
    const name = uniqueName('noclose');
    const ranks = Array.from({ length: 2 }, (_, rank) =>
      startRank({ name, rank, size: 2, scenario: 'exitWithoutClose', seed: 0, options: {} }),
    );
    const [first] = await Promise.all(ranks.map((r) => r.next('result')));
    expect(await Promise.all(ranks.map((r) => r.exited))).toEqual([0, 0]);
    expect(existsSync(first!.path as string)).toBe(false);
  });

  it('a stale segment of a killed run is removed by removeStaleSegment', async () => {
    const name = uniqueName('stale');
    const { ranks, path } = await holdingRun(name, 2);
    expect(existsSync(path)).toBe(true);
    expect(removeStaleSegment(name)).toBe(false); // live: left alone
    expect(existsSync(path)).toBe(true);
    await killAll(ranks);
    expect(existsSync(path)).toBe(true);
    expect(removeStaleSegment(name)).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect(removeStaleSegment(name)).toBe(false);
  });

  it('a new run replaces the stale segment of a killed run under the same name', async () => {
    const name = uniqueName('rerun');
    const old = await holdingRun(name, 2);
    await killAll(old.ranks);
    expect(existsSync(old.path)).toBe(true);
    const results = await runRanks(2, {
      name,
      scenario: 'collectives',
      seed: 5,
      sizes: [1, 1000],
      bf16Sizes: [3],
      options: {},
    });
    for (const r of results) {
      expect(r.fatal).toBeUndefined();
      expect(r.failures).toEqual([]);
    }
    expect(existsSync(old.path)).toBe(false);
  });

  it('refuses to take over the segment of a live run', async () => {
    const name = uniqueName('live');
    const { ranks, path } = await holdingRun(name, 2);
    try {
      await expect(ShmCommunicator.open({ name, rank: 0, size: 2 })).rejects.toThrow(/in use by a live run/);
      expect(existsSync(path)).toBe(true);
    } finally {
      await killAll(ranks);
    }
    expect(removeStaleSegment(name)).toBe(true);
  });

  it('an attacher whose rank 0 never comes fails after attachTimeoutMs instead of hanging', async () => {
    const name = uniqueName('lonely');
    await expect(ShmCommunicator.open({ name, rank: 1, size: 2, attachTimeoutMs: 300 })).rejects.toThrow(
      /could not attach/,
    );
  });

  it('a peer that never joins makes open() fail after attachTimeoutMs', async () => {
    const name = uniqueName('alone');
    await expect(ShmCommunicator.open({ name, rank: 0, size: 2, attachTimeoutMs: 300 })).rejects.toThrow(
      /never attached/,
    );
    expect(mine()).toEqual([]);
  });
});
