// Command-line arguments of an executor process (started by the coordinator, not by users).
/** What an executor writes to its stdout once its server is up (host/process-group.ts waits on it). */
export const LISTENING = 'redblue-executor-listening';

export interface ExecutorArgs {
  rank: number;
  world: number;
  cpus: number[];
  memoryNode: number;
  listen: string;
}

export function parseExecutorArgs(argv: string[]): ExecutorArgs {
  const get = (flag: string): string => {
    const i = argv.indexOf(flag);
    const v = i >= 0 ? argv[i + 1] : undefined;
    if (v === undefined) throw new Error(`executor: missing ${flag}`);
    return v;
  };
  const int = (flag: string): number => {
    const n = Number(get(flag));
    if (!Number.isInteger(n) || n < 0) throw new Error(`executor: ${flag} must be a non-negative integer`);
    return n;
  };
  const cpus = get('--cpus')
    .split(',')
    .map((c) => Number(c));
  if (cpus.length === 0 || cpus.some((c) => !Number.isInteger(c) || c < 0)) {
    throw new Error('executor: --cpus must be a comma-separated list of cpu ids');
  }
  const a = {
    rank: int('--rank'),
    world: int('--world'),
    cpus,
    memoryNode: int('--memory-node'),
    listen: get('--listen'),
  };
  if (a.rank >= a.world) throw new Error(`executor: rank ${a.rank} is not below world size ${a.world}`);
  return a;
}
