// Node-local buffers: the backing the addon reports is checked against what the kernel says
// in /proc/self/smaps and /proc/self/numa_maps.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../native/addon.js';
import { executorAddon } from '../../native/steps.js';
import { LocalCluster } from '../../executor/host/local-cluster.js';
import { readTopology } from '../../native/topology.js';
import { virtualize } from '../../native/virtual-nodes.js';
import { allocateOnNode } from '../../native/memory.js';
import { memoryOf } from '../../bench/model.js';
import {
  attachSharedArea,
  createSharedArea,
  listAreas,
  AREA_WINDOW_BYTES,
  createSharedAreaAsync,
} from '../../transport/shared-area.js';

const addon = loadAddon();

function smapsEntry(address: bigint): string | undefined {
  const start = address.toString(16);
  return readFileSync('/proc/self/smaps', 'utf8')
    .split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)
    .find((e) => e.startsWith(start + '-'));
}

function numaMapsLine(address: bigint): string | undefined {
  const start = address.toString(16);
  return readFileSync('/proc/self/numa_maps', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(start + ' '));
}

function field(entry: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(entry);
  if (!m) throw new Error(`${name} not in smaps entry`);
  return Number(m[1]);
}

describe('node-local buffers', () => {
  it('are backed by 2 MiB hugetlbfs pages when huge pages are reserved', () => {
    // .ci/run (scripts/setup.sh) reserves huge pages as root; without them this must fail.
    const a = addon.allocate(6 << 20, 0, 'require');
    try {
      expect(a.backing).toBe('hugetlb');
      const e = smapsEntry(a.address)!;
      expect(e).toBeDefined();
      expect(field(e, 'KernelPageSize')).toBe(2048);
      expect(field(e, 'Private_Hugetlb')).toBe(6 * 1024);
      expect(numaMapsLine(a.address)).toMatch(/bind:0 .*huge/);
    } finally {
      addon.release(a.buffer);
    }
  });

  it("count as the process's own memory in bench model's accounting (the kernel lists them apart)", () => {
    const before = memoryOf(process.pid);
    const a = addon.allocate(6 << 20, 0, 'require');
    try {
      const after = memoryOf(process.pid);
      expect(after.private - before.private).toBeGreaterThanOrEqual(6 << 20);
      expect(after.rss - before.rss).toBeGreaterThanOrEqual(6 << 20);
    } finally {
      addon.release(a.buffer);
    }
  });

  it('fall back to transparent huge pages, bound to the node', () => {
    const a = addon.allocate(4 << 20, 0, 'thp');
    try {
      expect(a.backing).toBe('thp');
      const e = smapsEntry(a.address)!;
      expect(field(e, 'THPeligible')).toBe(1);
      expect(Number(a.address % BigInt(2 << 20))).toBe(0);
      expect(numaMapsLine(a.address)).toMatch(/bind:0 /);
    } finally {
      addon.release(a.buffer);
    }
  });

  it('use normal pages when asked, and the memory is readable and writable from JS', () => {
    const buf = allocateOnNode(1000, 0, 'none');
    expect(buf.backing).toBe('normal');
    expect(buf.buffer.byteLength).toBe(1000);
    const view = new Float32Array(buf.buffer);
    view.fill(1.5);
    expect(view.reduce((s, x) => s + x, 0)).toBe(1.5 * 250);
    buf.release();
  });

  it('release unmaps the memory and detaches the ArrayBuffer', () => {
    const buf = allocateOnNode(3 << 20, 0, 'thp');
    const a = addon.allocate(1 << 20, 0, 'none');
    expect(smapsEntry(a.address)).toBeDefined();
    expect(addon.release(a.buffer)).toBe(true);
    expect(a.buffer.byteLength).toBe(0);
    expect(smapsEntry(a.address)).toBeUndefined();
    expect(addon.release(a.buffer)).toBe(false);
    buf.release();
    buf.release(); // twice is harmless
    expect(buf.buffer.byteLength).toBe(0);
  });

  it('rejects bad sizes, unknown nodes and unknown policies with clear errors', () => {
    expect(() => allocateOnNode(-1, 0)).toThrow(/non-negative whole number of bytes/);
    expect(() => allocateOnNode(1.5, 0)).toThrow(/non-negative whole number of bytes/);
    expect(() => allocateOnNode(16, 7)).toThrow(/node 7 does not exist: this machine has node/);
    expect(() => addon.allocate(16, 0, 'giant' as never)).toThrow(/unknown huge page policy 'giant'/);
    expect(() => addon.allocate(-5, 0)).toThrow(/non-negative integer/);
  });

  it('says when no huge pages are left instead of crashing', () => {
    const free = Number(readFileSync('/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages', 'utf8'));
    expect(() => addon.allocate((free + 1) * (2 << 20), 0, 'require')).toThrow(/no huge pages left/);
  });
});

describe('staging areas', () => {
  // Mappings of this process that show the file (checked per process: other test files take and
  // give back huge pages at the same time, so the pool's free count cannot be compared).
  const mapped = (name: string) =>
    readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .filter((l) => l.endsWith(name));

  it('live on hugetlbfs while its pages last, attachers see their size, and closing unmaps every mapping', () => {
    const bytes = (3 << 20) + 5; // not whole 2 MiB pages: the file is rounded up, the area is not
    const area = createSharedArea('staging-test', bytes);
    try {
      expect(area.buffer.byteLength).toBe(bytes);
      // The set-up reserves 512 pages; an area of 2 fits unless other tests hold nearly all.
      expect(listAreas()).toContain(`/dev/hugepages/${area.name}`);
      new Uint8Array(area.buffer).fill(7, bytes - 16);
      // Attached three times (as executors and the data service do): each maps exactly the area,
      // and is unmapped whole on close (a hugetlbfs mapping unmapped short stays, pages taken).
      for (let i = 0; i < 3; i++) {
        const seen = attachSharedArea(area.name, bytes);
        expect(seen.buffer.byteLength).toBe(bytes);
        expect(new Uint8Array(seen.buffer)[bytes - 1]).toBe(7);
        expect(mapped(area.name)).toHaveLength(2);
        seen.close();
        expect(mapped(area.name)).toHaveLength(1);
      }
      expect(() => attachSharedArea(area.name, bytes + (2 << 20))).toThrow(
        /is 4194304 bytes, not the 5242885 expected: was it replaced by another run\?/,
      );
    } finally {
      area.close();
    }
    expect(mapped(area.name)).toEqual([]);
    expect(listAreas().filter((f) => f.endsWith('staging-test'))).toEqual([]);
  });

  it('past what Node hands JavaScript as one buffer: a window for JS, the whole area for native code and copies', () => {
    // A gemm's 4.8 GB staging area used to abort the process (a double free in the addon) and
    // leave its file behind; now JavaScript sees its first AREA_WINDOW_BYTES and native code all.
    const bytes = AREA_WINDOW_BYTES + (8 << 20);
    const area = createSharedArea('window-test', bytes);
    try {
      expect(area.buffer.byteLength).toBe(AREA_WINDOW_BYTES);
      expect(area.bytes).toBe(bytes);
      // A native consumer writes past the window; a copy brings it out: the values a fill of a
      // small buffer gives (the generator counts from 0 wherever it writes).
      const at = bytes - 4096;
      executorAddon().fillUniform(area.buffer, at, 1024, 7, 3);
      const got = new Float32Array(1024);
      area.copyOut(at, got);
      const want = new Float32Array(1024);
      executorAddon().fillUniform(want.buffer, 0, 1024, 7, 3);
      expect(got).toEqual(want);
      area.copyIn(bytes - 8, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
      const back = new Uint8Array(8);
      area.copyOut(bytes - 8, back);
      expect([...back]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(() => area.copyOut(bytes - 4, new Uint8Array(8))).toThrow(
        new RegExp(`8 bytes at ${bytes - 4} do not fit the ${bytes}-byte area`),
      );
      expect(() => executorAddon().fillUniform(area.buffer, bytes, 1, 1, 1)).toThrow(
        /do not fit the \d+-byte buffer/,
      );
      // An executor attaching sees the same.
      const seen = attachSharedArea(area.name, bytes);
      expect([seen.buffer.byteLength, seen.bytes]).toEqual([AREA_WINDOW_BYTES, bytes]);
      seen.copyOut(bytes - 8, back.fill(0));
      expect([...back]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      seen.close();
    } finally {
      area.close();
    }
    expect(listAreas().filter((f) => f.endsWith('window-test'))).toEqual([]);
    // A node-local buffer is JavaScript's own: past the limit it is refused, saying why.
    expect(() => addon.allocate(AREA_WINDOW_BYTES + 4096, 0, 'none')).toThrow(
      /a node-local buffer of \d+ bytes is larger than the \d+ bytes Node [\d.]+ can hand JavaScript as one buffer/,
    );
  });

  it('are made off the JS thread for hosts; a cluster stopped meanwhile removes the area it gets', async () => {
    // A host's supervisor made its gemm area on the JS thread: GBs at a VM's first-touch speed
    // stalled it past the coordinator's keepalive, and an area finished after its session had
    // ended stayed in /dev/shm.
    const area = await createSharedAreaAsync('async-test', 64 << 20);
    expect([area.bytes, area.buffer.byteLength]).toEqual([64 << 20, 64 << 20]);
    area.copyIn(100, new Uint8Array([9]));
    expect(new Uint8Array(area.buffer)[100]).toBe(9);
    area.close();
    expect(listAreas().filter((f) => f.endsWith('async-test'))).toEqual([]);
    await expect(createSharedAreaAsync('bad name/', 4096)).rejects.toThrow();

    const cluster = await LocalCluster.start({ topology: virtualize(readTopology(), 1) });
    const staging = expect(cluster.stage('stop-test', 256 << 20)).rejects.toThrow(
      /the cluster stopped while its staging area was made/,
    );
    await cluster.stop();
    await staging;
    expect(listAreas().filter((f) => f.includes('stop-test'))).toEqual([]);
  }, 60_000);
});
