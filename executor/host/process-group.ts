// Starts one executor process per node and watches them: an executor that dies unexpectedly
// fails the whole run with a message naming its rank, and stopping the group leaves no process
// behind (SIGTERM, then SIGKILL after a grace period).
import { spawn, type ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { fileURLToPath } from 'node:url';
import { settledWithin } from '../../common/wait.js';
import { LISTENING } from '../node/args.js';

export interface ExecutorSpec {
  rank: number;
  world: number;
  cpus: number[];
  memoryNode: number;
  /** gRPC address the executor listens on, e.g. unix:/tmp/redblue-123/rank-0.sock */
  address: string;
}

export class ExecutorDiedError extends Error {
  override name = 'ExecutorDiedError';
  constructor(
    readonly rank: number,
    readonly reason: string,
  ) {
    super(`executor rank ${rank} died (${reason})`);
  }
}

// The compiled executor: next to this file in dist/, or in dist/ when running from sources (tests).
const ENTRY = fileURLToPath(
  import.meta.url.endsWith('.ts')
    ? new URL('../../dist/executor/node/main.js', import.meta.url)
    : new URL('../node/main.js', import.meta.url),
);

export class ProcessGroup {
  private readonly children = new Map<number, ChildProcess>();
  private stopping = false;
  private failure: ExecutorDiedError | undefined;
  private readonly failureWaiters: ((e: ExecutorDiedError) => void)[] = [];
  private readonly stderrTail = new Map<number, string>();
  private readonly listeningNow = new Map<number, Promise<void>>();

  constructor(entry: string = ENTRY) {
    this.entry = entry;
  }
  private readonly entry: string;

  start(spec: ExecutorSpec, extraEnv: Record<string, string> = {}): void {
    const child = spawn(
      process.execPath,
      [
        // A young generation of 1 MiB (V8 grows it to 16): an executor's JS only steers, and the
        // default's idle semi-spaces were 6 MiB of its own memory, 2% of a 1B model's half.
        '--max-semi-space-size=1',
        this.entry,
        '--rank',
        String(spec.rank),
        '--world',
        String(spec.world),
        '--cpus',
        spec.cpus.join(','),
        '--memory-node',
        String(spec.memoryNode),
        '--listen',
        spec.address,
      ],
      // stdin is a lifeline: it reaches EOF when this process dies, however it dies. stdout
      // carries one line, LISTENING, once its server is up (see listening()).
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...extraEnv } },
    );
    this.children.set(spec.rank, child);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      const tail = (this.stderrTail.get(spec.rank) ?? '') + d;
      this.stderrTail.set(spec.rank, tail.slice(-2000));
    });
    child.on('exit', (code, signal) => {
      this.children.delete(spec.rank);
      if (this.stopping) return;
      const why = signal ? `killed by ${signal}` : `exit code ${code}`;
      const tail = (this.stderrTail.get(spec.rank) ?? '').trim();
      this.fail(
        new ExecutorDiedError(
          spec.rank,
          tail
            ? `${why}: ${tail
                .split('\n')
                .filter((l) => l.trim())
                .slice(-4)
                .join(' | ')}`
            : why,
        ),
      );
    });
    child.on('error', (err) => this.fail(new ExecutorDiedError(spec.rank, err.message)));
    // After the handlers above, so that the group's failure (naming the cause from stderr) is set
    // first. Settled either way: a start that waits on it under a deadline must not keep the
    // deadline's timer, and with it the process, alive after an executor died before listening.
    const listening = new Promise<void>((resolve, reject) => {
      let seen = '';
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (d: string) => {
        seen = (seen + d).slice(-64);
        if (seen.includes(LISTENING)) resolve();
      });
      child.once('exit', (code, signal) =>
        reject(new ExecutorDiedError(spec.rank, signal ? `killed by ${signal}` : `exit code ${code}`)),
      );
      child.once('error', (err) => reject(new ExecutorDiedError(spec.rank, err.message)));
    });
    listening.catch(() => undefined); // awaited by start(), if at all; the group's failure names the cause
    this.listeningNow.set(spec.rank, listening);
  }

  /**
   * Resolves once executor `rank` says its server is up (connecting before that meets a missing
   * socket, and grpc-js tries again only after a back-off: ~100 ms of every cluster's start-up).
   * Rejects if it exits first; guard() it for the error that names why (its stderr's last lines).
   */
  listening(rank: number): Promise<void> {
    return (
      this.listeningNow.get(rank) ?? Promise.reject(new Error(`no executor of rank ${rank} was started`))
    );
  }

  pids(): number[] {
    return [...this.children.values()].map((c) => c.pid!).filter((p) => p !== undefined);
  }

  /**
   * Rejects as soon as any executor dies, until done(): every guarded call used to leave its
   * waiter behind, so a long generation kept ~1 KB per step (bench soak: +56 MB over 20,000 tokens).
   */
  private watch(): { promise: Promise<never>; done(): void } {
    let waiter: ((e: ExecutorDiedError) => void) | undefined;
    const promise = new Promise<never>((_, reject) => {
      if (this.failure) reject(this.failure);
      else this.failureWaiters.push((waiter = reject));
    });
    return {
      promise,
      done: () => {
        const i = waiter ? this.failureWaiters.indexOf(waiter) : -1;
        if (i >= 0) this.failureWaiters.splice(i, 1);
      },
    };
  }

  /**
   * Races `work` against an executor dying. When `work` fails first (a dropped connection, a
   * collective that saw its peer vanish), waits briefly for the exit that usually caused it, so
   * the error names the dead rank rather than a symptom.
   */
  async guard<T>(work: Promise<T>, settleMs = 1000): Promise<T> {
    const w = this.watch();
    const f = w.promise;
    f.catch(() => undefined);
    try {
      return await Promise.race([work, f]);
    } catch (err) {
      if (err instanceof ExecutorDiedError) throw err;
      // A dropped connection (gRPC UNAVAILABLE, or a socket reset under a raw read) is an
      // executor going away: its exit is surely coming, so wait for it longer than for an
      // ordinary error (on a loaded machine the exit event has come more than a second after the
      // drop; a CI run once reported `read ECONNRESET` instead of the SIGKILL that caused it).
      const code = (err as { code?: unknown } | null)?.code;
      const lost = code === grpc.status.UNAVAILABLE || code === 'ECONNRESET' || code === 'EPIPE';
      const died = await settledWithin(f, lost ? Math.max(settleMs, 5000) : settleMs);
      throw died instanceof ExecutorDiedError ? died : err;
    } finally {
      w.done();
    }
  }

  private fail(e: ExecutorDiedError): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.failureWaiters.splice(0)) w(e);
  }

  /** Stops every executor: SIGTERM, then SIGKILL after `graceMs`. Resolves when all exited. */
  async stop(graceMs = 2000): Promise<void> {
    this.stopping = true;
    const alive = [...this.children.values()];
    await Promise.all(
      alive.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), graceMs);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    this.children.clear();
  }
}
