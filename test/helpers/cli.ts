// Runs the built CLI (dist/) as a user would, capturing its output and exit code.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const cliPath = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  pid: number;
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: SpawnSyncOptions = {}): CliResult {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    cwd: repoRoot,
    ...options,
  });
  return {
    pid: r.pid ?? -1,
    code: r.status ?? -1,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
  };
}

/**
 * Shared-memory files a run left behind: redblue names them after the coordinator's pid
 * (redblue-run-<pid>-…, redblue-shm-s<pid>[-n]), so other runs on the machine do not interfere.
 */
export function leftovers(pid: number): string[] {
  const dirs = ['/dev/shm', ...(existsSync('/dev/hugepages') ? ['/dev/hugepages'] : [])];
  const mine = new RegExp(`^redblue-(run-${pid}-|shm-s${pid}(-\\d+)?$)`);
  return dirs.flatMap((d) => readdirSync(d).filter((f) => mine.test(f)));
}

/** The fields of /proc/PID/stat after the command name (state first, then the parent's pid), or undefined once it is gone. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // the process went away while we looked
  }
}

/** Whether `pid` is running: a zombie (killed, its parent gone, not yet reaped) is not. */
export function running(pid: number): boolean {
  const f = statFields(pid);
  return f !== undefined && f[0] !== 'Z';
}

/** pids of live processes whose parent is `ppid` */
export function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(d);
    if (f && Number(f[1]) === ppid && f[0] !== 'Z') out.push(Number(d));
  }
  return out;
}
