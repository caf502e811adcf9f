// `redblue doctor`: what this host gives the engine, each miss with the command that fixes it.
// Required (the run fails without it): the Debian packages, the built addon, a writable /dev/shm,
// and with a hostfile every host reachable over SSH with redblue there. Recommended (slower or
// fragile without): huge pages, open-file limits. Facts: NUMA nodes as hwloc sees them, the cpu
// features the kernels dispatch on, RDMA devices and UCX (optional: `--transport ucx` uses them).
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatBytes } from '../../common/format.js';
import { loadAddon } from '../../native/addon.js';
import { kernelPaths } from '../../native/kernels.js';
import { rdmaDevices } from '../../native/rdma.js';
import { availableOnNode } from '../../native/available-memory.js';
import { readTopology } from '../../native/topology.js';
import { AREA_PREFIX, isAlive, listAreas } from '../../transport/shared-area.js';
import { listSegments } from '../../transport/shm.js';
import { readHostfile, type HostEntry } from '../launch/hostfile.js';
import { sshConnectArgs } from '../launch/ssh-launch.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'info';

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  /** A miss of a required check fails the run (and doctor exits 1); others only slow it. */
  required: boolean;
  detail: string;
  /** The command (or step) that fixes it, when it is not ok. */
  fix?: string;
}

export interface DoctorReport {
  /** Every required check passed. */
  ok: boolean;
  checks: DoctorCheck[];
}

export interface DoctorOptions {
  /** Also check every host of this hostfile over SSH. */
  hostfile?: string;
  /** Extra `ssh -o` options, as `launch` takes them. */
  sshOptions?: string[];
  /** Seconds to wait for each host (default 5). */
  sshTimeoutSeconds?: number;
  /** The ssh binary (default `ssh`). */
  ssh?: string;
}

/** scripts/packages.txt: the one list of Debian packages, shared with scripts/setup.sh. */
function packageList(): string[] {
  for (const rel of ['../../../scripts/packages.txt', '../../scripts/packages.txt']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p))
      return readFileSync(p, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
  }
  throw new Error('scripts/packages.txt is missing: this redblue checkout is incomplete');
}

function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
      if (e && e.code === 'ENOENT') resolve({ code: null, stdout, stderr, error: `${cmd} is not installed` });
      else if (e && e.killed)
        resolve({ code: null, stdout, stderr, error: `no answer within ${timeoutMs / 1000} s` });
      else resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}

async function packagesCheck(): Promise<DoctorCheck> {
  const want = packageList();
  const r = await run('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...want], 20_000);
  const name = 'Debian packages';
  if (r.error)
    return {
      name,
      status: 'fail',
      required: true,
      detail: `cannot ask dpkg (${r.error}): not a Debian or Ubuntu system?`,
      fix: `install the equivalents of: ${want.join(' ')}`,
    };
  const installed = new Set(
    r.stdout
      .split('\n')
      .filter((l) => l.endsWith('install ok installed'))
      .map((l) => l.split(' ')[0]!.replace(/:.*$/, '')),
  );
  const missing = want.filter((p) => !installed.has(p));
  return missing.length === 0
    ? { name, status: 'ok', required: true, detail: `all ${want.length} installed` }
    : {
        name,
        status: 'fail',
        required: true,
        detail: `${missing.length} of ${want.length} missing: ${missing.join(' ')}`,
        fix: `sudo apt-get install -y ${missing.join(' ')}   (or: sudo bash scripts/setup.sh)`,
      };
}

function addonCheck(): DoctorCheck {
  try {
    loadAddon();
    return { name: 'native addon', status: 'ok', required: true, detail: 'build/Release/redblue.node loads' };
  } catch (e) {
    return {
      name: 'native addon',
      status: 'fail',
      required: true,
      detail: e instanceof Error ? e.message : String(e),
      fix: 'npm run build   (or: bash scripts/setup.sh)',
    };
  }
}

function meminfo(key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : undefined;
}

function hugePagesCheck(): DoctorCheck {
  const total = meminfo('HugePages_Total') ?? 0;
  // Free counts pages promised to mappings that have not touched them yet (Rsvd): not for us.
  const free = Math.max(0, (meminfo('HugePages_Free') ?? 0) - (meminfo('HugePages_Rsvd') ?? 0));
  const sizeKb = meminfo('Hugepagesize') ?? 2048;
  const mounted = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[2] === 'hugetlbfs');
  const name = 'huge pages';
  const detail = `${free} of ${total} available (${formatBytes(sizeKb * 1024)} each), hugetlbfs ${mounted ? 'mounted' : 'not mounted'}`;
  if (total > 0 && free > 0 && mounted) return { name, status: 'ok', required: false, detail };
  const fixes = [
    ...(total === 0 || free === 0 ? ['sudo sysctl -w vm.nr_hugepages=128'] : []),
    ...(mounted ? [] : ['sudo mkdir -p /dev/hugepages && sudo mount -t hugetlbfs none /dev/hugepages']),
  ];
  return {
    name,
    status: 'warn',
    required: false,
    detail: `${detail}: weights, KV caches and shared segments fall back to transparent huge pages (more TLB misses)`,
    fix: fixes.join('; '),
  };
}

function numaCheck(): DoctorCheck {
  const t = readTopology();
  const nodes = t.nodes
    .map((n) => {
      // What a model's weights and KV caches could take now (planner/model-memory.ts checks it).
      const a = availableOnNode(n.physicalNode);
      const free = a
        ? ` (${formatBytes(a.bytes)} available${a.hugeFreeBytes ? `, ${formatBytes(a.hugeFreeBytes)} in free huge pages` : ''})`
        : '';
      return `node ${n.id}: ${n.cpus.length} cpu(s), ${formatBytes(n.memoryBytes)}${free}`;
    })
    .join('; ');
  return {
    name: 'NUMA nodes (hwloc)',
    status: 'info',
    required: false,
    detail:
      `${t.packages.length} package(s), ${t.nodes.length} node(s): ${nodes}` +
      (t.nodes.length === 1 ? ' (one executor; --virtual-nodes N splits the cpus to try more)' : ''),
  };
}

function cpuCheck(): DoctorCheck {
  const f = loadAddon().cpuFeatures();
  const names: [string, boolean][] = [
    ['avx2', f.avx2],
    ['f16c', f.f16c],
    ['avx512f', f.avx512f],
    ['avx512bw', f.avx512bw],
    ['avx512vl', f.avx512vl],
    ['avx512vnni', f.avx512vnni],
    ['avx512bf16', f.avx512bf16],
    ['amx-tile', f.amxTile],
    ['amx-bf16', f.amxBf16],
    ['amx-int8', f.amxInt8],
  ];
  const have = names.filter(([, v]) => v).map(([n]) => n);
  const path = kernelPaths().auto;
  let amx = 'no AMX';
  let fix: string | undefined;
  let status: CheckStatus = 'info';
  if (f.amxTile) {
    const granted = loadAddon().amxPermission();
    amx = granted
      ? 'AMX tile state granted by the kernel'
      : 'AMX present but the kernel refused its tile state';
    if (!granted) {
      status = 'warn';
      fix = 'run a Linux kernel ≥ 5.16 (arch_prctl ARCH_REQ_XCOMP_PERM)';
    }
  }
  if (!f.avx2) {
    status = 'warn';
    fix = 'no AVX2: the quantized kernels run their scalar reference (slow); use an x86-64-v3 or newer cpu';
  }
  return {
    name: 'cpu features',
    status,
    required: false,
    detail: `${have.join(' ') || 'none of the SIMD extensions'}; quantized kernels take the ${path} path; ${amx}`,
    ...(fix ? { fix } : {}),
  };
}

async function rdmaCheck(): Promise<DoctorCheck[]> {
  const devices = rdmaDevices().map((d) => d.name);
  const rdma: DoctorCheck = {
    name: 'RDMA devices',
    status: 'info',
    required: false,
    detail: devices.length
      ? `${devices.join(', ')} (executor --transport auto exchanges between host leaders over UCX)`
      : 'none (optional: executor --transport auto exchanges over gRPC/TCP)',
  };
  const ucx = await run('ucx_info', ['-d'], 10_000);
  let detail: string;
  if (ucx.error) detail = 'ucx_info not found (the set-up installs ucx-utils; only the diagnosis needs it)';
  else {
    const transports = [...new Set([...ucx.stdout.matchAll(/^#\s+Transport:\s+(\S+)/gm)].map((m) => m[1]!))];
    detail = transports.length ? `transports: ${transports.join(', ')}` : 'installed, no transports listed';
  }
  return [rdma, { name: 'UCX', status: 'info', required: false, detail }];
}

function shmCheck(): DoctorCheck {
  const name = '/dev/shm';
  try {
    accessSync('/dev/shm', constants.W_OK);
  } catch {
    return {
      name,
      status: 'fail',
      required: true,
      detail: '/dev/shm is missing or not writable: executors share memory there',
      fix: 'sudo mount -t tmpfs -o mode=1777 tmpfs /dev/shm',
    };
  }
  const s = statfsSync('/dev/shm');
  const free = s.bavail * s.bsize;
  const total = s.blocks * s.bsize;
  const detail = `${formatBytes(free)} free of ${formatBytes(total)}`;
  if (free < 1 << 30)
    return {
      name,
      status: 'warn',
      required: false,
      detail: `${detail}: staging areas and KV-cache exchanges need room there`,
      fix: 'sudo mount -o remount,size=50% /dev/shm   (or remove stale files: ls /dev/shm)',
    };
  return { name, status: 'ok', required: true, detail };
}

/**
 * Shared memory left by runs whose processes are gone (killed with SIGKILL, or a crashed test):
 * staging areas and shm segments named after their creator's pid. They hold /dev/shm space and,
 * on hugetlbfs, huge pages that new runs then lack. Runs remove them too; this says so first.
 */
function staleCheck(): DoctorCheck {
  const stale: string[] = [];
  let bytes = 0;
  const owner = (name: string): number | undefined => {
    const m = name.startsWith(AREA_PREFIX)
      ? /^(\d+)-/.exec(name.slice(AREA_PREFIX.length))
      : /^redblue-shm-[st](\d+)(?:-|$)/.exec(name);
    return m ? Number(m[1]) : undefined;
  };
  const paths = [...listSegments(), ...listAreas()];
  for (const path of paths) {
    const pid = owner(path.slice(path.lastIndexOf('/') + 1));
    if (pid === undefined || isAlive(pid)) continue;
    stale.push(path);
    try {
      bytes += statSync(path).size;
    } catch {
      // gone meanwhile
    }
  }
  if (stale.length === 0)
    return { name: 'stale shared memory', status: 'ok', required: false, detail: 'none left by dead runs' };
  const shown = stale.slice(0, 6).join(' ') + (stale.length > 6 ? ' …' : '');
  return {
    name: 'stale shared memory',
    status: 'warn',
    required: false,
    detail: `${stale.length} file(s), ${formatBytes(bytes)}, left by processes that are gone (their huge pages stay taken)`,
    fix: `rm ${shown}`,
  };
}

function openFilesCheck(): DoctorCheck {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(
    readFileSync('/proc/self/limits', 'utf8'),
  );
  const soft = m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : NaN;
  const detail = `soft limit ${m ? m[1] : 'unknown'}, hard ${m ? m[2] : 'unknown'}`;
  // Each executor holds sockets, shm segments and mappings; a launch holds one gRPC channel
  // and one data-path channel per host.
  if (!(soft < 4096)) return { name: 'open files', status: 'ok', required: false, detail };
  return {
    name: 'open files',
    status: 'warn',
    required: false,
    detail: `${detail}: large launches may run out of file descriptors`,
    fix: 'ulimit -n 65536   (for good: nofile in /etc/security/limits.conf)',
  };
}

async function hostCheck(e: HostEntry, o: DoctorOptions): Promise<DoctorCheck> {
  const timeout = (o.sshTimeoutSeconds ?? 5) * 1000;
  const name = `ssh ${e.user ? `${e.user}@` : ''}${e.host}`;
  const args = [...sshConnectArgs(e, o.sshOptions, Math.ceil(timeout / 1000)), `${e.command} --version`];
  const r = await run(o.ssh ?? 'ssh', args, timeout + 2000);
  if (r.code === 0)
    return { name, status: 'ok', required: true, detail: `reachable; redblue ${r.stdout.trim()} there` };
  const why = r.error ?? (r.stderr.trim().split('\n').pop() || `ssh exited with ${r.code}`);
  // ssh exits 255 for its own failures; anything else came from the remote command.
  const remote = r.code !== null && r.code !== 255;
  return {
    name,
    status: 'fail',
    required: true,
    detail: remote ? `reachable, but \`${e.command} --version\` failed there: ${why}` : `unreachable: ${why}`,
    fix: remote
      ? `install redblue on ${e.host}, or give its path with command="…" in the hostfile`
      : `check that ${e.host} is up and that \`ssh -o BatchMode=yes ${e.sshPort ? `-p ${e.sshPort} ` : ''}${e.user ? `${e.user}@` : ''}${e.host} true\` works (keys, known_hosts)`,
  };
}

/** Every check; the report's `ok` is false when a required one failed. */
export async function runDoctor(o: DoctorOptions = {}): Promise<DoctorReport> {
  const hosts = o.hostfile ? readHostfile(o.hostfile) : [];
  const addon = addonCheck();
  const native = addon.status === 'ok' ? [numaCheck(), cpuCheck()] : [];
  const [packages, rdma, ...hostChecks] = await Promise.all([
    packagesCheck(),
    rdmaCheck(),
    ...hosts.map((h) => hostCheck(h, o)),
  ]);
  const checks = [
    packages as DoctorCheck,
    addon,
    hugePagesCheck(),
    shmCheck(),
    staleCheck(),
    openFilesCheck(),
    ...native,
    ...(rdma as DoctorCheck[]),
    ...(hostChecks as DoctorCheck[]),
  ];
  return { ok: checks.every((c) => !(c.required && c.status === 'fail')), checks };
}
