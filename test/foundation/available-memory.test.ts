// What a node can still give (native/available-memory.ts): read from this machine's files, where a
// real allocation moves it, and from made-up trees for what this machine does not have (cgroup
// limits of either version, several nodes, free huge pages on one node).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  availableOnMachine,
  availableOnNode,
  cgroupRoom,
  parseMeminfo,
} from '../../native/available-memory.js';
import { allocateOnNode } from '../../native/memory.js';

const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const dir = mkdtempSync(join(tmpdir(), 'redblue-available-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A made-up root: files at their paths under it. */
function tree(name: string, files: Record<string, string>): string {
  const root = join(dir, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const meminfo = (availableKiB: number) =>
  `MemTotal:       32000000 kB\nMemFree:        ${availableKiB - 1000} kB\nMemAvailable:   ${availableKiB} kB\nHugePages_Total:     512\nHugePages_Free:      300\nHugepagesize:       2048 kB\n`;
const nodeInfo = (id: number, freeKiB: number, fileKiB: number) =>
  `Node ${id} MemTotal:       16000000 kB\nNode ${id} MemFree:        ${freeKiB} kB\nNode ${id} Active(file):    ${fileKiB} kB\nNode ${id} Inactive(file):  ${fileKiB} kB\nNode ${id} SReclaimable:    0 kB\nNode ${id} HugePages_Free:    7\n`;

describe('availableOnNode on this machine', () => {
  it('reads what node 0 has, and sees a populated buffer take its share', () => {
    const before = availableOnNode(0);
    expect(before).toBeDefined();
    const total = parseMeminfo(readFileSync('/proc/meminfo', 'utf8')).get('MemTotal')!;
    expect(before!.bytes).toBeGreaterThan(0);
    expect(before!.bytes).toBeLessThanOrEqual(total);
    expect(before!.hugePageBytes).toBeGreaterThanOrEqual(2 * MiB);
    expect(before!.hugeFreeBytes % before!.hugePageBytes).toBe(0);
    // Ordinary pages, every one touched (as an executor's buffers are): about that much less.
    // The figure is the whole machine's, so another process freeing or taking memory in between
    // moves it too (a previous file's executors exiting: 338 MiB taken once in CI): up to three
    // tries, each reading just before and after its own buffer.
    const takes: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const start = availableOnNode(0)!.bytes;
      const buf = allocateOnNode(512 * MiB, 0, 'none');
      try {
        takes.push(start - availableOnNode(0)!.bytes);
      } finally {
        buf.release();
      }
      if (takes.at(-1)! > 384 * MiB && takes.at(-1)! < 640 * MiB) break;
    }
    expect(
      takes.some((t) => t > 384 * MiB && t < 640 * MiB),
      `taken: ${takes.map((t) => t / MiB)} MiB`,
    ).toBe(true);
  });
});

describe('availableOnNode from made-up machines', () => {
  it("takes the node's free pages and its reclaimable cache, never more than the machine's MemAvailable", () => {
    const root = tree('two-nodes', {
      'proc/meminfo': meminfo(20_000_000),
      'sys/devices/system/node/node1/meminfo': nodeInfo(1, 4_000_000, 1_000_000),
      'sys/devices/system/node/node1/hugepages/hugepages-2048kB/free_hugepages': '7\n',
      'proc/self/cgroup': '0::/\n',
      'sys/fs/cgroup/memory.max': 'max\n',
      'sys/fs/cgroup/memory.current': '123\n',
    });
    expect(availableOnNode(1, root)).toEqual({
      bytes: (4_000_000 + 2 * 1_000_000) * KiB,
      hugeFreeBytes: 7 * 2 * MiB,
      hugePageBytes: 2 * MiB,
    });
    // The machine's estimate below the node's: the machine's.
    const tight = tree('tight', {
      'proc/meminfo': meminfo(1_000_000),
      'sys/devices/system/node/node0/meminfo': nodeInfo(0, 4_000_000, 0),
    });
    expect(availableOnNode(0, tight)!.bytes).toBe(1_000_000 * KiB);
    // No node directory (a kernel without NUMA): the machine's figures, its huge pages.
    const flat = tree('flat', { 'proc/meminfo': meminfo(5_000_000) });
    expect(availableOnNode(0, flat)).toEqual({
      bytes: 5_000_000 * KiB,
      hugeFreeBytes: 300 * 2 * MiB,
      hugePageBytes: 2 * MiB,
    });
    // Nothing to read: unknown, and nothing gets checked.
    expect(availableOnNode(0, tree('empty', { 'etc/hostname': 'x\n' }))).toBeUndefined();
    expect(availableOnMachine(tree('empty-too', { 'etc/hostname': 'x\n' }))).toBeUndefined();
    // The machine as a whole (a gemm's staging area is bound to no node): MemAvailable, every
    // free huge page, within the cgroup's room.
    expect(availableOnMachine(root)).toEqual({
      bytes: 20_000_000 * KiB,
      hugeFreeBytes: 300 * 2 * MiB,
      hugePageBytes: 2 * MiB,
    });
    const capped = tree('machine-cg', {
      'proc/meminfo': meminfo(20_000_000),
      'proc/self/cgroup': '0::/\n',
      'sys/fs/cgroup/memory.max': String(2 * GiB),
      'sys/fs/cgroup/memory.current': String(GiB),
    });
    expect(availableOnMachine(capped)!.bytes).toBe(GiB);
  });

  it("keeps within the memory cgroup's limit, version 2 or 1, in the cgroup's directory or at the mount's root", () => {
    const v2 = tree('cg2', {
      'proc/meminfo': meminfo(20_000_000),
      'proc/self/cgroup': '0::/user.slice/job\n',
      'sys/fs/cgroup/user.slice/job/memory.max': String(4 * GiB) + '\n',
      'sys/fs/cgroup/user.slice/job/memory.current': String(GiB) + '\n',
    });
    expect(cgroupRoom(v2)).toBe(3 * GiB);
    expect(availableOnNode(0, v2)!.bytes).toBe(3 * GiB);
    const v1 = tree('cg1', {
      'proc/meminfo': meminfo(20_000_000),
      'proc/self/cgroup': '5:cpu,cpuacct:/x\n4:memory:/process_api/abc\n0::/\n',
      // a container's view: its own cgroup is the mount's root
      'sys/fs/cgroup/memory/memory.limit_in_bytes': String(2 * GiB) + '\n',
      'sys/fs/cgroup/memory/memory.usage_in_bytes': String(512 * MiB) + '\n',
    });
    expect(cgroupRoom(v1)).toBe(1.5 * GiB);
    const unlimited = tree('cg1-unlimited', {
      'proc/self/cgroup': '4:memory:/\n',
      'sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
      'sys/fs/cgroup/memory/memory.usage_in_bytes': '1000\n',
    });
    expect(cgroupRoom(unlimited)).toBeUndefined();
  });
});
