// Helpers for the multi-host tests: executors started inside pretend hosts (network namespaces),
// the CLI run inside a namespace, certificates and ssh keys made in a temp dir.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../bench/netns-lab.js';
import { segmentDirs } from '../../transport/shm.js';
import { cliPath, repoRoot } from '../helpers/cli.js';

export interface Started {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
}

/** Starts `redblue executor` in host i of the lab; resolves when it prints "ready PORT". */
export function startExecutor(
  lab: Lab,
  i: number,
  args: string[],
  timeoutMs = 20_000,
  /** Its working directory (relative paths it is given resolve there); default the repository. */
  cwd = repoRoot,
  /** Its environment (default ours). */
  env: NodeJS.ProcessEnv = process.env,
): Promise<Started> {
  return new Promise((resolve, reject) => {
    const proc = lab.spawn(i, process.execPath, [cliPath, 'executor', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd,
      env,
    });
    let err = '';
    let out = '';
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => (err = (err + d).slice(-8000)));
    proc.stdout!.setEncoding('utf8');
    const timer = setTimeout(() => reject(new Error(`executor in host ${i} not ready: ${err}`)), timeoutMs);
    proc.stdout!.on('data', (d: string) => {
      out += d;
      const m = /ready (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), stderr: () => err });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`executor in host ${i} exited (${code}): ${err}`));
    });
  });
}

/** `redblue executor` flags for a supervisor in namespace i: one core (cpu i), one node, a token. */
export function oneCoreArgs(lab: Lab, i: number, port: number, tokenFile: string): string[] {
  return [
    '--listen',
    `${lab.addresses[i]}:${port}`,
    '--cpus',
    String(i),
    '--virtual-nodes',
    '1',
    '--token-file',
    tokenFile,
  ];
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
  /** When (Date.now()) each piece of stderr arrived: what was said when, not only at exit. */
  stderrAt: Array<{ at: number; text: string }>;
}

/** When the run's stderr first matched `re` (Date.now()), or undefined. */
export function saidAt(run: CliRun, re: RegExp): number | undefined {
  let text = '';
  for (const c of run.stderrAt) {
    text += c.text;
    if (re.test(text)) return c.at;
  }
  return undefined;
}

/** Runs the CLI inside host i (bounded by `timeoutMs`). */
export function cliIn(
  lab: Lab,
  i: number,
  args: string[],
  timeoutMs = 60_000,
  input?: string,
): Promise<CliRun> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const proc = lab.spawn(i, process.execPath, [cliPath, ...args], {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      cwd: repoRoot,
    });
    if (input !== undefined) proc.stdin!.end(input);
    let out = '';
    let err = '';
    const stderrAt: CliRun['stderrAt'] = [];
    proc.stdout!.setEncoding('utf8');
    proc.stderr!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => (out += d));
    proc.stderr!.on('data', (d: string) => {
      err += d;
      stderrAt.push({ at: Date.now(), text: d });
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : -1),
        stdout: out,
        stderr: err,
        ms: Date.now() - t0,
        stderrAt,
      });
    });
  });
}

export { makeCerts } from '../../bench/certs.js';
export { childrenOf } from '../helpers/cli.js';

/** redblue's shared files (segments, staging areas; /dev/shm and hugetlbfs) named after these pids. */
export function shmOf(pids: number[]): string[] {
  return segmentDirs()
    .flatMap((d) => readdirSync(d))
    .filter(
      (f) => f.startsWith('redblue-') && pids.some((p) => new RegExp(`(^|[^0-9])${p}([^0-9]|$)`).test(f)),
    );
}

/** Polls `check` every 100 ms until it is true or `ms` pass; returns the last result. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (let i = 0; i < 1000 && Date.now() < end; i++) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

/** A throwaway sshd inside host i (its own key, config and authorized key, all in `dir`). */
export function startSshd(lab: Lab, i: number, dir: string): { proc: ChildProcess; knownHost: string } {
  const hostKey = join(dir, `sshd-${i}-hostkey`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey], { stdio: 'pipe' });
  const config = join(dir, `sshd-${i}-config`);
  writeFileSync(
    config,
    [
      'Port 22',
      `ListenAddress ${lab.addresses[i]}`,
      `HostKey ${hostKey}`,
      'PidFile none',
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      // A vanished client ends the session (and the executor it started) within seconds.
      'ClientAliveInterval 2',
      'ClientAliveCountMax 2',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const proc = lab.spawn(i, '/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: 'ignore' });
  const pub = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  return { proc, knownHost: `${lab.addresses[i]} ${pub}` };
}

/** A user key pair for ssh, authorised for the lab's sshds. */
export function makeUserKey(dir: string): string {
  const key = join(dir, 'userkey');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key], { stdio: 'pipe' });
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`));
  return key;
}
