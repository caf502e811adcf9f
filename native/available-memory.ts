// What a NUMA node can still give: the memory a model's weights and KV cache would take, read
// fresh where the loading starts. The executors populate every page as they allocate (a shortage
// must show before the work, not as a crash later), and on Linux a populate the node cannot
// supply ends in the out-of-memory killer's SIGKILL, not in an error: so the coordinator compares
// first (planner/model-memory.ts) and refuses with the figures and the fix.
//
// Sources, all plain files: the node's /sys/devices/system/node/nodeN/meminfo (free pages, and
// page cache and slab that the kernel can reclaim), /proc/meminfo's MemAvailable (the kernel's own
// estimate for the machine), the memory cgroup's limit (containers, systemd units), and the
// node's free huge pages (a pool apart from ordinary memory, where allocations go first).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NodeAvailability {
  /** Ordinary memory the node can give (free, plus reclaimable cache), within MemAvailable and the cgroup's limit. */
  bytes: number;
  /** Free huge pages on the node, in bytes (hugetlb: the executors' buffers take them first). */
  hugeFreeBytes: number;
  /** Their page size (2 MiB on x86-64); a buffer takes whole pages. */
  hugePageBytes: number;
}

const KIB = 1024;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** "Key:   1234 kB" lines (optionally after "Node N ") → bytes by key. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(?:Node \d+ )?([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]) * (line.includes('kB') ? KIB : 1));
  }
  return out;
}

/**
 * The memory cgroup's room (limit − usage) for this process, or undefined without a limit.
 * cgroup v2 (`0::/path` in /proc/self/cgroup: memory.max, memory.current) or v1 (`N:memory:/path`:
 * memory.limit_in_bytes, memory.usage_in_bytes). Inside a container the cgroup's own directory is
 * often the mount's root, so the root is read where the path has no files.
 */
export function cgroupRoom(root = '/'): number | undefined {
  const self = read(join(root, 'proc/self/cgroup'));
  if (!self) return undefined;
  const rooms: number[] = [];
  for (const line of self.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (path === undefined) continue;
    const v2 = controllers === '';
    if (!v2 && !controllers!.split(',').includes('memory')) continue;
    const mount = join(root, 'sys/fs/cgroup', v2 ? '' : 'memory');
    const [limitFile, usageFile] = v2
      ? ['memory.max', 'memory.current']
      : ['memory.limit_in_bytes', 'memory.usage_in_bytes'];
    for (const dir of [join(mount, path), mount]) {
      const limit = read(join(dir, limitFile))?.trim();
      const usage = Number(read(join(dir, usageFile))?.trim());
      if (limit === undefined || !Number.isFinite(usage)) continue;
      // "max" (v2) or a page-rounded 2^63 (v1): no limit
      if (limit !== 'max' && Number(limit) < 2 ** 60) rooms.push(Math.max(0, Number(limit) - usage));
      break;
    }
  }
  return rooms.length ? Math.min(...rooms) : undefined;
}

/**
 * What the whole machine can give (for what is not bound to one node, e.g. a run's staging area
 * in /dev/shm): MemAvailable within the cgroup's room, and every free huge page; undefined where
 * /proc/meminfo does not say.
 */
export function availableOnMachine(root = '/'): NodeAvailability | undefined {
  const sys = read(join(root, 'proc/meminfo'));
  const machine = sys ? parseMeminfo(sys) : undefined;
  const available = machine?.get('MemAvailable');
  if (available === undefined) return undefined;
  const hugePageBytes = machine!.get('Hugepagesize') ?? 2 << 20;
  return {
    bytes: Math.min(available, cgroupRoom(root) ?? Infinity),
    hugeFreeBytes: (machine!.get('HugePages_Free') ?? 0) * hugePageBytes,
    hugePageBytes,
  };
}

/**
 * What `node` (a real NUMA node) can give now: the node's own figure within the machine's
 * (availableOnMachine), or undefined where neither file is there (not Linux, no sysfs): then
 * nothing is checked. `root`: where / is (tests pass a made-up tree).
 */
export function availableOnNode(node: number, root = '/'): NodeAvailability | undefined {
  const nodeDir = join(root, 'sys/devices/system/node', `node${node}`);
  const nodeInfo = read(join(nodeDir, 'meminfo'));
  const machine = availableOnMachine(root);
  const own = nodeInfo ? parseMeminfo(nodeInfo) : undefined;
  // The node's free pages and what reclaim gives back (its file cache and reclaimable slab, as the
  // kernel's MemAvailable counts them, less only a low watermark that the caller's reserve
  // covers): a box whose page cache holds the model file has most of its memory there.
  const nodeBytes = own?.has('MemFree')
    ? own.get('MemFree')! +
      (own.get('Active(file)') ?? 0) +
      (own.get('Inactive(file)') ?? 0) +
      (own.get('SReclaimable') ?? 0)
    : undefined;
  if (nodeBytes === undefined) return machine; // no NUMA in the kernel: the machine is the node
  const hugePageBytes = machine?.hugePageBytes ?? 2 << 20;
  const hugeFree = Number(
    read(join(nodeDir, 'hugepages', `hugepages-${hugePageBytes / KIB}kB`, 'free_hugepages'))?.trim() ?? 0,
  );
  return {
    bytes: Math.floor(Math.min(nodeBytes, machine?.bytes ?? cgroupRoom(root) ?? Infinity)),
    hugeFreeBytes: (Number.isFinite(hugeFree) ? hugeFree : 0) * hugePageBytes,
    hugePageBytes,
  };
}
