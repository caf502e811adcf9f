// `redblue serve --hosts`: the server's executors on two supervisors (`redblue executor` on
// loopback, one executor each), every layer of every step split across both, continuous batching
// across hosts: concurrent streams give exactly the text each gives alone and share steps, and
// SIGTERM drains, ends the hosts' sessions and exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticModel } from '../../model/synth.js';
import { SMALL_LLAMA } from '../helpers/model-shapes.js';
import { cliPath, repoRoot } from '../helpers/cli.js';
import { childrenOf, eventually } from './lab-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-serve-hosts-'));
const token = join(dir, 'token');
writeFileSync(token, 'serve-hosts-test-token-0123456\n', { mode: 0o600 });
const model = join(dir, 'small.gguf');
const procs: ChildProcess[] = [];
let server: ChildProcess;
const supervisors: number[] = [];
let base = '';
let serverErr = '';

/** A child that resolves with its match once `pattern` appears on stdout. */
function startUntil(
  args: string[],
  pattern: RegExp,
): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [cliPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: repoRoot,
    });
    procs.push(proc);
    let out = '';
    let err = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = pattern.exec(out);
      if (m) resolve({ proc, match: m });
    });
    proc.on('exit', (code) => reject(new Error(`${args[0]} exited (${code}): ${err}`)));
  });
}

beforeAll(async () => {
  writeSyntheticModel(model, { ...SMALL_LLAMA, seed: 9 });
  const hosts = await Promise.all(
    [0, 1].map((i) =>
      startUntil(
        [
          'executor',
          '--listen',
          '127.0.0.1:0',
          '--virtual-nodes',
          '1',
          '--cpus',
          String(i),
          '--token-file',
          token,
        ],
        /ready (\d+)/,
      ),
    ),
  );
  supervisors.push(...hosts.map((h) => h.proc.pid!));
  const list = hosts.map((h) => `127.0.0.1:${h.match[1]}`).join(',');
  const s = await startUntil(
    ['serve', '-m', model, '--hosts', list, '--token-file', token, '--port', '0', '--parallel', '4'],
    /listening on (http:\/\/\S+)/,
  );
  server = s.proc;
  server.stderr!.on('data', (d: Buffer) => (serverErr += d.toString()));
  base = s.match[1]!;
}, 90_000);

afterAll(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function complete(prompt: string, maxTokens: number, stream: boolean): Promise<string> {
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream }),
  });
  expect(res.status).toBe(200);
  if (!stream) return ((await res.json()) as { choices: { text: string }[] }).choices[0]!.text;
  let text = '';
  for (const line of (await res.text()).split('\n\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    text += (JSON.parse(line.slice(6)) as { choices: { text?: string }[] }).choices[0]?.text ?? '';
  }
  return text;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('redblue serve across two hosts', () => {
  it('4 concurrent streams give exactly the text each gives alone, in shared steps', async () => {
    const prompts = [
      'Once upon a time',
      'The quick brown fox',
      'Hello',
      'In a hole in the ground there lived',
    ];
    const alone: string[] = [];
    for (const [i, p] of prompts.entries()) alone.push(await complete(p, 8 + 2 * i, false));
    expect(alone.every((t) => t.length > 0)).toBe(true);
    const steps = await metric('redblue_steps_total');
    const seqs = await metric('redblue_step_sequences_total');
    const together = await Promise.all(prompts.map((p, i) => complete(p, 8 + 2 * i, true)));
    expect(together).toEqual(alone);
    expect(
      ((await metric('redblue_step_sequences_total')) - seqs) /
        ((await metric('redblue_steps_total')) - steps),
    ).toBeGreaterThan(2);
  }, 60_000);

  it("echo scores a prompt across the hosts: each position's distribution as its prefix's own", async () => {
    type Lp = { token_logprobs: (number | null)[]; top_logprobs: (Record<string, number> | null)[] };
    const ask = async (body: object) => {
      const res = await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ temperature: 0, logprobs: 4, ...body }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { choices: { logprobs: Lp }[] }).choices[0]!.logprobs;
    };
    // Token ids (Llama 2's vocabulary): more than the 4 slots' rows a step, so the prompt is
    // scored over several steps.
    const ids = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889];
    const echoed = ask({ prompt: ids, max_tokens: 0, echo: true });
    // Three streams decode beside it.
    const others = ['Once upon a time', 'Hello', 'The quick brown fox'].map((p) => complete(p, 12, true));
    const lp = await echoed;
    await Promise.all(others);
    expect(lp.token_logprobs).toHaveLength(ids.length);
    expect(lp.token_logprobs[0]).toBeNull();
    for (const p of [1, 2, 7, ids.length - 1]) {
      const want = (await ask({ prompt: ids.slice(0, p), max_tokens: 1 })).top_logprobs[0]!;
      const got = lp.top_logprobs[p]!;
      expect(Object.keys(got)).toEqual(Object.keys(want));
      for (const k of Object.keys(want)) expect(got[k]).toBeCloseTo(want[k]!, 4);
      expect(lp.token_logprobs[p]!).toBeLessThan(0);
    }
  }, 60_000);

  it('n choices across the hosts: the later ones copy the first one’s prompt, each as alone', async () => {
    const ask = async (body: object) => {
      const res = await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          prompt: 'Far over the misty mountains cold, to dungeons deep',
          max_tokens: 8,
          temperature: 0.9,
          top_k: 0,
          min_p: 0,
          ...body,
        }),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as {
        choices: { text: string }[];
        usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
      };
    };
    const r = await ask({ seed: 5, n: 3 });
    expect(r.usage.prompt_tokens_details.cached_tokens).toBe(r.usage.prompt_tokens - 1);
    const alone = await Promise.all([5, 6, 7].map((seed) => ask({ seed })));
    expect(r.choices.map((c) => c.text)).toEqual(alone.map((a) => a.choices[0]!.text));
    expect(new Set(alone.map((a) => a.choices[0]!.text)).size).toBeGreaterThan(1);
  }, 60_000);

  it('embeds across the hosts as one host does', async () => {
    const texts = ['Once upon a time', 'the cat sat'];
    const embed = async (at: string) => {
      const res = await fetch(`${at}/v1/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: texts }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { data: { embedding: number[] }[] }).data.map((d) => d.embedding);
    };
    const across = await embed(base);
    // The same split (2 executors) on this machine alone.
    const local = await startUntil(
      ['serve', '-m', model, '--virtual-nodes', '2', '--port', '0', '--parallel', '4'],
      /listening on (http:\/\/\S+)/,
    );
    try {
      const alone = await embed(local.match[1]!);
      for (let i = 0; i < texts.length; i++) {
        expect(across[i]).toHaveLength(SMALL_LLAMA.nEmbd);
        const diff = Math.max(...across[i]!.map((x, j) => Math.abs(x - alone[i]![j]!)));
        expect(diff).toBeLessThan(1e-5);
      }
      // Hidden states, not rows of logits: the texts' vectors are unit length and differ.
      expect(Math.hypot(...across[0]!)).toBeCloseTo(1, 5);
      expect(across[0]).not.toEqual(across[1]);
    } finally {
      local.proc.kill('SIGTERM');
    }
  });

  it('SIGTERM finishes the request in hand and exits 0, ending the hosts’ sessions', async () => {
    const pending = complete('Once upon a time', 12, false);
    await new Promise((r) => setTimeout(r, 50));
    server.kill('SIGTERM');
    expect((await pending).length).toBeGreaterThan(0);
    const code = await new Promise<number | null>((r) =>
      server.exitCode !== null ? r(server.exitCode) : server.on('exit', r),
    );
    expect(code, serverErr).toBe(0);
    expect(serverErr).toMatch(/SIGTERM: finishing the requests in hand/);
    // The sessions ended: each supervisor stopped the executor it had started for the server.
    expect(await eventually(() => supervisors.every((p) => childrenOf(p).length === 0), 15_000)).toBe(true);
  }, 60_000);
});
