// The quick start's main job: `redblue run` generates from the demo model across the executors
// (writing the model first when the set-up has not), then verifies a gemm; and it generates what
// `redblue generate` gives for the same model and prompt on one executor.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_PROMPT, DEMO_TOKENS } from '../../executor/coordinator/demo.js';
import { ensureDemoModel } from '../../model/presets.js';
import { leftovers, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('redblue run (the demo)', () => {
  it('writes the demo model where asked, once', () => {
    const path = join(dir, 'demo.gguf');
    expect(ensureDemoModel(path)).toBe(path);
    expect(ensureDemoModel(path)).toBe(path);
  });

  it('generates across 2 executors what 1 executor generates, and the gemm verifies', () => {
    const model = ensureDemoModel();
    const demo = runCli(['run', '--virtual-nodes', '2', '--json'], { timeout: 240_000 });
    expect(demo.stderr).toBe('');
    expect(demo.code).toBe(0);
    const r = JSON.parse(demo.stdout) as {
      nodes: number;
      generate: { model: string; generatedTokens: number[]; text: string; promptTokens: number[] };
      verify: { ok: boolean };
    };
    expect(r.nodes).toBe(2);
    expect(r.generate.model).toBe(model);
    expect(r.generate.generatedTokens.length).toBeGreaterThan(0);
    expect(r.generate.generatedTokens.length).toBeLessThanOrEqual(DEMO_TOKENS);
    expect(r.generate.text.length).toBeGreaterThan(0);
    expect(r.verify.ok).toBe(true);
    expect(leftovers(demo.pid)).toEqual([]);

    const one = runCli(
      ['generate', '-m', model, '-p', DEMO_PROMPT, '-n', String(DEMO_TOKENS), '--temp', '0', '--json'],
      { timeout: 240_000 },
    );
    expect(one.code).toBe(0);
    const g = JSON.parse(one.stdout) as { promptTokens: number[]; generatedTokens: number[]; text: string };
    expect(g.promptTokens).toEqual(r.generate.promptTokens);
    expect(g.generatedTokens).toEqual(r.generate.generatedTokens);
    expect(g.text).toBe(r.generate.text);
  });
});
