// Ctrl-C during `redblue generate`: while the weights load and while text streams (with a draft
// model's executors too), the run stops with 130, its executors are gone and nothing of it is
// left in /dev/shm.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSyntheticModel, TINY } from '../../model/synth.js';
import { childrenOf } from '../hosts/lab-helpers.js';
import { cliPath, leftovers, repoRoot } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-interrupt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const model = join(dir, 'tiny.gguf');
writeSyntheticModel(model, { ...TINY, nCtx: 4096, arch: 'llama', types: { default: 'q8_0' }, seed: 5 });

/** Starts a long generation on 2 virtual nodes; resolves once `ready(stdout)` holds. */
async function start(ready: (stdout: string) => boolean, extra: string[] = []) {
  const child = spawn(
    process.execPath,
    [
      cliPath,
      'generate',
      '-m',
      model,
      '-p',
      'Once upon a time',
      '-n',
      '4000',
      '--temp',
      '0',
      '--virtual-nodes',
      '2',
      ...extra,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, sig) => resolve(code ?? (sig ? -1 : -2))),
  );
  // A draft model (--draft) has 2 executors of its own.
  const want = extra.includes('--draft') ? 4 : 2;
  let executors: number[] = [];
  for (let i = 0; i < 300 && !(executors.length === want && ready(stdout)); i++) {
    await new Promise((r) => setTimeout(r, 50));
    executors = childrenOf(child.pid!);
  }
  expect(executors).toHaveLength(want);
  return { child, executors, exited, stderr: () => stderr };
}

describe('Ctrl-C during generate', () => {
  const streaming = (s: string) => s.length > 'Once upon a time'.length + 10;
  for (const [when, ready, extra] of [
    ['as the executors start', () => true, []],
    ['while text streams', streaming, []],
    ['while text streams with a draft model', streaming, ['--draft', model, '--draft-p-min', '0']],
  ] as const) {
    it(`${when}: exit 130, executors gone, nothing left in /dev/shm`, async () => {
      const run = await start(ready, [...extra]);
      run.child.kill('SIGINT');
      const code = await Promise.race([
        run.exited,
        new Promise<number>((r) => setTimeout(() => r(-999), 15_000)),
      ]);
      if (code === -999) run.child.kill('SIGKILL');
      expect(code).toBe(130);
      expect(run.stderr()).toMatch(/interrupted, stopping the executors/);
      for (const pid of run.executors) expect(() => process.kill(pid, 0)).toThrow();
      expect(leftovers(run.child.pid!)).toEqual([]);
    });
  }
});

describe('a draft model that dies', () => {
  it('is dropped, and the generation goes on to its end without drafts, leaving nothing behind', async () => {
    const run = await start(
      (s) => s.length > 'Once upon a time'.length + 10,
      // 1500 tokens (the last -n wins): long enough to be killed midway, short to finish.
      ['--draft', model, '--draft-p-min', '0', '-n', '1500'],
    );
    // The draft's executors started after the model's: the two youngest.
    const started = (pid: number) =>
      Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]);
    const draft = [...run.executors].sort((a, b) => started(a) - started(b)).slice(2);
    process.kill(draft[1]!, 'SIGKILL');
    const code = await Promise.race([
      run.exited,
      new Promise<number>((r) => setTimeout(() => r(-999), 60_000)),
    ]);
    if (code === -999) run.child.kill('SIGKILL');
    expect(code).toBe(0);
    // The timings say what the draft did, and that it was lost.
    expect(run.stderr()).toMatch(
      /draft: +\d+ of \d+ drafted tokens were the ones chosen \(\d+%\); \d+ draft-model steps in [\d.]+ ms/,
    );
    expect(run.stderr()).toMatch(/draft lost: executor rank 1 died[^\n]*; went on without drafts/);
    expect(run.stderr()).toMatch(/generation: \d+ tokens in [^\n]*stopped by/);
    for (const pid of run.executors) expect(() => process.kill(pid, 0)).toThrow();
    expect(leftovers(run.child.pid!)).toEqual([]);
  });
});
