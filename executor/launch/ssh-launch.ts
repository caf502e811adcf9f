// Starts `redblue executor` on every host of a hostfile over SSH (the OpenSSH client, key-based,
// never a password prompt). The token travels on the ssh connection's stdin, never on a command
// line; the remote executor stops when that stdin closes, so ending (or losing) the ssh session
// stops the host. Waits for every host's "ready PORT" line.
import { spawn, type ChildProcess } from 'node:child_process';
import type { HostEntry } from './hostfile.js';

export interface SshLaunchOptions {
  token: string;
  /** Extra `ssh -o` options, e.g. StrictHostKeyChecking=yes, UserKnownHostsFile=... */
  sshOptions?: string[];
  /** Extra arguments for the remote `redblue executor` (e.g. TLS file paths on that host). */
  executorArgs?: string[];
  readyTimeoutMs?: number;
  onProgress?: (ready: number, total: number) => void;
  /** The ssh binary (tests may point at a wrapper). */
  ssh?: string;
}

/** POSIX shell single-quoting for the remote command line. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function sshArgs(e: HostEntry, o: Pick<SshLaunchOptions, 'sshOptions' | 'executorArgs'>): string[] {
  const listen = e.listen ?? e.host;
  const bind = listen.includes(':') && !listen.startsWith('[') ? `[${listen}]` : listen;
  const remote = [
    ...e.command.split(/\s+/).filter(Boolean),
    'executor',
    '--listen',
    `${bind}:${e.port}`,
    '--token-stdin',
    '--exit-on-eof',
    ...(e.virtualNodes ? ['--virtual-nodes', String(e.virtualNodes)] : []),
    ...(e.dataPort !== undefined ? ['--data-port', String(e.dataPort)] : []),
    ...(o.executorArgs ?? []),
    // After launch's own --transport: the host's line has the last word.
    ...(e.transport ? ['--transport', e.transport] : []),
  ]
    .map(shellQuote)
    .join(' ');
  return [...sshConnectArgs(e, o.sshOptions, 10), remote];
}

/**
 * ssh's arguments up to the remote command: key-based only (never a password prompt), the
 * hostfile's user, port, identity and known_hosts, and a dead link noticed within seconds.
 */
export function sshConnectArgs(
  e: HostEntry,
  sshOptions: string[] = [],
  connectTimeoutSeconds = 10,
): string[] {
  return [
    '-T',
    '-o',
    'BatchMode=yes',
    '-o',
    `ConnectTimeout=${connectTimeoutSeconds}`,
    // A dead link ends the ssh session within seconds (and with it the remote executor).
    '-o',
    'ServerAliveInterval=2',
    '-o',
    'ServerAliveCountMax=2',
    ...(e.identity ? ['-i', e.identity, '-o', 'IdentitiesOnly=yes'] : []),
    ...(e.sshPort ? ['-p', String(e.sshPort)] : []),
    ...(e.knownHosts ? ['-o', `UserKnownHostsFile=${e.knownHosts}`, '-o', 'StrictHostKeyChecking=yes'] : []),
    ...sshOptions.flatMap((x) => ['-o', x]),
    e.user ? `${e.user}@${e.host}` : e.host,
  ];
}

export class SshLauncher {
  private readonly procs: ChildProcess[] = [];
  private stopping = false;
  private failure: Error | undefined;
  private readonly waiters: ((e: Error) => void)[] = [];

  /** Starts every host; resolves with their gRPC addresses once all are ready. */
  async start(entries: HostEntry[], o: SshLaunchOptions): Promise<string[]> {
    let ready = 0;
    o.onProgress?.(0, entries.length);
    return Promise.all(
      entries.map(
        (e, i) =>
          new Promise<string>((resolve, reject) => {
            const label = `host ${i} (${e.user ? `${e.user}@` : ''}${e.host})`;
            const p = spawn(o.ssh ?? 'ssh', sshArgs(e, o), { stdio: ['pipe', 'pipe', 'pipe'] });
            this.procs.push(p);
            p.stdin!.on('error', () => undefined);
            p.stdin!.write(`${o.token}\n`);
            let out = '';
            let err = '';
            let isReady = false;
            const timer = setTimeout(() => {
              reject(
                new Error(`${label}: not ready after ${(o.readyTimeoutMs ?? 60_000) / 1000} s${tail(err)}`),
              );
            }, o.readyTimeoutMs ?? 60_000);
            p.stdout!.setEncoding('utf8');
            p.stdout!.on('data', (d: string) => {
              out += d;
              const m = /^ready (\d+)$/m.exec(out);
              if (m && !isReady) {
                isReady = true;
                clearTimeout(timer);
                o.onProgress?.(++ready, entries.length);
                const host = e.host.includes(':') && !e.host.startsWith('[') ? `[${e.host}]` : e.host;
                resolve(`${host}:${m[1]}`);
              }
            });
            p.stderr!.setEncoding('utf8');
            p.stderr!.on('data', (d: string) => {
              err = (err + d).slice(-4000);
            });
            p.on('error', (x) => {
              clearTimeout(timer);
              reject(new Error(`${label}: cannot run ssh: ${x.message}`));
            });
            p.on('exit', (code, signal) => {
              clearTimeout(timer);
              const why = `${label}: ssh exited (${signal ?? `code ${code}`})${tail(err)}`;
              if (!isReady) reject(new Error(why));
              else if (!this.stopping) this.fail(new Error(why));
            });
          }),
      ),
    );
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.waiters.splice(0)) w(e);
  }

  /** Rejects when a host's ssh session ends while we still need it. */
  failed(): Promise<never> {
    return new Promise((_, reject) => {
      if (this.failure) reject(this.failure);
      else this.waiters.push(reject);
    });
  }

  /** Closes every ssh stdin (the executors stop), then terminates what is left. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t1 = setTimeout(() => p.kill('SIGTERM'), graceMs);
            const t2 = setTimeout(() => p.kill('SIGKILL'), graceMs * 2);
            p.once('exit', () => {
              clearTimeout(t1);
              clearTimeout(t2);
              resolve();
            });
            p.stdin?.end();
          }),
      ),
    );
  }
}

function tail(s: string): string {
  const lines = s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-3);
  return lines.length ? `: ${lines.join(' | ')}` : '';
}
