// `redblue bench serve` end to end on a small file: every level's case in the shared schema, with
// its latencies, one stream against `redblue generate` measured in the same run, and the levels
// with prompt lookup against the levels without, and embeddings against llama.cpp's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSyntheticModel } from '../../model/synth.js';
import type { BenchReport } from '../../bench/report.js';
import { SMALL_LLAMA } from '../helpers/model-shapes.js';
import { leftovers, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-bench-serve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('redblue bench serve', () => {
  it('reports aggregate tokens/s per level against one stream, latencies, and one stream against generate', () => {
    const model = join(dir, 'small.gguf');
    writeSyntheticModel(model, SMALL_LLAMA);
    const r = runCli([
      'bench',
      'serve',
      '-m',
      model,
      '--tokens',
      '8',
      '--levels',
      '1,2',
      '--pairs',
      '2',
      '--lookup',
      '3',
      '--embed-tokens',
      '16',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as BenchReport;
    expect(report.benchmark).toBe('serve');
    const byCase = new Map(report.results.map((x) => [x.case, x]));
    for (const n of [1, 2]) {
      const c = byCase.get(`streams_${n}`)!;
      expect(c.unit).toBe('tokens/s');
      expect(c.value).toBeGreaterThan(0);
      expect(c.referenceValue).toBe(byCase.get('streams_1')!.value);
      for (const k of ['ttftMedianMs', 'ttftP99Ms', 'tpotMedianMs', 'tpotP99Ms'])
        expect(c.details![k] as number, k).toBeGreaterThan(0);
    }
    // The levels again on a server with prompt lookup, each against the level without.
    for (const n of [1, 2]) {
      const c = byCase.get(`streams_${n}_lookup3`)!;
      expect(c.reference).toBe(`streams_${n}`);
      expect(c.referenceValue).toBe(byCase.get(`streams_${n}`)!.value);
      expect(c.value).toBeGreaterThan(0);
      expect(c.details!.acceptedTokens as number).toBeLessThanOrEqual(c.details!.draftedTokens as number);
    }
    // Embeddings against llama.cpp's embedding context on the same token lists.
    const e = byCase.get('embeddings')!;
    expect(e.unit).toBe('tokens/s');
    expect(e.reference).toBe('llama.cpp');
    expect(e.value).toBeGreaterThan(0);
    expect(e.referenceValue).toBeGreaterThan(0);
    expect(e.details).toMatchObject({ inputs: 8, tokensPerInput: 16 });
    const g = byCase.get('one_stream_vs_generate')!;
    expect(g.reference).toBe('redblue_generate');
    expect(g.referenceValue).toBeGreaterThan(0);
    // Counted like generate's figure: the tokens after the first, not the request's whole time.
    expect(g.value).toBeGreaterThan(0);
    expect(g.details!.oneStreamThroughput).toBe(byCase.get('streams_1')!.value);
    // Two alternated pairs of (generate, one stream); the figure is one of them, not a mix.
    const pairs = g.details!.pairs as {
      stream: number;
      generate: number;
      clientCpuMsPerToken: number;
    }[];
    expect(pairs).toHaveLength(2);
    expect(pairs).toContainEqual(expect.objectContaining({ stream: g.value, generate: g.referenceValue }));
    for (const p of pairs) expect(p.stream * p.generate * p.clientCpuMsPerToken).toBeGreaterThan(0);
    expect(leftovers(r.pid)).toEqual([]);
    const bad = runCli(['bench', 'serve', '-m', model, '--levels', '2,4']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--levels must list stream counts from 1 to 64, starting with 1/);
    const noPairs = runCli(['bench', 'serve', '-m', model, '--pairs', '0']);
    expect(noPairs.code).toBe(2);
    expect(noPairs.stderr).toContain('--pairs must be a whole number of at least 1');
  });
});
