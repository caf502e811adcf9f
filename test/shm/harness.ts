// Runs the ranks of a shm test as real, separate processes (rank-worker.mjs) and collects
// their IPC messages. The worker imports the compiled TypeScript (dist/), rebuilt here if stale.
import { fork, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..');
export const workerPath = join(here, 'rank-worker.mjs');

const compiled: [string, string][] = [
  ['transport/shm.ts', 'dist/transport/shm.js'],
  ['bench/collectives.ts', 'dist/bench/collectives.js'],
  ['bench/collectives-worker.ts', 'dist/bench/collectives-worker.js'],
  ['bench/mpi-reference.ts', 'dist/bench/mpi-reference.js'],
  ['cli/main.ts', 'dist/cli/main.js'],
];

export function ensureBuilt(): void {
  const stale = compiled.some(([src, out]) => {
    const o = join(root, out);
    return !existsSync(o) || statSync(o).mtimeMs < statSync(join(root, src)).mtimeMs;
  });
  if (stale) {
    execFileSync(
      process.execPath,
      [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
      {
        cwd: root,
        stdio: 'inherit',
      },
    );
  }
}

export interface RankMessage {
  type: string;
  [key: string]: unknown;
}

export interface Rank {
  rank: number;
  child: ChildProcess;
  messages: RankMessage[];
  /** Resolves with the first message of `type` (and when it arrived). */
  next(type: string): Promise<RankMessage & { at: number }>;
  exited: Promise<number | null>;
}

let counter = 0;
export function uniqueName(tag: string): string {
  return `t${process.pid}-${tag}-${counter++}`;
}

export function startRank(cfg: Record<string, unknown> & { rank: number }): Rank {
  const child = fork(workerPath, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: RankMessage[] = [];
  const waiters: { type: string; resolve: (m: RankMessage & { at: number }) => void }[] = [];
  child.on('message', (m: RankMessage) => {
    const stamped = { ...m, at: Date.now() };
    messages.push(stamped);
    for (let i = waiters.length - 1; i >= 0; --i) {
      if (waiters[i]!.type === m.type) waiters.splice(i, 1)[0]!.resolve(stamped);
    }
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return {
    rank: cfg.rank,
    child,
    messages,
    exited,
    next(type) {
      const seen = messages.find((m) => m.type === type);
      if (seen) return Promise.resolve(seen as RankMessage & { at: number });
      return new Promise((resolve, reject) => {
        waiters.push({ type, resolve });
        void exited.then(() =>
          setTimeout(() => reject(new Error(`rank ${cfg.rank} exited without sending '${type}'`)), 100),
        );
      });
    },
  };
}

/** Starts `size` ranks of one scenario and returns each rank's 'result' message. */
export async function runRanks(size: number, cfg: Record<string, unknown>): Promise<RankMessage[]> {
  const ranks = Array.from({ length: size }, (_, rank) => startRank({ ...cfg, rank, size }));
  try {
    return await Promise.all(ranks.map((r) => r.next('result')));
  } finally {
    await Promise.all(
      ranks.map((r) => {
        if (r.child.exitCode === null) r.child.kill('SIGKILL');
        return r.exited;
      }),
    );
  }
}
