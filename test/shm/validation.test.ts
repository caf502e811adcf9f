// Argument checks of the shm API: every bad call is a clear error, never a crash, and a
// one-rank communicator (in this process) works end to end and leaves nothing behind.
import { closeSync, openSync, writeSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { listSegments, ShmCommunicator } from '../../transport/shm.js';
import { uniqueName } from './harness.js';

const mine = () => listSegments().filter((p) => p.includes(`redblue-shm-t${process.pid}-`));

afterAll(() => {
  expect(mine()).toEqual([]);
});

describe('shm argument validation', () => {
  it('rejects bad open() options before touching /dev/shm', async () => {
    await expect(ShmCommunicator.open({ name: 'bad/name', rank: 0, size: 1 })).rejects.toThrow(
      /name must be/,
    );
    await expect(ShmCommunicator.open({ name: uniqueName('v'), rank: 2, size: 2 })).rejects.toThrow(
      /rank must be/,
    );
    await expect(ShmCommunicator.open({ name: uniqueName('v'), rank: 0, size: 65 })).rejects.toThrow(
      /size must be/,
    );
    await expect(
      ShmCommunicator.open({ name: uniqueName('v'), rank: 0, size: 1, slotBytes: 100 }),
    ).rejects.toThrow(/slotBytes must be between/);
    await expect(
      ShmCommunicator.open({ name: uniqueName('v'), rank: 0, size: 1, hugePages: 'maybe' as 'auto' }),
    ).rejects.toThrow(/hugePages must be/);
    expect(mine()).toEqual([]);
  });

  it('refuses to attach a segment whose header was damaged, naming what is wrong', async () => {
    const name = uniqueName('dmg');
    // Rank 0 creates the segment, then waits for rank 1 (which never comes whole).
    const first = ShmCommunicator.open({ name, rank: 0, size: 2, attachTimeoutMs: 3000, hugePages: 'none' });
    first.catch(() => undefined);
    let path: string | undefined;
    for (let i = 0; i < 200 && !path; i++) {
      path = listSegments().find((p) => p.endsWith(`redblue-shm-${name}`));
      if (!path) await new Promise((r) => setTimeout(r, 10));
    }
    expect(path).toBeDefined();
    // Header.slotsOffset (byte 72): a rank that trusted it would write outside the file.
    const fd = openSync(path!, 'r+');
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(1n << 40n);
    writeSync(fd, v, 0, 8, 72);
    closeSync(fd);
    await expect(
      ShmCommunicator.open({ name, rank: 1, size: 2, attachTimeoutMs: 2000, hugePages: 'none' }),
    ).rejects.toThrow(/has a damaged header \(its offsets do not match its geometry\): remove it/);
    await expect(first).rejects.toThrow(/rank 1/);
  });

  it('a one-rank communicator runs every call and rejects bad arguments clearly', async () => {
    const c = await ShmCommunicator.open({ name: uniqueName('one'), rank: 0, size: 1 });
    try {
      expect(c.path).toMatch(/redblue-shm-t\d+-one-\d+$/);
      expect(['shm', 'hugetlb']).toContain(c.backing);
      const a = new Float32Array([1, 2, 3]);
      await c.allReduce(a);
      expect([...a]).toEqual([1, 2, 3]);
      const out = new Float32Array(3);
      await c.allGather(a, out);
      expect([...out]).toEqual([1, 2, 3]);
      await c.barrier();

      expect(() => c.allReduce(new Int32Array(4) as unknown as Float32Array)).toThrow(TypeError);
      expect(() => c.allGather(a, new Float32Array(2))).toThrow(/recv has 8 bytes, needs 12/);
      expect(() => c.reduceScatter(new Float32Array(4), new Float32Array(1), c.group([0]))).toThrow(
        /recv must hold/,
      );
      expect(() => c.group([0, 5])).toThrow(RangeError);
      expect(() => c.slotBuffer(1 << 30)).toThrow(/exceeds the slot/);
      await expect(c.send(0, a)).rejects.toThrow(/cannot message itself/);
      await expect(c.recv(3)).rejects.toThrow(/outside 0..0/);
      expect(() => c.broadcast(a, 1)).toThrow(/not a member/);
    } finally {
      c.close();
    }
    expect(() => c.barrier()).toThrow(/closed/);
    expect(() => c.allReduceSlot(4)).toThrow(/closed/);
    expect(() => c.slotBuffer(4)).toThrow(/closed/);
    expect(() => c.postSend(0, 4)).toThrow(/closed/);
    expect(c.rank).toBe(0);
    expect(mine()).toEqual([]);
  });
});
