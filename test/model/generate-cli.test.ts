// `redblue generate` as a user runs it (the built CLI, real executor processes, real GGUF files):
// the --json fields, reproducible greedy and seeded text, and the failures: bad files, a prompt
// longer than the context, an executor killed mid-generation. Every failure exits non-zero with
// a one-line message and leaves no shared memory behind.
import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../model/gguf/read.js';
import { gv } from '../../model/gguf/value.js';
import { createTokenizer } from '../../model/tokenizer/index.js';
import { writeGguf } from '../../model/gguf/write.js';
import { syntheticModel, writeSyntheticModel } from '../../model/synth.js';
import type { ModelSplit } from '../../planner/model-split.js';
import { SMALL_LLAMA } from '../helpers/model-shapes.js';
import { childrenOf, cliPath, leftovers, repoRoot, runCli, type CliResult } from '../helpers/cli.js';
import { jsonStructureBias } from '../helpers/json-bias.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-generate-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SMALL = SMALL_LLAMA;
const good = join(dir, 'good.gguf');
beforeAll(() => {
  writeSyntheticModel(good, SMALL);
});

const PROMPT = 'Once upon a time';

interface GenerateJson {
  model: string;
  executors: number;
  seed: number;
  promptTokens: number[];
  generatedTokens: number[];
  text: string;
  stoppedBy: string;
  timings: {
    promptTokens: number;
    promptSeconds: number;
    promptTokensPerSecond: number;
    generatedTokens: number;
    generateSeconds: number;
    generateTokensPerSecond: number;
    loadSeconds: number;
    perRank: { rank: number; computeSeconds: number; exchangeSeconds: number }[];
    drafted?: number;
    accepted?: number;
  };
}

function generateJson(args: string[], model = good): { r: CliResult; json: GenerateJson } {
  const r = runCli(['generate', '-m', model, '-p', PROMPT, '--json', '--virtual-nodes', '2', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(leftovers(r.pid)).toEqual([]);
  return { r, json: JSON.parse(r.stdout) as GenerateJson };
}

/** A failed run: non-zero exit, one line on stderr matching `message`, no shared memory left. */
function expectFailure(r: CliResult, message: RegExp): void {
  expect(r.code).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(message);
  expect(r.stdout).toBe('');
  expect(leftovers(r.pid)).toEqual([]);
}

describe('redblue generate --json', () => {
  it('reports the prompt and generated tokens, the text and the timings; --temp 0 is reproducible', () => {
    const a = generateJson(['-n', '16', '--temp', '0']).json;
    expect(a.executors).toBe(2);
    expect(a.promptTokens[0]).toBe(1); // LLaMA 2 adds BOS
    expect(a.promptTokens.length).toBeGreaterThan(2);
    expect(a.generatedTokens).toHaveLength(16);
    expect(a.stoppedBy).toBe('length');
    expect(typeof a.text).toBe('string');
    expect(a.text.length).toBeGreaterThan(0);
    const t = a.timings;
    expect(t.promptTokens).toBe(a.promptTokens.length);
    expect(t.generatedTokens).toBe(16);
    for (const v of [
      t.promptSeconds,
      t.generateSeconds,
      t.promptTokensPerSecond,
      t.generateTokensPerSecond,
      t.loadSeconds,
    ]) {
      expect(v).toBeGreaterThan(0);
    }
    expect(t.perRank.map((p) => p.rank)).toEqual([0, 1]);
    const b = generateJson(['-n', '16', '--temp', '0', '--seed', '99']).json;
    expect(b.generatedTokens).toEqual(a.generatedTokens);
    expect(b.text).toBe(a.text);
  });

  it('--seed with temperature 0.8 gives the same text twice, and another seed other text', () => {
    const args = ['-n', '24', '--temp', '0.8', '--top-k', '0', '--top-p', '1', '--min-p', '0'];
    const a = generateJson([...args, '--seed', '7']).json;
    // --lookup drafts tokens from the context and checks them in the step: the same text.
    const b = generateJson([...args, '--seed', '7', '--lookup', '7']).json;
    expect(a.seed).toBe(7);
    expect(b.generatedTokens).toEqual(a.generatedTokens);
    expect(b.text).toBe(a.text);
    expect(a.timings.drafted).toBeUndefined();
    expect(b.timings.drafted).toBeGreaterThanOrEqual(b.timings.accepted!);
    const c = generateJson([...args, '--seed', '8']).json;
    expect(c.generatedTokens).not.toEqual(a.generatedTokens);
  });
});

describe('redblue generate --ignore-eos', () => {
  it('stops at the end-of-generation token without it, and goes on to -n tokens with it', () => {
    const greedy = ['-n', '16', '--temp', '0'];
    const a = generateJson(greedy).json.generatedTokens;
    // The same weights with a token greedy decoding picks (first at index i) as the file's EOS.
    const i = a.findIndex((t, j) => j >= 2 && !a.slice(0, j).includes(t));
    expect(i).toBeGreaterThan(0);
    const f = join(dir, 'eos.gguf');
    const { metadata, tensors } = syntheticModel(SMALL);
    const m = new Map(metadata);
    m.set('tokenizer.ggml.eos_token_id', gv.u32(a[i]!));
    writeGguf(f, { metadata: m, tensors });
    const stopped = generateJson(greedy, f).json;
    expect(stopped.stoppedBy).toBe('eog');
    expect(stopped.generatedTokens).toEqual(a.slice(0, i));
    const ignored = generateJson([...greedy, '--ignore-eos'], f).json;
    expect(ignored.stoppedBy).toBe('length');
    expect(ignored.generatedTokens).toEqual(a);
    const chat = runCli(['generate', '-m', f, '--chat', '--interactive', '--ignore-eos']);
    expect(chat.code).not.toBe(0);
    expect(chat.stderr).toMatch(/--interactive.*leave out --ignore-eos/);
  });
});

describe('redblue generate --stop', () => {
  /** A stop text from the middle of `text`, and where it first appears. */
  const stopIn = (text: string): { stop: string; first: number } => {
    expect(text.length).toBeGreaterThan(6);
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
    return { stop, first: text.indexOf(stop) };
  };

  it('ends the text right before the first stop text, streamed, in --json and in each --chat -i answer', () => {
    const greedy = ['-n', '16', '--temp', '0'];
    const full = generateJson(greedy).json;
    const { stop, first } = stopIn(full.text);
    const cut = generateJson([...greedy, '--stop', 'never in this text \u0001', '--stop', stop]).json;
    expect(cut.stoppedBy).toBe('stop');
    expect(cut.text).toBe(full.text.slice(0, first));
    // it ended at the token that completed the stop text
    expect(cut.generatedTokens.length).toBeLessThan(16);
    expect(cut.generatedTokens).toEqual(full.generatedTokens.slice(0, cut.generatedTokens.length));
    const streamed = runCli([
      'generate',
      '-m',
      good,
      '-p',
      PROMPT,
      '--virtual-nodes',
      '2',
      ...greedy,
      '--stop',
      stop,
    ]);
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(streamed.stdout).toBe(PROMPT + full.text.slice(0, first) + '\n');
    expect(streamed.stderr).toMatch(/stopped by stop/);
    expect(leftovers(streamed.pid)).toEqual([]);

    const chat = (extra: string[]) =>
      runCli(
        ['generate', '-m', good, '--chat', '-i', '-p', 'Hi', '--virtual-nodes', '2', ...greedy, ...extra],
        {
          input: '',
        },
      );
    const answer = chat([]);
    expect(answer.code, answer.stderr).toBe(0);
    const a = stopIn(answer.stdout.slice(0, -1));
    const stopped = chat(['--stop', a.stop]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toBe(answer.stdout.slice(0, a.first) + '\n');
    expect(stopped.stderr).toMatch(/stopped by stop/);

    const bad = runCli(['generate', '-m', good, '-p', PROMPT, '--stop', '']);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/--stop needs a text to stop at/)]);
  });
});

describe('redblue generate --chat', () => {
  // A template of our own, so the expected prompt text is known without running Jinja here.
  const TEMPLATE =
    '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}';

  it("renders the prompt with the file's chat template after --system, and prints only the answer", () => {
    const path = join(dir, 'chat.gguf');
    const { metadata, tensors } = syntheticModel(SMALL);
    writeGguf(path, {
      metadata: new Map([...metadata, ['tokenizer.chat_template', gv.string(TEMPLATE)]]),
      tensors,
    });
    const args = ['generate', '-m', path, '-p', 'Hi', '--chat', '--system', 'Be brief.'];
    const common = ['--temp', '0', '-n', '6', '--virtual-nodes', '2'];
    const j = runCli([...args, ...common, '--json']);
    expect(j.code, j.stderr).toBe(0);
    const json = JSON.parse(j.stdout) as GenerateJson & { chatTemplate: string };
    expect(json.chatTemplate).toBe("the file's");
    const tokenizer = createTokenizer(readGguf(path).metadata);
    expect(json.promptTokens).toEqual(
      tokenizer.encode('[system] Be brief.\n[user] Hi\n[assistant] ', { addBos: true, parseSpecial: true }),
    );
    // Streamed: the answer alone (a plain prompt is echoed before it).
    const t = runCli([...args, ...common]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toBe(json.text + '\n');
    expect(leftovers(t.pid)).toEqual([]);
  });

  it('says when the file has no template (ChatML instead); --system needs --chat', () => {
    const { json } = generateJson(['--chat', '-n', '2', '--temp', '0']);
    expect((json as GenerateJson & { chatTemplate: string }).chatTemplate).toBe(
      'ChatML: the file has no tokenizer.chat_template',
    );
    const tokenizer = createTokenizer(readGguf(good).metadata);
    expect(json.promptTokens).toEqual(
      tokenizer.encode(`<|im_start|>user\n${PROMPT}<|im_end|>\n<|im_start|>assistant\n`, {
        addBos: true,
        parseSpecial: true,
      }),
    );
    const r = runCli(['generate', '-m', good, '-p', PROMPT, '--system', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--system goes with --chat/);
    // --json-object: pushed towards the structural tokens, the answer closes one object soon,
    // which JSON.parse reads, and the run stops there.
    const bias = jsonStructureBias(tokenizer).flatMap(([id, b]) => ['-l', `${id}+${b}`]);
    const obj = generateJson(['--json-object', '-n', '32', '--temp', '0', ...bias]).json;
    expect(obj.stoppedBy).toBe('stop');
    expect(typeof JSON.parse(obj.text)).toBe('object');
    // --json-schema: the keys it names, each value of its kind; a keyword it does not follow, or
    // a file that is not JSON, is refused before anything loads.
    const schemaFile = join(dir, 'schema.json');
    writeFileSync(
      schemaFile,
      JSON.stringify({
        type: 'object',
        properties: {
          size: { enum: ['S', 'M', 'L'] },
          ok: { type: 'boolean' },
          code: { type: 'string', pattern: '^[A-Z]{2}-\\d{2}$' },
        },
        required: ['size', 'ok', 'code'],
        additionalProperties: false,
      }),
    );
    // Given inline (as llama.cpp's --json-schema takes it); the file form is read by the refusals below.
    const inline = readFileSync(schemaFile, 'utf8');
    const kept = generateJson(['--json-schema', inline, '-n', '64', '--temp', '0', ...bias]).json;
    expect(kept.stoppedBy).toBe('stop');
    const v = JSON.parse(kept.text) as Record<string, unknown>;
    expect(Object.keys(v).sort()).toEqual(['code', 'ok', 'size']);
    expect(v.code).toMatch(/^[A-Z]{2}-\d{2}$/);
    expect(['S', 'M', 'L']).toContain(v.size);
    expect(typeof v.ok).toBe('boolean');
    writeFileSync(schemaFile, '{"type": "object", "properties": {"a": {"format": "color"}}}');
    const fmt = runCli(['generate', '-m', good, '-p', PROMPT, '--json-schema', schemaFile]);
    expect(fmt.code).toBe(2);
    expect(fmt.stderr).toMatch(
      /--json-schema .*schema\.json: \$\.properties\.a\.format: "color" is not supported/,
    );
    writeFileSync(schemaFile, '{"type": ');
    const notJson = runCli(['generate', '-m', good, '-p', PROMPT, '--json-schema', schemaFile]);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/schema\.json is not JSON/);
    const inlineBad = runCli([
      'generate',
      '-m',
      good,
      '-p',
      PROMPT,
      '--json-schema',
      '{"type": "object", "not": {}}',
    ]);
    expect(inlineBad.code).toBe(2);
    expect(inlineBad.stderr).toMatch(/--json-schema \(inline\): \$: 'not' is not supported/);
    // -l as llama.cpp writes it; a malformed one is refused before anything loads.
    const l = runCli(['generate', '-m', good, '-p', PROMPT, '-l', '15043*2']);
    expect(l.code).toBe(2);
    expect(l.stderr).toMatch(/--logit-bias takes TOKEN_ID\+BIAS or TOKEN_ID-BIAS .*got '15043\*2'/);
    const lookup = runCli(['generate', '-m', good, '-p', PROMPT, '--lookup', '33']);
    expect(lookup.code).toBe(2);
    expect(lookup.stderr).toMatch(/--lookup must be a whole number from 0 to 32, got '33'/);
  });
});

describe('redblue generate --chat --interactive', () => {
  it('answers each line of stdin in turn, the earlier turns read from the KV cache', () => {
    const r = runCli(
      ['generate', '-m', good, '--chat', '-i', '-p', 'Hi', '-n', '4', '--temp', '0', '--virtual-nodes', '2'],
      { input: 'How are you?\n\nBye\n' },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(leftovers(r.pid)).toEqual([]);
    // one answer line per message (-p's and the two non-empty lines), one timing line each
    expect(r.stdout.split('\n')).toHaveLength(4);
    const turns = [...r.stderr.matchAll(/\[prompt (\d+) new tokens \((\d+) from the cache\)/g)].map((m) => ({
      fresh: Number(m[1]),
      cached: Number(m[2]),
    }));
    expect(turns).toHaveLength(3);
    const [t0, t1, t2] = turns as [(typeof turns)[0], (typeof turns)[0], (typeof turns)[0]];
    expect(t0.cached).toBe(0);
    expect(t1.cached).toBeGreaterThan(t0.fresh); // the first turn's prompt and answer, reused
    expect(t2.cached).toBeGreaterThan(t1.fresh + t1.cached);
    for (const [args, why] of [
      [['-i'], /--interactive goes with --chat/],
      [['-i', '--chat', '--json'], /leave out --json/],
    ] as const) {
      const bad = runCli(['generate', '-m', good, ...args]);
      expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(why)]);
    }
  });
});

describe('redblue generate -f (the prompt from a file or stdin)', () => {
  it('gives the tokens of the same text given with -p; refuses both at once and a missing file', () => {
    const file = join(dir, 'prompt.txt');
    writeFileSync(file, PROMPT);
    const want = createTokenizer(readGguf(good).metadata).encode(PROMPT, {
      addBos: true,
      parseSpecial: true,
    });
    const base = ['generate', '-m', good, '--json', '--virtual-nodes', '2', '-n', '1', '--temp', '0'];
    for (const r of [runCli([...base, '-f', file]), runCli([...base, '-f', '-'], { input: PROMPT })]) {
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as GenerateJson).promptTokens).toEqual(want);
    }
    const both = runCli([...base, '-f', file, '-p', 'x']);
    expect([both.code, both.stderr.trim()]).toEqual([
      2,
      expect.stringMatching(/--prompt or with --file, not both/),
    ]);
    const missing = runCli([...base, '-f', join(dir, 'nope.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the prompt from .*nope\.txt: no such file/);
  });
});

describe("the split follows each node's measured read bandwidth", () => {
  it('--dry-run measures every node on its own cpus; a run reports the split it used', () => {
    const plan = runCli(['generate', '-m', good, '--dry-run', '--json', '--virtual-nodes', '2']);
    expect(plan.code, plan.stderr).toBe(0);
    const ranks = (JSON.parse(plan.stdout) as { split: ModelSplit }).split.ranks;
    expect(ranks).toHaveLength(2);
    for (const r of ranks) {
      // One core streams some GB/s here: a number that was measured, not a default.
      expect(r.speed).toBeGreaterThan(0.5);
      expect(r.speed).toBeLessThan(2000);
    }
    // Both virtual nodes read the machine's one memory node: equal shares, whatever each measured.
    expect(ranks.map((r) => r.rate)).toEqual([1, 1]);
    // The placement of token_embd and the output, with the reason (one memory node here).
    const placed = JSON.parse(plan.stdout) as { split: ModelSplit };
    expect(placed.split.tokenEmbd.placement).toBe('shared');
    expect(placed.split.output.placement).toBe('sharded');
    const text = runCli(['generate', '-m', good, '--dry-run', '--virtual-nodes', '2']);
    expect(text.stdout).toMatch(/rate \(read bandwidth\)/);
    expect(text.stdout).toMatch(/GB\/s\)/);
    expect(text.stdout).toMatch(/^note: ranks 0, 1 read one memory node \(host 0, memory node 0\)/m);
    // What the two ranks take of the one memory node, against what it has available now.
    expect(text.stdout).toMatch(
      /^memory: memory node 0 \(ranks 0, 1\) needs [\d.]+ [KM]iB \(weights [\d.]+ [KM]iB, KV cache [\d.]+ [KM]iB, executors 128 MiB\): .*[\d.]+ GiB available$/m,
    );
    expect(text.stdout).not.toMatch(/does not fit/);
    expect(text.stdout).toMatch(/^token_embd: shared, .*: each host's ranks share one memory node/m);
    expect(text.stdout).toMatch(
      /^output: sharded by vocabulary rows, .*: sharding with the logits gathered over shared memory/m,
    );
    const fixed = runCli([
      'generate',
      '-m',
      good,
      '--dry-run',
      '--virtual-nodes',
      '2',
      '--embeddings',
      'mirrored',
      '--output',
      'single',
    ]);
    expect(fixed.stdout).toMatch(/^token_embd: mirrored, .*: asked for$/m);
    expect(fixed.stdout).toMatch(/^output: single, one rank reading all .*: asked for/m);
    const bad = runCli(['generate', '-m', good, '--dry-run', '--output', 'everywhere']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--output.*everywhere.*sharded/s);

    // The executors measure their own nodes when they start; the run's split carries it.
    const { r, json } = generateJson(['-n', '2', '--temp', '0']);
    expect(r.code, r.stderr).toBe(0);
    const used = (json as unknown as { split: ModelSplit }).split.ranks;
    expect(used.map((x) => x.speed! > 0.5)).toEqual([true, true]);
    expect(used.map((x) => x.rate)).toEqual([1, 1]);
    // What the plan says a rank holds is what it copied into its node's memory: the buffer is
    // the planned bytes (each slice 64-byte aligned) rounded up to whole 2 MiB pages.
    const loaded = (json as unknown as { timings: { load: { weightBytes: number }[] } }).timings.load;
    used.forEach((x, i) => {
      expect(loaded[i]!.weightBytes).toBeGreaterThanOrEqual(x.weightBytes);
      expect(loaded[i]!.weightBytes - x.weightBytes).toBeLessThan(2 * 2 ** 20 + 64 * 64);
    });
  });
});

describe('redblue generate on bad input', () => {
  const run = (file: string, more: string[] = []) =>
    runCli(['generate', '-m', file, '-p', PROMPT, '-n', '4', '--temp', '0', '--virtual-nodes', '2', ...more]);

  it('a truncated file', () => {
    const f = join(dir, 'truncated.gguf');
    writeSyntheticModel(f, SMALL);
    truncateSync(f, Math.floor(readFileSync(f).length * 0.9));
    expectFailure(run(f), /truncated\.gguf.*(end of|truncated|beyond)/i);
  });

  it('a file that is not GGUF (wrong magic)', () => {
    const f = join(dir, 'magic.gguf');
    writeSyntheticModel(f, SMALL);
    const fd = openSync(f, 'r+');
    writeSync(fd, Buffer.from('GGML'), 0, 4, 0);
    closeSync(fd);
    expectFailure(run(f), /magic\.gguf.*(GGUF|magic)/i);
  });

  /** The small model with one metadata key set to a string. */
  const withKey = (name: string, key: string, value: string): string => {
    const f = join(dir, name);
    const { metadata, tensors } = syntheticModel(SMALL);
    writeGguf(f, { metadata: new Map(metadata).set(key, gv.string(value)), tensors });
    return f;
  };

  it('an architecture redblue does not run (gpt2)', () => {
    expectFailure(run(withKey('gpt2.gguf', 'general.architecture', 'gpt2')), /gpt2.*(llama|qwen)/);
  });

  it('a tokenizer redblue does not have (t5), found while the executors start: they are stopped', () => {
    expectFailure(
      run(withKey('t5.gguf', 'tokenizer.ggml.model', 't5')),
      /'t5' is not supported; supported: 'llama'/,
    );
  });

  it('a missing tensor', () => {
    const f = join(dir, 'missing.gguf');
    const { metadata, tensors } = syntheticModel(SMALL);
    writeGguf(f, {
      metadata: new Map(metadata),
      tensors: tensors.filter((t) => t.name !== 'blk.1.ffn_up.weight'),
    });
    expectFailure(run(f), /blk\.1\.ffn_up\.weight/);
  });

  it('a file that does not exist', () => {
    expectFailure(run(join(dir, 'nowhere.gguf')), /nowhere\.gguf/);
  });

  it('a context the memory cannot hold: refused before anything loads, with the longest that fits', () => {
    // 2^31 positions of this model's KV cache take 512 GiB: more than any machine of this kind.
    const f = join(dir, 'long-context.gguf');
    writeSyntheticModel(f, { ...SMALL, nCtx: 2 ** 31 });
    const r = run(f, ['--ctx', String(2 ** 31)]);
    expectFailure(
      r,
      /^redblue: the model does not fit in memory: memory node 0 \(ranks 0, 1\) needs [\d.]+ GiB \(weights [\d.]+ [KM]iB, KV cache 512 GiB for 2147483648 positions, executors 128 MiB\) but has [\d.]+ GiB available .*: ask for a context of at most \d+ positions \(--ctx\)$/,
    );
    expect(r.code).toBe(2);
    const dry = runCli(['generate', '-m', f, '--ctx', String(2 ** 31), '--dry-run', '--virtual-nodes', '2']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^memory: memory node 0 \(ranks 0, 1\) needs .*: does not fit$/m);
    expect(dry.stdout).toMatch(/^note: a run would stop here: the model does not fit in memory: /m);
  });

  it('a context longer than the file was trained for', () => {
    const r = run(good, ['--ctx', String(SMALL.nCtx! + 1)]);
    expectFailure(
      r,
      new RegExp(
        `^redblue: a context of ${SMALL.nCtx! + 1} positions: good\\.gguf was trained for ${SMALL.nCtx}; use --ctx ${SMALL.nCtx} or less$`,
      ),
    );
    expect(r.code).toBe(2);
  });

  it('a prompt longer than --ctx, or as long: the flag to change, with a context that would do', () => {
    const long = run(good, [
      '--ctx',
      '8',
      '-p',
      'a prompt of rather more than eight tokens, surely, with commas',
    ]);
    expectFailure(
      long,
      /prompt is (\d+) tokens but the context holds 8: use --ctx (\d+) or more, or a shorter prompt/,
    );
    const [, n, fix] = /prompt is (\d+) tokens.*--ctx (\d+) or more/.exec(long.stderr)!;
    expect(Number(fix)).toBe(Number(n) + 1);
    expect(long.code).toBe(2);
    // Exactly as long: no position left for a token.
    const tokens = run(good, ['--ctx', '64', '-p', 'three little words', '-n', '1', '--json']);
    const count = (JSON.parse(tokens.stdout) as { promptTokens: number[] }).promptTokens.length;
    const full = run(good, ['--ctx', String(count), '-p', 'three little words']);
    expectFailure(
      full,
      new RegExp(
        `the prompt is ${count} tokens and the context holds ${count}, leaving no room for a generated token: use --ctx ${count + 1} or more`,
      ),
    );
    expect(full.code).toBe(2);
  });
});

describe('an executor killed during generation', () => {
  it('fails the run within seconds, naming its rank, leaving nothing in /dev/shm', async () => {
    // Wide enough that 2000 tokens take far longer than the test waits.
    const f = join(dir, 'long.gguf');
    writeSyntheticModel(f, { ...SMALL, nLayer: 4, nEmbd: 512, nHead: 8, nHeadKv: 4, nFf: 1536, nCtx: 4096 });
    const child = spawn(
      process.execPath,
      [
        cliPath,
        'generate',
        '-m',
        f,
        '-p',
        PROMPT,
        '-n',
        '4000',
        '--ctx',
        '4096',
        '--seed',
        '1',
        '--virtual-nodes',
        '2',
        // What this test holds: a run told to stop at a loss (recovery.test.ts covers going on).
        '--on-failure',
        'abort',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    // Generation has begun once text beyond the echoed prompt has arrived.
    for (let i = 0; i < 300 && stdout.length < PROMPT.length + 8; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(stdout.length).toBeGreaterThanOrEqual(PROMPT.length + 8);
    const executors = childrenOf(child.pid!);
    expect(executors).toHaveLength(2);
    const victim = executors.find((pid) =>
      readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes('--rank 1 '),
    )!;
    const killedAt = Date.now();
    process.kill(victim, 'SIGKILL');
    const code = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(-999), 15_000))]);
    if (code === -999) child.kill('SIGKILL');
    expect(code).not.toBe(0);
    expect(code).not.toBe(-999);
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(stderr).toMatch(/rank 1/);
    for (const pid of executors) expect(() => process.kill(pid, 0)).toThrow();
    expect(leftovers(child.pid!)).toEqual([]);
  });
});
