// `redblue generate` survives a lost executor: executors are killed (SIGKILL) from outside while
// it runs on 3 virtual nodes, mid-generation and again while it recovers; the split is planned
// again on the nodes left, the prompt and the tokens so far are processed again, and the greedy
// text is the text of a run that never failed. Killing every executor, each time new ones start,
// ends in a clear error; --on-failure abort fails at the first loss. Nothing is left behind.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY, writeSyntheticModel } from '../../model/synth.js';
import { childrenOf, cliPath, leftovers, repoRoot, runCli } from '../helpers/cli.js';
import { tinyLlamaQ4_0 } from '../helpers/model-shapes.js';
import { planModelSplit } from '../../planner/model-split.js';
import { shortfall } from '../../executor/coordinator/generate-run.js';
import type { TopologyNode } from '../../native/topology.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-recovery-'));
const model = join(dir, 'tiny-f16.gguf');
// Long enough that a kill lands mid-generation (a few hundred tokens a second here).
const ARGS = ['-p', 'Once upon a time', '-n', '400', '--temp', '0', '--virtual-nodes', '3', '--ctx', '480'];
let reference = '';

beforeAll(() => {
  // f16: greedy tokens do not depend on how many executors share a layer (parity.test.ts).
  writeSyntheticModel(model, { arch: 'llama', ...TINY, types: { default: 'f16' }, seed: 11 });
  const r = runCli(['generate', '-m', model, ...ARGS]);
  expect(r.code, r.stderr).toBe(0);
  reference = r.stdout;
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** User and system cpu time of a process, seconds (/proc/PID/stat, 100 ticks a second). */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** The executors of process `pid` (children running the node executor), by rank. */
function executorsOf(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const c of childrenOf(pid)) {
    try {
      const cmd = readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0');
      const i = cmd.indexOf('--rank');
      if (cmd.some((a) => a.endsWith('node/main.js')) && i >= 0) out.set(Number(cmd[i + 1]), c);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/**
 * Runs generate; `act(state)` is called every 20 ms with what it printed so far and may kill
 * executors; bounded at 60 s.
 */
function generateWhile(
  extra: string[],
  act: (s: { stdout: string; stderr: string; pid: number; killed: number[] }) => void,
): Promise<Run> {
  return cliWhile(['generate', '-m', model, ...ARGS, ...extra], act);
}

function cliWhile(
  args: string[],
  act: (s: { stdout: string; stderr: string; pid: number; killed: number[] }) => void,
): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cliPath, ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = { stdout: '', stderr: '', pid: p.pid!, killed: [] as number[] };
    p.stdout.setEncoding('utf8').on('data', (d: string) => (s.stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (s.stderr += d));
    const timer = setInterval(() => act(s), 20);
    const limit = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearInterval(timer);
      clearTimeout(limit);
      resolve({ code, stdout: s.stdout, stderr: s.stderr, pid: s.pid });
    });
  });
}

function kill(pid: number | undefined, killed: number[]): void {
  if (pid === undefined || killed.includes(pid)) return;
  killed.push(pid);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

const generated = (s: { stdout: string }) => s.stdout.length - 'Once upon a time'.length;

describe('generate goes on when an executor dies', () => {
  it('killed mid-generation: the same greedy text on the executors left, and the loss reported', async () => {
    const r = await generateWhile([], (s) => {
      if (s.killed.length === 0 && generated(s) > 20) kill(executorsOf(s.pid).get(1), s.killed);
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(reference);
    expect(r.stderr).toMatch(
      /lost executor rank 1 \(cpus [\d,]+\) \(killed by SIGKILL\); going on with 2 executor\(s\)/,
    );
    expect(r.stderr).toMatch(
      /lost: +executor rank 1 \(cpus [\d,]+\) after [1-9]\d* generated tokens: killed by SIGKILL; went on with 2 executor\(s\) after [\d.]+ s/,
    );
    expect(r.stderr).toMatch(/on 2 executor\(s\)/);
    expect(leftovers(r.pid)).toEqual([]);
  }, 90_000);

  it('killed before the first token (while loading and processing the prompt): the same text', async () => {
    const r = await generateWhile([], (s) => {
      const ex = executorsOf(s.pid);
      if (s.killed.length === 0 && ex.size === 3) kill(ex.get(1), s.killed);
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(reference);
    expect(r.stderr).toMatch(/lost: +executor rank 1 \(cpus [\d,]+\) after 0 generated tokens/);
    expect(leftovers(r.pid)).toEqual([]);
  }, 90_000);

  it('killed again while recovering: goes on with the one left, same text', async () => {
    let before = new Set<number>();
    const r = await generateWhile([], (s) => {
      if (s.killed.length === 0 && generated(s) > 20) {
        before = new Set(executorsOf(s.pid).values());
        kill(executorsOf(s.pid).get(1), s.killed);
      } else if (s.killed.length === 1 && /going on with 2/.test(s.stderr)) {
        // The survivors' new executors, as they start and load.
        const fresh = [...executorsOf(s.pid).entries()].filter(([, pid]) => !before.has(pid));
        const one = fresh.find(([rank]) => rank === 1);
        if (one) kill(one[1], s.killed);
      }
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(reference);
    expect(r.stderr.match(/going on with/g)).toHaveLength(2);
    expect(r.stderr).toMatch(/going on with 1 executor\(s\)/);
    expect(leftovers(r.pid)).toEqual([]);
  }, 90_000);

  it('every executor killed, each time new ones start: a clear error, no hang, nothing left', async () => {
    const r = await generateWhile([], (s) => {
      if (generated(s) < 0 && s.killed.length === 0) return; // let it load first
      for (const pid of executorsOf(s.pid).values()) kill(pid, s.killed);
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/died \(killed by SIGKILL\), and no executor is left to go on with/);
    expect(executorsOf(r.pid).size).toBe(0);
    expect(leftovers(r.pid)).toEqual([]);
  }, 90_000);

  it('--on-failure abort: the first loss ends the run, naming the executor', async () => {
    const r = await generateWhile(['--on-failure', 'abort'], (s) => {
      if (s.killed.length === 0 && generated(s) > 20) kill(executorsOf(s.pid).get(2), s.killed);
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/executor rank 2 died \(killed by SIGKILL\)/);
    expect(r.stderr).not.toMatch(/going on with/);
    expect(leftovers(r.pid)).toEqual([]);
  }, 90_000);
});

describe('run gemm goes on when an executor dies', () => {
  it('computes only the C chunks not done on the executors left, verified against OpenBLAS', async () => {
    // 3072³ on 3 executors: one C chunk each (the plan splits m and n, not k), marked done in the
    // staging area's done array (12 bytes after A, B and C) once in place. Rank 1 is paused as it
    // starts (0.05 s of cpu after the area appeared: its chunk, 19 GFLOP, may take only ~0.2 s of
    // cpu on a fast day, and one paused later may have marked it already) until ranks 0 and 2
    // have marked theirs (they then wait at the reduction), and killed: only its chunk is lost.
    let phase: 'start' | 'paused' | 'killed' = 'start';
    let cpuAtArea = -1;
    const r = await cliWhile(
      [
        'run',
        'gemm',
        '--m',
        '3072',
        '--n',
        '3072',
        '--k',
        '3072',
        '--virtual-nodes',
        '3',
        '--verify',
        '--json',
      ],
      (s) => {
        const ex = executorsOf(s.pid);
        const area = leftovers(s.pid).find((f) => f.includes('gemm'));
        const one = ex.get(1);
        if (phase === 'start' && area && one) {
          const cpu = cpuSeconds(one);
          if (cpuAtArea < 0) cpuAtArea = cpu;
          else if (cpu - cpuAtArea > 0.05) {
            process.kill(one, 'SIGSTOP');
            phase = 'paused';
          }
        } else if (phase === 'paused' && area) {
          // The done array follows A, B and C (no partial slots: the plan does not split k); the
          // area is on hugetlbfs (its file rounded up to 2 MiB pages) or in /dev/shm.
          const flags = new Uint32Array(3);
          try {
            const path = ['/dev/hugepages', '/dev/shm'].map((d) => `${d}/${area}`).find((f) => existsSync(f));
            const fd = openSync(path!, 'r');
            try {
              readSync(fd, new Uint8Array(flags.buffer), 0, 12, 3 * 3072 * 3072 * 4);
            } finally {
              closeSync(fd);
            }
          } catch {
            return;
          }
          if (flags[0] === 1 && flags[2] === 1 && flags[1] === 0) {
            kill(ex.get(1), s.killed);
            phase = 'killed';
          }
        }
      },
    );
    expect(phase).toBe('killed');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /executor rank 1 died \(killed by SIGKILL\); computing the C chunks not done on 2 executor\(s\)/,
    );
    const out = JSON.parse(r.stdout) as {
      verify: { ok: boolean };
      perRank: { rank: number; bricks: number }[];
      chunks: { planned: number; recomputed: number };
      recoveries: { lostRank: number; executors: number; seconds: number }[];
    };
    expect(out.verify.ok).toBe(true);
    expect(out.chunks).toEqual({ planned: 3, recomputed: 1 });
    // One executor computed the lost chunk; both reduced C.
    expect(out.perRank).toHaveLength(2);
    expect(out.perRank.map((p) => p.bricks).sort()).toEqual([0, 1]);
    expect(out.recoveries).toMatchObject([{ lostRank: 1, executors: 2 }]);
    expect(leftovers(r.pid)).toEqual([]);
  }, 120_000);
});

describe('survivors that cannot hold the model', () => {
  it('are named with the memory missing', () => {
    const split = planModelSplit(tinyLlamaQ4_0(), [{ rate: 1 }, { rate: 1 }], { context: 2048 });
    const node = (id: number, memoryBytes: number): TopologyNode => ({
      id,
      physicalNode: 0,
      package: 0,
      cpus: [id],
      memoryBytes,
      hugePages: [],
      virtual: true,
    });
    const need = split.ranks[1]!.weightBytes + split.ranks[1]!.kvCacheBytes;
    expect(shortfall(split, [node(0, 8 * 2 ** 30), node(1, 8 * 2 ** 30)])).toBeUndefined();
    const why = shortfall(split, [node(0, 8 * 2 ** 30), node(1, need - (64 << 20))]);
    expect(why).toMatch(
      /^the 2 executor\(s\) left cannot hold it: the model does not fit in memory: memory node 1 \(rank 1\) needs [\d.]+ [MG]iB \(weights [\d.]+ [MG]iB, KV cache [\d.]+ [MG]iB for 2048 positions, executors 64\.0 MiB\) but has [\d.]+ [MG]iB available \(256 MiB of it left to the rest of the system\): /,
    );
  });
});
