// `redblue run` as a user runs it: files in and out, bad input, and an executor killed mid-run.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readNpyMatrix, writeNpyMatrix } from '../../executor/coordinator/npy.js';
import { childrenOf, cliPath, leftovers, repoRoot, runCli, running } from '../helpers/cli.js';
import { matmulRef, maxAbsDiff, randomF32 } from '../helpers/reference.js';
import { verificationFailure, verifyGemm } from '../../executor/coordinator/verify.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-run-'));

describe('redblue run gemm', () => {
  it('reads A and B from .npy files, writes C, and verifies against OpenBLAS', () => {
    const [m, n, k] = [23, 19, 17];
    const a = randomF32(m * k, 1);
    const b = randomF32(k * n, 2);
    writeNpyMatrix(join(dir, 'A.npy'), m, k, a);
    writeNpyMatrix(join(dir, 'B.npy'), k, n, b);
    const out = join(dir, 'C.npy');
    const r = runCli([
      'run',
      'gemm',
      '--m',
      String(m),
      '--n',
      String(n),
      '--k',
      String(k),
      '--a',
      join(dir, 'A.npy'),
      '--b',
      join(dir, 'B.npy'),
      '--out',
      out,
      '--verify',
      '--virtual-nodes',
      '2',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { verify: { ok: boolean; maxAbsError: number }; perRank: unknown[] };
    expect(json.verify.ok).toBe(true);
    expect(json.perRank).toHaveLength(2);
    const c = readNpyMatrix(out);
    expect([c.rows, c.cols]).toEqual([m, n]);
    expect(maxAbsDiff(c.data, matmulRef(a, b, m, n, k))).toBeLessThan(1e-4);
    expect(leftovers(r.pid)).toEqual([]);
  });

  it('prints a readable summary with the largest error, and writes the report page', () => {
    const report = join(dir, 'report.html');
    const args = '--m 64 --n 48 --k 37 --verify --virtual-nodes 3 --report'.split(' ');
    const r = runCli(['run', 'gemm', ...args, report]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/gemm 64×48×37 f32 on 3 executor\(s\)/);
    expect(r.stdout).toMatch(/verify: largest error .* against one OpenBLAS call: OK/);
    const html = readFileSync(report, 'utf8');
    expect(html).toMatch(/Measured times \(redblue run gemm, 3 executor\(s\)\) beside the predicted ones/);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/); // self-contained
  });

  it('--memory runs the sequential steps the plan cuts, and the report shows them beside the plan', () => {
    const report = join(dir, 'steps.html');
    const args = '--m 300 --n 260 --k 500 --memory 1MB --verify --virtual-nodes 2 --json --report'.split(' ');
    const r = runCli(['run', 'gemm', ...args, report]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as {
      verify: { ok: boolean };
      perRank: { steps: number; bricks: number; localPeakBytes: number }[];
    };
    expect(json.verify.ok).toBe(true);
    for (const p of json.perRank) {
      expect(p.steps).toBe(p.bricks);
      expect(p.steps).toBeGreaterThan(1);
      expect(p.localPeakBytes).toBeLessThanOrEqual(1e6);
    }
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('Executed schedule beside the planned one');
    expect(html).not.toContain('<td class="over">');
  });

  it('rejects bad flags and bad files with clear messages', () => {
    const bigSide = Math.floor(Math.sqrt((0.8 * totalmem()) / 12));
    const cases: [string[], RegExp][] = [
      [['run', 'gemm', '--m', '0', '--n', '2', '--k', '2'], /--m must be a whole number of at least 1/],
      [['run', 'gemm', '--m', 'x', '--n', '2', '--k', '2'], /--m must be a whole number/],
      [['run', 'gemm', '--n', '2', '--k', '2'], /run gemm needs --m \(or a file that gives it/],
      [['run', 'gemm', '--m', '2', '--n', '2', '--k', '2', '--dtype', 'q4_0'], /argument 'q4_0' is invalid/],
      [
        ['run', 'gemm', '--m', '2', '--n', '2', '--k', '2', '--a', join(dir, 'nope.npy')],
        /nope.npy does not exist/,
      ],
      [
        ['run', 'gemm', '--m', '5', '--n', '19', '--k', '17', '--a', join(dir, 'A.npy')],
        /--m 5 disagrees with .*A\.npy, which is 23×17 \(m = 23\): drop --m or fix the file/,
      ],
      [['run', 'layer', '--n', '64', '--k', '33'], /--k 33 must be a multiple of 32 for q4_0/],
      [
        ['run', 'layer', '--n', '64', '--k', '64', '--repeats', '0'],
        /--repeats must be a whole number of at least 1/,
      ],
      [
        ['run', 'layer', '--n', '64', '--k', '64', '--placement', 'everywhere'],
        /argument 'everywhere' is invalid/,
      ],
      [['run', '--virtual-nodes', '0'], /--virtual-nodes must be a whole number of at least 1/],
      // A, B and C of 80% of this machine's memory: within the planner's limit (one node's memory),
      // but staged, copied into the executors and returned they need more than twice that
      [
        ['run', 'gemm', ...['--m', '--n', '--k'].flatMap((f) => [f, String(bigSide)])],
        /^redblue: the gemm does not fit in memory: \d+×\d+×\d+ needs [\d.]+ GiB \(staging A, B and C [\d.]+ GiB, .*\) but this machine has [\d.]+ GiB available.*: ask for a smaller --m, --n or --k, or run across hosts/m,
      ],
      // 2.3 GiB of Q4_0 a layer fits; 24 (56 GiB) do not: refused before anything is made, not
      // ended by the kernel's out-of-memory killer
      [
        ['run', 'layer', '--n', '65536', '--k', '65536', '--layers', '24', '--virtual-nodes', '2'],
        /^redblue: the stack does not fit: rank 0 would hold [\d.]+ GiB of B \(24 layers, its shard\) .*: ask for fewer --layers or a smaller --n or --k, or run on more nodes or hosts$/m,
      ],
    ];
    writeFileSync(join(dir, 'trunc.npy'), readFileSync(join(dir, 'A.npy')).subarray(0, 300));
    const w = randomF32(64 * 64, 3);
    w[64 * 2 + 9] = -Infinity;
    writeNpyMatrix(join(dir, 'infW.npy'), 64, 64, w);
    cases.push([
      ['run', 'layer', '--weights', join(dir, 'infW.npy')],
      /the weights \(.*infW\.npy\) has 1 non-finite value \(1 -Inf\), the first at row 2, column 9/,
    ]);
    cases.push([
      ['run', 'gemm', '--m', '23', '--n', '19', '--k', '17', '--a', join(dir, 'trunc.npy')],
      /trunc.npy is truncated/,
    ]);
    for (const [args, msg] of cases) {
      const r = runCli(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(leftovers(r.pid)).toEqual([]);
    }
  });
});

describe('redblue run gemm: shapes from files, non-finite input', () => {
  const [m, n, k] = [21, 13, 11];
  const A = join(dir, 'fA.npy');
  const B = join(dir, 'fB.npy');
  writeNpyMatrix(A, m, k, randomF32(m * k, 5));
  writeNpyMatrix(B, k, n, randomF32(k * n, 6));

  it('takes m, n and k from the files alone, and verifies', () => {
    const r = runCli(['run', 'gemm', '--a', A, '--b', B, '--verify', '--virtual-nodes', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { m: number; n: number; k: number; verify: { ok: boolean } };
    expect([out.m, out.n, out.k]).toEqual([m, n, k]);
    expect(out.verify.ok).toBe(true);
    // one file and the flag for the other dimension
    const half = runCli(['run', 'gemm', '--a', A, '--n', '7', '--json']);
    expect(half.code, half.stderr).toBe(0);
    expect((JSON.parse(half.stdout) as { n: number }).n).toBe(7);
  });

  it('refuses flags and files that disagree, naming both', () => {
    writeNpyMatrix(join(dir, 'fB12.npy'), 12, n, randomF32(12 * n, 7));
    const cases: [string[], RegExp][] = [
      [['--a', A, '--b', B, '--k', '12'], /--k 12 disagrees with .*fA\.npy, which is 21×11 \(k = 11\)/],
      [['--a', A, '--b', B, '--n', '5'], /--n 5 disagrees with .*fB\.npy, which is 11×13 \(n = 13\)/],
      [
        ['--a', A, '--b', join(dir, 'fB12.npy')],
        /fA\.npy is 21×11 but .*fB12\.npy is 12×13: A's columns \(k\) must equal B's rows/,
      ],
      [['--a', A], /run gemm needs --n/],
    ];
    for (const [args, msg] of cases) {
      const r = runCli(['run', 'gemm', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(leftovers(r.pid)).toEqual([]);
    }
  });

  it('reports NaN and Inf in A by count and place; with --allow-non-finite it runs and verifies by position', () => {
    const a = randomF32(m * k, 8);
    a[5] = NaN; // row 0, column 5
    a[3 * k + 2] = Infinity;
    a[7 * k] = NaN;
    const bad = join(dir, 'nanA.npy');
    writeNpyMatrix(bad, m, k, a);
    const refused = runCli(['run', 'gemm', '--a', bad, '--b', B]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /A \(.*nanA\.npy\) has 3 non-finite values \(2 NaN, 1 \+Inf\), the first at row 0, column 5: .*--allow-non-finite/,
    );
    expect(leftovers(refused.pid)).toEqual([]);
    const out = join(dir, 'nanC.npy');
    const r = runCli([
      'run',
      'gemm',
      '--a',
      bad,
      '--b',
      B,
      '--allow-non-finite',
      '--verify',
      '--out',
      out,
      '--virtual-nodes',
      '2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const v = (JSON.parse(r.stdout) as { verify: { ok: boolean; nonFinite: number; mismatches: number } })
      .verify;
    // rows 0, 3 and 7 of C are NaN or Inf wherever B is non-zero: every column here
    expect(v.nonFinite).toBe(3 * n);
    expect(v.mismatches).toBe(0);
    expect(v.ok).toBe(true);
    const c = readNpyMatrix(out).data;
    expect(Number.isNaN(c[0]!)).toBe(true);
    expect(Number.isFinite(c[n]!)).toBe(true);
  });
});

describe('verifyGemm with non-finite values', () => {
  it('fails when a NaN sits where OpenBLAS has none, naming the position, never "Infinity exceeds NaN"', () => {
    const [m, n, k] = [4, 3, 5];
    const a = randomF32(m * k, 9);
    const b = randomF32(k * n, 10);
    a[1 * k + 1] = NaN; // row 1 of C is NaN
    const c = Float32Array.from(matmulRef(a, b, m, n, k));
    const r = { m, n, k, a, b, c, seconds: 1, gflops: 1, perRank: [] };
    expect(verifyGemm(r).ok).toBe(true);
    // the NaN moved to row 2
    const moved = c.slice();
    for (let j = 0; j < n; j++) moved[1 * n + j] = 1;
    moved[2 * n + 1] = NaN;
    const v = verifyGemm({ ...r, c: moved });
    expect(v.ok).toBe(false);
    expect(v.mismatches).toBe(n + 1);
    expect(v.firstMismatch).toMatchObject({ row: 1, col: 0 });
    expect(Number.isFinite(v.tolerance)).toBe(true);
    expect(verificationFailure(v)).toMatch(
      /^verification failed: 4 position\(s\) disagree with OpenBLAS on NaN or Inf, the first at row 1, column 0 \(expected NaN, got 1\)/,
    );
  });
});

describe('redblue run layer', () => {
  it('reports passes/s, weight bandwidth and the compute/exchange split as JSON', () => {
    const r = runCli([
      'run',
      'layer',
      '--n',
      '256',
      '--k',
      '128',
      '--layers',
      '3',
      '--iters',
      '4',
      '--placement',
      'mirror',
      '--repeats',
      '2',
      '--virtual-nodes',
      '2',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      passes: number;
      runs: number;
      passesPerSecond: number;
      effectiveGBps: number;
      computeSecondsPerPass: number;
      exchangeSecondsPerPass: number;
      perRank: { placement: string; rows: number[] }[];
    };
    expect(j.passes).toBe(4);
    expect(j.runs).toBe(2);
    expect(j.passesPerSecond).toBeGreaterThan(0);
    expect(j.effectiveGBps).toBeGreaterThan(0);
    expect(j.computeSecondsPerPass).toBeGreaterThan(0);
    expect(j.perRank.map((p) => p.placement)).toEqual(['mirror', 'mirror']);
    expect(j.perRank.map((p) => p.rows)).toEqual([
      [0, 128],
      [128, 256],
    ]);
  });
});

describe('redblue run layer --weights', () => {
  it('takes the stack from a layers×n×k .npy file and checks flags against it', () => {
    const [layers, n, k] = [3, 16, 64];
    const w = randomF32(layers * n * k, 5);
    let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${layers}, ${n}, ${k}), }`;
    header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    pre.writeUInt16LE(header.length, 8);
    const file = join(dir, 'W.npy');
    writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(w.buffer)]));
    const r = runCli(['run', 'layer', '--weights', file, '--iters', '2', '--virtual-nodes', '2', '--json']);
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout) as { weightBytesPerPass: number; perRank: { rows: number[] }[] };
    expect(j.weightBytesPerPass).toBe(layers * n * (k / 32) * 18); // q4_0 by default
    expect(j.perRank.map((p) => p.rows)).toEqual([
      [0, 8],
      [8, 16],
    ]);
    const bad = runCli(['run', 'layer', '--weights', file, '--n', '17']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--n 17 does not match .*W.npy, which holds 3×16×64 weights/);
    const none = runCli(['run', 'layer', '--k', '64']);
    expect(none.stderr).toMatch(/run layer needs --n and --k \(or --weights FILE.npy\)/);
  });
});

/**
 * Starts a long `redblue run layer` on 2 virtual nodes and waits until both executors run and
 * the passes have begun. `exit()` resolves with the exit code (-999 if still running after 15 s;
 * then it is killed).
 */
async function longRun(n: number) {
  const args = [
    'run',
    'layer',
    '--n',
    String(n),
    '--k',
    String(n),
    '--iters',
    '1000000',
    '--virtual-nodes',
    '2',
  ];
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  let executors: number[] = [];
  for (let i = 0; i < 100 && executors.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 100));
    executors = childrenOf(child.pid!);
  }
  expect(executors).toHaveLength(2);
  // Mid-run: its staging area is made once the executors are up, and the passes follow at once.
  for (let i = 0; i < 100 && !leftovers(child.pid!).some((f) => f.startsWith('redblue-run-')); i++)
    await new Promise((r) => setTimeout(r, 100));
  expect(leftovers(child.pid!).some((f) => f.startsWith('redblue-run-'))).toBe(true);
  await new Promise((r) => setTimeout(r, 300));
  return {
    child,
    executors,
    stderr: () => stderr,
    exit: async () => {
      const code = await Promise.race([
        exited,
        new Promise<number>((r) => setTimeout(() => r(-999), 15_000)),
      ]);
      if (code === -999) child.kill('SIGKILL');
      return code;
    },
  };
}

describe('failures', () => {
  it('an executor killed mid-run fails the run within seconds, naming the rank, leaving nothing behind', async () => {
    const run = await longRun(2048);
    const victim = run.executors.find((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes('--rank 1 '),
    )!;
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    const code = await run.exit();
    expect(code).not.toBe(0);
    expect(code).not.toBe(-999);
    // ~0.15 s here; a timer left pending once held the failed run's process for 5 s.
    expect(Date.now() - killedAt).toBeLessThan(3_000);
    expect(run.stderr()).toMatch(/rank 1/);
    expect(childrenOf(run.child.pid!)).toEqual([]);
    for (const pid of run.executors) expect(() => process.kill(pid, 0)).toThrow();
    expect(leftovers(run.child.pid!)).toEqual([]);
  });
});

describe('Ctrl-C', () => {
  it('stops the executors and frees the shared memory', async () => {
    const run = await longRun(1024);
    run.child.kill('SIGINT');
    expect(await run.exit()).toBe(130);
    expect(run.stderr()).toMatch(/interrupted, stopping the executors/);
    for (const pid of run.executors) expect(() => process.kill(pid, 0)).toThrow();
    expect(leftovers(run.child.pid!)).toEqual([]);
  });
});

describe('a run killed all at once', () => {
  it('executors do not outlive a coordinator killed mid-run', async () => {
    const run = await longRun(1024);
    process.kill(run.child.pid!, 'SIGKILL');
    await run.exit();
    // Their stdin (the coordinator's end of a socket pair) closes with it; the parent check backs
    // that up every 500 ms.
    for (let i = 0; i < 50 && run.executors.some(running); i++) await new Promise((r) => setTimeout(r, 100));
    expect(run.executors.filter(running)).toEqual([]);
    const next = runCli(['run', 'gemm', '--m', '4', '--n', '4', '--k', '4']);
    expect(next.code).toBe(0);
    expect(leftovers(run.child.pid!)).toEqual([]);
  });

  it('leaves shared memory that the next run removes', async () => {
    const run = await longRun(1024);
    const pid = run.child.pid!;
    for (const p of [pid, ...run.executors]) process.kill(p, 'SIGKILL');
    await run.exit();
    for (let i = 0; i < 50 && run.executors.some(running); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(leftovers(pid).length).toBeGreaterThan(0); // nobody was left to clean up
    const next = runCli(['run', 'gemm', '--m', '4', '--n', '4', '--k', '4']);
    expect(next.code).toBe(0);
    expect(leftovers(pid)).toEqual([]);
  });
});
