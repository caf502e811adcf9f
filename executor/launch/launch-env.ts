// Placement by a batch system: `srun` (Slurm) and `mpirun` (Open MPI) start one process per task
// and say in environment variables which task it is. A supervisor started that way reports its
// place so the coordinator can order hosts; `launch --slurm` reads the job's host list.

export interface LaunchPlace {
  source: 'slurm' | 'ompi';
  /** Index of this task in the job, and the number of tasks. */
  rank: number;
  size: number;
  /** Index of this task on its host, and the tasks on the host. */
  localRank: number;
  localSize: number;
  /** Index of the host in the job (Slurm's SLURM_NODEID; Open MPI: rank / local size). */
  hostIndex: number;
  hostCount: number;
  /** The job's hosts (Slurm only, expanded from SLURM_JOB_NODELIST). */
  hosts?: string[];
}

function int(env: NodeJS.ProcessEnv, name: string, required: boolean): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') {
    if (required) throw new Error(`${name} is not set`);
    return undefined;
  }
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n))
    throw new Error(`${name} must be a whole number (at most 2^53), got '${v}'`);
  return n;
}

/** Slurm, then Open MPI; undefined when neither placed this process. */
export function launchPlace(env: NodeJS.ProcessEnv = process.env): LaunchPlace | undefined {
  if (env.SLURM_PROCID !== undefined) {
    const rank = int(env, 'SLURM_PROCID', true)!;
    const size = int(env, 'SLURM_NTASKS', false) ?? int(env, 'SLURM_NPROCS', true)!;
    const localRank = int(env, 'SLURM_LOCALID', false) ?? 0;
    const hostIndex = int(env, 'SLURM_NODEID', false) ?? 0;
    const list = env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST;
    const hosts = list ? expandHostlist(list) : undefined;
    const hostCount =
      int(env, 'SLURM_JOB_NUM_NODES', false) ?? int(env, 'SLURM_NNODES', false) ?? hosts?.length ?? 1;
    const localSize = tasksOnNode(env.SLURM_TASKS_PER_NODE, hostIndex) ?? 1;
    return check({
      source: 'slurm',
      rank,
      size,
      localRank,
      localSize,
      hostIndex,
      hostCount,
      ...(hosts ? { hosts } : {}),
    });
  }
  if (env.OMPI_COMM_WORLD_RANK !== undefined) {
    const rank = int(env, 'OMPI_COMM_WORLD_RANK', true)!;
    const size = int(env, 'OMPI_COMM_WORLD_SIZE', true)!;
    const localRank = int(env, 'OMPI_COMM_WORLD_LOCAL_RANK', false) ?? 0;
    const localSize = int(env, 'OMPI_COMM_WORLD_LOCAL_SIZE', false) ?? 1;
    // Open MPI says no host index: with the default by-slot mapping and the same number of tasks
    // on every host, ranks fill hosts in order.
    const hostIndex = Math.floor(rank / localSize);
    const hostCount = int(env, 'OMPI_MCA_orte_num_nodes', false) ?? Math.ceil(size / localSize);
    return check({ source: 'ompi', rank, size, localRank, localSize, hostIndex, hostCount });
  }
  return undefined;
}

function check(p: LaunchPlace): LaunchPlace {
  const v = p.source === 'slurm' ? 'Slurm' : 'Open MPI';
  if (p.size < 1 || p.rank >= p.size)
    throw new Error(`${v}: task ${p.rank} is not below the task count ${p.size}`);
  if (p.localSize < 1 || p.localRank >= p.localSize)
    throw new Error(`${v}: local task ${p.localRank} is not below the local task count ${p.localSize}`);
  if (p.hostIndex >= p.hostCount)
    throw new Error(`${v}: host ${p.hostIndex} is not below the host count ${p.hostCount}`);
  return p;
}

/** SLURM_TASKS_PER_NODE, e.g. "2(x3),1": tasks on host `index`. */
export function tasksOnNode(spec: string | undefined, index: number): number | undefined {
  if (!spec) return undefined;
  let i = 0;
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(part.trim());
    const tasks = Number(m?.[1]);
    const count = Number(m?.[2] ?? 1);
    if (!m || !Number.isSafeInteger(tasks) || !Number.isSafeInteger(count))
      throw new Error(`SLURM_TASKS_PER_NODE: cannot read '${part}'`);
    if (index < i + count) return tasks;
    i += count;
  }
  return undefined;
}

/** Most names a host list may expand to (no job has more hosts; bounds time and memory). */
const MAX_HOSTS = 100_000;

/** Slurm host lists: "node[01-03,07],gpu5,rack[1-2]-n[1-2]" → every name, in order. */
export function expandHostlist(list: string): string[] {
  const out: string[] = [];
  // Split on commas outside brackets.
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of list) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0) throw new Error(`host list '${list}': unbalanced brackets`);
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new Error(`host list '${list}': unbalanced brackets`);
  parts.push(cur);
  // Counted as it grows: "a[0-99999][0-99999]" must fail at once, not after 10^10 names.
  for (const p of parts) if (p.trim()) expandOne(p.trim(), list, out, MAX_HOSTS - out.length);
  return out;
}

/** Appends the names of one pattern to `out`, failing beyond `room` of them. */
function expandOne(pattern: string, list: string, out: string[], room: number): void {
  const m = /^([^[]*)\[([^\]]*)\](.*)$/.exec(pattern);
  if (!m) {
    if (room < 1) tooMany(list);
    out.push(pattern);
    return;
  }
  const [, prefix, ranges, rest] = m as unknown as [string, string, string, string];
  const tails: string[] = [];
  expandOne(rest, list, tails, room);
  let left = room;
  for (const r of ranges.split(',')) {
    const mm = /^(\d+)(?:-(\d+))?$/.exec(r.trim());
    if (!mm) throw new Error(`host list '${list}': cannot read range '${r}'`);
    const lo = Number(mm[1]);
    const hi = Number(mm[2] ?? mm[1]);
    // Past 2^53, i++ no longer changes i: the loop below would never end.
    if (!Number.isSafeInteger(hi) || hi < lo || hi - lo > MAX_HOSTS)
      throw new Error(`host list '${list}': bad range '${r}'`);
    left -= (hi - lo + 1) * tails.length;
    if (left < 0) tooMany(list);
    const width = mm[1]!.length;
    for (let i = lo; i <= hi; i++)
      for (const t of tails) out.push(`${prefix}${String(i).padStart(width, '0')}${t}`);
  }
}

function tooMany(list: string): never {
  throw new Error(`host list '${list}' expands to more than ${MAX_HOSTS} hosts`);
}
