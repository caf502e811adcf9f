// `redblue bench model` end to end on a tiny model: every case of the shared schema, with
// llama.cpp and the read bandwidth measured in the same run as references.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeSyntheticModel, TINY } from '../../model/synth.js';
import { leftovers, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-bench-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'tiny-q4_0.gguf');
writeSyntheticModel(model, { ...TINY, arch: 'llama', types: { default: 'q4_0' }, seed: 3 });

describe('redblue bench model', () => {
  it('reports pp and tg at a depth against llama.cpp, bandwidth, scaling and resident memory', () => {
    // Both engines time pp and tg after 40 tokens of context (llama-bench's -d 40).
    const r = runCli(
      [
        'bench',
        'model',
        '-m',
        model,
        '--pp',
        '16',
        '--tg',
        '8',
        '--depth',
        '40',
        '--reps',
        '1',
        '--lookup',
        '3',
        '--draft',
        model,
        '--draft-p-min',
        '0',
        '--draft-max',
        '2',
        '--json',
      ],
      { timeout: 240_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      benchmark: string;
      results: { case: string; value: number; referenceValue: number; ratio: number; reference: string }[];
    };
    expect(report.benchmark).toBe('model');
    const cases = report.results.map((x) => x.case);
    expect(cases).toEqual([
      'pp16_d40',
      'tg8_d40',
      'tg8_d40_bandwidth',
      'tg8_d40_scaling',
      'gen8_lookup3',
      'gen8_draft',
      'rss_rank0',
      'private_rank0',
      'rss_rank1',
      'private_rank1',
    ]);
    for (const x of report.results) {
      expect(x.value, x.case).toBeGreaterThan(0);
      expect(x.referenceValue, x.case).toBeGreaterThan(0);
      expect(Number.isFinite(x.ratio), x.case).toBe(true);
    }
    expect(report.results[0]!.reference).toBe('llama.cpp_2_threads');
    expect((report.results[0] as unknown as { details: { depth: number } }).details.depth).toBe(40);
    // The bandwidth figure pairs each timed generation with the read bandwidth sampled around it.
    const bw = report.results.find((x) => x.case === 'tg8_d40_bandwidth') as unknown as {
      value: number;
      referenceValue: number;
      details: { pairs: { tgGBps: number; readGBps: number }[] };
    };
    expect(bw.details.pairs).toHaveLength(1);
    expect(bw.details.pairs[0]).toEqual({ tgGBps: bw.value, readGBps: bw.referenceValue });
    // Prompt lookup against the same greedy generation without it: the same tokens.
    const lookup = report.results.find((x) => x.case === 'gen8_lookup3') as unknown as {
      reference: string;
      details: { sameTokens: boolean; draftedTokens: number; acceptedTokens: number };
    };
    expect(lookup.reference).toBe('gen8_without_lookup');
    expect(lookup.details.sameTokens).toBe(true);
    expect(lookup.details.acceptedTokens).toBeLessThanOrEqual(lookup.details.draftedTokens);
    // The model drafting for itself (greedy, every draft as long as allowed): all taken.
    const draft = report.results.find((x) => x.case === 'gen8_draft') as unknown as {
      reference: string;
      details: { sameTokens: boolean; draftedTokens: number; acceptedTokens: number };
    };
    expect(draft.reference).toBe('gen8_without_draft');
    expect(draft.details.sameTokens).toBe(true);
    expect(draft.details.draftedTokens).toBeGreaterThan(0);
    expect(draft.details.acceptedTokens).toBe(draft.details.draftedTokens);
    // Resident memory splits into the process before loading and what the model added; the
    // executor's own memory is part of its resident memory (the rest: pages shared with others).
    for (const x of report.results.filter((y) => /^(rss|private)_/.test(y.case))) {
      const d = (
        x as unknown as {
          details: { beforeLoadBytes: number; rssBytes: number; privateBytes: number; modelOverhead: number };
        }
      ).details;
      expect(d.beforeLoadBytes).toBeGreaterThan(10 << 20);
      expect(d.beforeLoadBytes).toBeLessThan(d.rssBytes);
      expect(d.privateBytes).toBeGreaterThan(0);
      expect(d.privateBytes).toBeLessThan(d.rssBytes);
      expect(Number.isFinite(d.modelOverhead)).toBe(true);
    }
    expect(leftovers(r.pid)).toEqual([]);

    // One executor of 2 cores (what generate runs on a one-node machine), in text, from an empty
    // context (no depth in the test names).
    const text = runCli([
      'bench',
      'model',
      '-m',
      model,
      '--executors',
      '1',
      '--cores',
      '2',
      '--pp',
      '8',
      '--tg',
      '4',
      '--reps',
      '1',
      '--no-reference',
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toMatch(/on 1 executor\(s\) of 2 cores \(cpus \d+,\d+\)/);
    expect(text.stdout).toMatch(/^model\s+size\s+params\s+type\s+executors\s+test\s+t\/s/);
    expect(text.stdout).toMatch(/\nllama 0\.\d+ B Q4_0 .* 1 × 2 cores +tg4 /);
    expect(text.stdout).toMatch(
      /of the read bandwidth of 2 core\(s\) sampled around it \(\d+\.\d+ GB\/s; each repetition: \d+%, median kept\)/,
    );
    expect(text.stdout).toMatch(
      /rank 0: weights .* its own memory .* resident .* before loading \(Node, gRPC, the addon\), the model added /,
    );
  });

  it('refuses bad flags with the fix', () => {
    const r = runCli(['bench', 'model', '-m', join(dir, 'none.gguf'), '--executors', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--executors must be a whole number of at least 1');
    const cores = runCli(['bench', 'model', '-m', join(dir, 'none.gguf'), '--cores', '0']);
    expect(cores.code).toBe(2);
    expect(cores.stderr).toContain('--cores must be a whole number of at least 1');
    const negative = runCli(['bench', 'model', '-m', model, '--depth', '-1']);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain('--depth must be a whole number of at least 0');
    // A depth past the model's training context is refused before anything starts.
    const deep = runCli(['bench', 'model', '-m', model, '--depth', '100000', '--no-reference']);
    expect(deep.code).toBe(2);
    expect(deep.stderr).toMatch(
      /--depth 100000 and --pp 512 \/ --tg 128 need a context of 100512 tokens; .* was trained for \d+: ask for less/,
    );
  });
});
