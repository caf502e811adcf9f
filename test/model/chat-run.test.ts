// `generate --chat --interactive` underneath (runChat): real executors on 2 virtual nodes and a
// written model. A conversation that keeps its earlier turns in the KV cache answers exactly as
// one that processes the whole conversation again every turn (greedy), and processes only what is
// new (with a draft model too); one that outgrows the context drops its oldest exchanges and goes on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runChat, type ChatTurn } from '../../executor/coordinator/chat-run.js';
import { writeSyntheticModel } from '../../model/synth.js';
import { readTopology } from '../../native/topology.js';
import { virtualize } from '../../native/virtual-nodes.js';
import { SMALL_LLAMA } from '../helpers/model-shapes.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-chat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'chat.gguf');
// f16: every row of a batch gets the arithmetic it gets alone, so a token processed in a turn's
// batch and the same token decoded alone leave the same KV entries.
writeSyntheticModel(model, { ...SMALL_LLAMA, types: { default: 'f16' } });

const MESSAGES = ['Hello there', 'What is the capital of France?', 'And of Spain?', 'Thanks!'];

function chat(reuseCache: boolean, ctx?: number, draft?: boolean): Promise<ChatTurn[]> {
  const queue = [...MESSAGES];
  return runChat({
    model,
    topology: virtualize(readTopology(), 2),
    ...(ctx ? { ctx } : {}),
    ...(draft ? { draft: { path: model, max: 3, pMin: 0 } } : {}),
    system: 'Answer briefly.',
    maxTokens: 6,
    sampling: { temperature: 0, seed: 1 },
    nextMessage: () => Promise.resolve(queue.shift()),
    reuseCache,
  });
}

describe('a conversation (generate --chat --interactive)', () => {
  it('answers from the KV cache of its earlier turns exactly as from the whole conversation again', async () => {
    const cached = await chat(true);
    const again = await chat(false);
    expect(cached.map((t) => t.answer)).toEqual(again.map((t) => t.answer));
    expect(cached.map((t) => t.user)).toEqual(MESSAGES);
    expect(cached[0]!.reusedTokens).toBe(0);
    for (const [i, t] of cached.entries()) {
      if (i > 0) expect(t.reusedTokens, `turn ${i}`).toBeGreaterThan(cached[i - 1]!.reusedTokens);
      // what it processed is the conversation less what the cache held
      expect(t.promptTokens + t.reusedTokens).toBe(again[i]!.promptTokens);
      expect(again[i]!.reusedTokens).toBe(0);
    }
    // The model drafting for itself (generate --draft), its own KV cache kept across the turns
    // too: the same answers, every drafted token taken.
    const drafted = await chat(true, undefined, true);
    expect(drafted.map((t) => t.answer)).toEqual(cached.map((t) => t.answer));
    // Each turn's own drafts (the drafter outlives the turns): at most 3 a token of its answer.
    for (const t of drafted) {
      expect(t.drafted).toBeGreaterThan(0);
      expect(t.drafted).toBeLessThanOrEqual(3 * t.generatedTokens);
      expect(t.accepted).toBe(t.drafted);
    }
  }, 120_000);

  it('drops its oldest exchanges when the context fills, and refuses a message that cannot fit', async () => {
    const turns = await chat(true, 96);
    expect(turns).toHaveLength(MESSAGES.length);
    expect(turns.some((t) => t.dropped > 0)).toBe(true);
    for (const t of turns) expect(t.promptTokens + t.reusedTokens + 6).toBeLessThanOrEqual(96);
    const queue = ['word '.repeat(200)];
    await expect(
      runChat({
        model,
        topology: virtualize(readTopology(), 2),
        ctx: 96,
        maxTokens: 6,
        sampling: { temperature: 0, seed: 1 },
        nextMessage: () => Promise.resolve(queue.shift()),
      }),
    ).rejects.toThrow(/conversation of \d+ tokens, and the context holds 96 .*larger --ctx/);
  }, 120_000);
});
