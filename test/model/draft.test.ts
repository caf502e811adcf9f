// `redblue generate --draft`: speculative decoding with a draft model on executors of its own.
// The built CLI, real executor processes (the model's and the draft's), real GGUF files. The text
// must be the one generated without a draft, whatever the draft guesses; the model itself as its
// own draft (greedy) guesses every token it is asked for; a draft of another vocabulary is refused
// before anything loads; nothing is left behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticModel, writeSyntheticModel } from '../../model/synth.js';
import { writeGguf } from '../../model/gguf/write.js';
import { gv } from '../../model/gguf/value.js';
import { SMALL_LLAMA } from '../helpers/model-shapes.js';
import { leftovers, runCli } from '../helpers/cli.js';
import { checkDraftVocab, confidentToken } from '../../executor/coordinator/draft.js';
import { createTokenizer } from '../../model/tokenizer/index.js';
import type { DraftModelTimings } from '../../executor/coordinator/generate.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-draft-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const model = join(dir, 'model.gguf');
const firstLayer = join(dir, 'first-layer.gguf'); // the model's first layer: another function, the same tokens
const renamed = join(dir, 'renamed.gguf'); // the same vocabulary but for one token's text
beforeAll(() => {
  writeSyntheticModel(model, SMALL_LLAMA);
  writeSyntheticModel(firstLayer, { ...SMALL_LLAMA, nLayer: 1, types: { default: 'q4_0' } });
  const { metadata, tensors } = syntheticModel(SMALL_LLAMA);
  writeGguf(renamed, {
    metadata: new Map(
      metadata.map(([k, v]) =>
        k === 'tokenizer.ggml.tokens' && v.type === 'array'
          ? [k, gv.strings((v.value as string[]).map((t, i) => (i === 1000 ? 'renamed' : t)))]
          : [k, v],
      ),
    ),
    tensors,
  });
});

interface DraftJson {
  generatedTokens: number[];
  text: string;
  timings: {
    drafted?: number;
    accepted?: number;
    draftModel?: DraftModelTimings;
  };
}

const BASE = ['generate', '-m', model, '-p', 'Once upon a time', '--virtual-nodes', '2'];

function generate(args: string[]): DraftJson {
  const r = runCli([...BASE, '--json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(leftovers(r.pid)).toEqual([]);
  return JSON.parse(r.stdout) as DraftJson;
}

describe('redblue generate --draft', () => {
  it('gives the text of a run without a draft, greedy and sampled, and the model drafting for itself is always right', () => {
    const greedy = ['-n', '24', '--temp', '0', '--ignore-eos'];
    const plain = generate(greedy);
    expect(plain.timings.draftModel).toBeUndefined();

    // Drafting for itself, every guess taken (p-min 0: a draft as long as allowed).
    const self = generate([...greedy, '--draft', model, '--draft-p-min', '0', '--draft-max', '4']);
    expect(self.generatedTokens).toEqual(plain.generatedTokens);
    expect(self.text).toBe(plain.text);
    expect(self.timings.drafted).toBeGreaterThanOrEqual(12);
    expect(self.timings.accepted).toBe(self.timings.drafted);
    expect(self.timings.draftModel!.steps).toBeGreaterThan(0);
    expect(self.timings.draftModel!.path).toBe(model);
    expect(self.timings.draftModel!.executors).toBe(2);
    expect(self.timings.draftModel!.loadSeconds).toBeGreaterThan(0);
    expect(self.timings.draftModel!.lost).toBeUndefined();

    // Sampled, and drafted by another function over the same tokens (the model's first layer:
    // guesses mostly wrong): the text of the same seed without a draft.
    const sampling = [
      '-n',
      '24',
      '--temp',
      '0.8',
      '--top-k',
      '0',
      '--top-p',
      '1',
      '--min-p',
      '0',
      '--seed',
      '5',
    ];
    const a = generate(sampling);
    const b = generate([...sampling, '--draft', firstLayer, '--draft-p-min', '0']);
    expect(b.generatedTokens).toEqual(a.generatedTokens);
    expect(b.text).toBe(a.text);
    expect(b.timings.drafted).toBeGreaterThan(b.timings.accepted!);
  });

  it('refuses a draft of another vocabulary, and flags that do not go with it, before anything starts', () => {
    const base = BASE;
    const vocab = runCli([...base, '--draft', renamed]);
    expect(vocab.code).toBe(2);
    expect(vocab.stderr).toMatch(
      /renamed\.gguf cannot draft for model\.gguf: token 1000 is "renamed" in the draft and "[^"]+" in the target/,
    );
    const lookup = runCli([...base, '--draft', model, '--lookup', '3']);
    expect(lookup.code).toBe(2);
    expect(lookup.stderr).toMatch(/--draft and --lookup both draft tokens: choose one/);
    const max = runCli([...base, '--draft', model, '--draft-max', '0']);
    expect(max.code).toBe(2);
    expect(max.stderr).toMatch(/--draft-max must be a whole number from 1 to 32, got '0'/);
    const missing = runCli([...base, '--draft', join(dir, 'nope.gguf')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/nope\.gguf/);
    for (const r of [vocab, lookup, max, missing]) expect(leftovers(r.pid)).toEqual([]);
  });
});

describe('a draft vocabulary (checkDraftVocab)', () => {
  it('takes sizes up to 128 apart whose shared ids name the same texts, and refuses more', () => {
    const plain = new Map(syntheticModel(SMALL_LLAMA).metadata.map(([k, v]) => [k, v.value as unknown]));
    // The same vocabulary with n tokens added at the end (ids past the other's are never drafted).
    const grown = (n: number) => {
      const m = new Map(plain);
      const grow = (key: string, extra: (i: number) => unknown) =>
        m.set(key, [...(m.get(key) as unknown[]), ...Array.from({ length: n }, (_, i) => extra(i))]);
      grow('tokenizer.ggml.tokens', (i) => `<extra_${i}>`);
      grow('tokenizer.ggml.scores', () => 0);
      grow('tokenizer.ggml.token_type', () => 1);
      return createTokenizer(m);
    };
    const base = createTokenizer(plain);
    expect(() => checkDraftVocab(grown(128), base, 'big.gguf', 'small.gguf')).not.toThrow();
    expect(() => checkDraftVocab(base, grown(129), 'small.gguf', 'big.gguf')).toThrow(
      /big\.gguf cannot draft for small\.gguf: their vocabularies have 32129 and 32000 tokens \(at most 128 apart\)/,
    );
  });
});

describe('a draft guess (confidentToken)', () => {
  it('is the most likely token while its softmax probability reaches p-min, as the exact sum says', () => {
    const row = Float32Array.from([0, Math.log(3), 0, 0]); // p(1) = 3 / 6
    expect(confidentToken(row, 4, 0.5 - 1e-6)).toBe(1);
    expect(confidentToken(row, 4, 0.5 + 1e-6)).toBeUndefined();
    expect(confidentToken(row, 4, 0)).toBe(1);
    expect(confidentToken(row, 1, 0)).toBe(0); // ids past `limit` are not guessed
    let x = 7;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32) * 12 - 6;
    for (let t = 0; t < 200; t++) {
      const l = Float32Array.from({ length: 1000 }, rand);
      l[t] = l[t]! + (t % 20); // from flat rows to sure ones
      let max = -Infinity;
      let id = 0;
      l.forEach((v, i) => v > max && ((max = v), (id = i)));
      const p = 1 / l.reduce((a, v) => a + Math.exp(v - max), 0);
      for (const pMin of [0.3, 0.75, 0.9])
        if (Math.abs(p - pMin) > 1e-6) expect(confidentToken(l, 1000, pMin)).toBe(p >= pMin ? id : undefined);
    }
  });
});
