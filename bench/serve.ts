// `redblue bench serve`: a real `redblue serve` process on a GGUF model (--parallel the largest
// level, so every level is batched), driven with 1, 2, 4 and 8 concurrent streaming completions
// of a fixed length. Aggregate generated tokens/s at each
// level against one stream (cases `streams_N`), time to first token and time per output token
// (median, p99) at each level, and one stream through the server against `redblue generate` on
// the same model and executors, measured in the same run. With --lookup N, the levels again
// against a server that drafts (serve --lookup N), each against the same level without. Then
// `embeddings`: one /v1/embeddings request of 8 inputs against llama.cpp's embedding context.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { UsageError } from '../common/errors.js';
import { machineInfo, renderReport, result, type BenchReport, type BenchResult } from './report.js';
import { openReference } from './llama-reference.js';

export interface ServeBenchOptions {
  model: string;
  executors: number;
  /** Generated tokens per request. */
  tokens: number;
  levels: number[];
  /**
   * How many times one stream and `redblue generate` are measured, alternated; the pair with the
   * median ratio is the figure (single runs on a shared VM spread by ±5%).
   */
  pairs: number;
  /** Also measure the levels on a server with prompt lookup (serve --lookup N); 0: not. */
  lookup?: number;
  /**
   * Tokens of each of the 8 inputs of the `embeddings` case (one /v1/embeddings request against
   * llama.cpp's embedding context on the same token lists); 0: not measured. Default 128.
   */
  embedTokens?: number;
}

/** Inputs of the `embeddings` case: one request of this many, as an indexing tool sends them. */
const EMBED_INPUTS = 8;

const log = (s: string) => process.stderr.write(`bench serve: ${s}\n`);
const CLI = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../dist/cli/main.js' : '../cli/main.js', import.meta.url),
);

interface StreamStats {
  /** Seconds from the request to its first piece of text. */
  ttft: number;
  /** Seconds between pieces of text after the first. */
  gaps: number[];
  tokens: number;
  /** This process's cpu seconds (user + system) while the stream ran: what the client cost. */
  clientCpu: number;
}

/**
 * One streaming completion; its timings from the server-sent events as they arrive. The client
 * shares the two cores with the server it measures, so it is the cheapest one Node has:
 * `node:http` on its own connection, bytes split into events by hand (`fetch` and its web
 * streams spent 0.55-0.68 ms of cpu an event there, this 0.29-0.82, a bare socket read 0.19).
 */
function streamOnce(base: string, prompt: string, tokens: number): Promise<StreamStats> {
  const body = JSON.stringify({
    prompt,
    max_tokens: tokens,
    temperature: 0,
    stream: true,
    ignore_eos: true,
    stream_options: { include_usage: true },
  });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let first = -1;
    let last = 0;
    const gaps: number[] = [];
    let generated = 0;
    const onEvent = (event: string) => {
      if (!event.startsWith('data: ') || event === 'data: [DONE]') return;
      const msg = JSON.parse(event.slice(6)) as {
        choices: { text: string }[];
        usage?: { completion_tokens: number };
      };
      if (msg.usage) generated = msg.usage.completion_tokens;
      if (!msg.choices[0]?.text) return;
      const now = performance.now();
      if (first < 0) first = now;
      else gaps.push((now - last) / 1e3);
      last = now;
    };
    const req = request(
      `${base}/v1/completions`,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: 600_000,
      },
      (res) => {
        let buf: Buffer = Buffer.alloc(0);
        if (res.statusCode !== 200) {
          res.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
          res.on('end', () =>
            reject(new Error(`the server answered ${res.statusCode}: ${buf.toString('utf8').trim()}`)),
          );
          return;
        }
        res.on('data', (d: Buffer) => {
          buf = buf.length ? Buffer.concat([buf, d]) : d;
          try {
            let i: number;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              onEvent(buf.toString('utf8', 0, i));
              buf = buf.subarray(i + 2);
            }
          } catch (e) {
            req.destroy(e as Error);
          }
        });
        res.on('error', reject);
        res.on('end', () => {
          const cpu = process.cpuUsage(cpu0);
          resolve({
            ttft: (first - t0) / 1e3,
            gaps,
            tokens: generated,
            clientCpu: (cpu.user + cpu.system) / 1e6,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer from the server in 600 s')));
    req.on('error', reject);
    req.end(body);
  });
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function startServer(o: ServeBenchOptions, lookup = 0): Promise<{ proc: ChildProcess; base: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [
        CLI,
        'serve',
        '-m',
        o.model,
        '--port',
        '0',
        '--virtual-nodes',
        String(o.executors),
        '--parallel',
        String(Math.max(...o.levels)),
        ...(lookup ? ['--lookup', String(lookup)] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ proc, base: m[1]! });
    });
    proc.on('exit', (code) => reject(new Error(`redblue serve exited (${code}): ${err.trim()}`)));
  });
}

export async function benchServe(o: ServeBenchOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  // Run without blocking this process: a blocked event loop misses the server closing an idle
  // keep-alive connection (after 5 s), and the next request then goes out on the dead socket
  // ("fetch failed" on the second pair).
  const generateRate = async (): Promise<number> => {
    log(`redblue generate on ${o.executors} executor(s), ${o.tokens} tokens (the reference for one stream)`);
    const gen = await promisify(execFile)(
      process.execPath,
      [
        CLI,
        'generate',
        '-m',
        o.model,
        '-p',
        'Once upon a time',
        '-n',
        String(o.tokens),
        '--temp',
        '0',
        '--json',
        '--virtual-nodes',
        String(o.executors),
      ],
      { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 },
    ).catch((e: { stderr?: string; message: string }) => {
      throw new Error(`redblue generate failed: ${(e.stderr ?? '').trim() || e.message}`);
    });
    return (JSON.parse(gen.stdout) as { timings: { generateTokensPerSecond: number } }).timings
      .generateTokensPerSecond;
  };
  // One stream's generation rate counted as generate's timings count theirs: the tokens after
  // the first over the time they took (generate's figure leaves the prompt out).
  const genRate = (s: StreamStats) => s.gaps.length / (s.gaps.reduce((a, g) => a + g, 0) || Infinity);
  // The client's cpu per token beside each pair: it runs on the cores the server uses.
  const pairs: { stream: number; generate: number; clientCpuMsPerToken: number }[] = [];
  const cpuPerToken = (s: StreamStats) => (s.clientCpu * 1e3) / Math.max(1, s.tokens);
  const firstGenerate = await generateRate();

  const { proc, base } = await startServer(o);
  const results: BenchResult[] = [];
  try {
    await streamOnce(base, 'warm up', 4);
    const rates = new Map<number, number>();
    for (const n of o.levels) {
      const { all, rate } = await level(base, n, o.tokens);
      rates.set(n, rate);
      if (n === 1)
        pairs.push({
          stream: genRate(all[0]!),
          generate: firstGenerate,
          clientCpuMsPerToken: cpuPerToken(all[0]!),
        });
      const ttft = all.map((s) => s.ttft);
      const tpot = all.flatMap((s) => s.gaps);
      results.push(
        result({
          case: `streams_${n}`,
          metric: 'throughput',
          value: rate,
          unit: 'tokens/s',
          reference: 'streams_1',
          referenceValue: rates.get(1) ?? rate,
          details: {
            streams: n,
            tokensPerStream: o.tokens,
            ttftMedianMs: quantile(ttft, 0.5) * 1e3,
            ttftP99Ms: quantile(ttft, 0.99) * 1e3,
            tpotMedianMs: quantile(tpot, 0.5) * 1e3,
            tpotP99Ms: quantile(tpot, 0.99) * 1e3,
          },
        }),
      );
    }
    // More pairs, each generate run right before its stream (the server's executors sleep meanwhile).
    while (pairs.length < o.pairs) {
      const generate = await generateRate();
      log(`one stream of ${o.tokens} tokens (pair ${pairs.length + 1} of ${o.pairs})`);
      const one = await streamOnce(base, 'Story number 1: once upon a time', o.tokens);
      pairs.push({ stream: genRate(one), generate, clientCpuMsPerToken: cpuPerToken(one) });
    }
    const median = [...pairs].sort((a, b) => a.stream / a.generate - b.stream / b.generate)[
      (pairs.length - 1) >> 1
    ]!;
    results.push(
      result({
        case: 'one_stream_vs_generate',
        metric: 'generation rate (after the first token)',
        value: median.stream,
        unit: 'tokens/s',
        reference: 'redblue_generate',
        referenceValue: median.generate,
        details: {
          model: basename(o.model),
          executors: o.executors,
          oneStreamThroughput: rates.get(1) ?? 0,
          pairs,
        },
      }),
    );
    const embedTokens = o.embedTokens ?? 128;
    if (embedTokens > 0) results.push(await embeddingsCase(base, o.model, o.executors, embedTokens));
  } finally {
    await stopServer(proc);
  }
  if (o.lookup) {
    const drafting = await startServer(o, o.lookup);
    try {
      await streamOnce(drafting.base, 'warm up', 4);
      for (const n of o.levels) {
        const before = await draftCounts(drafting.base);
        const { rate } = await level(drafting.base, n, o.tokens, ` (--lookup ${o.lookup})`);
        const after = await draftCounts(drafting.base);
        const without = results.find((r) => r.case === `streams_${n}`)!.value;
        results.push(
          result({
            case: `streams_${n}_lookup${o.lookup}`,
            metric: 'throughput with prompt lookup',
            value: rate,
            unit: 'tokens/s',
            reference: `streams_${n}`,
            referenceValue: without,
            details: {
              streams: n,
              tokensPerStream: o.tokens,
              draftedTokens: after.drafted - before.drafted,
              acceptedTokens: after.accepted - before.accepted,
            },
          }),
        );
      }
    } finally {
      await stopServer(drafting.proc);
    }
  }
  return { benchmark: 'serve', results, machine: machineInfo(), startedAt };
}

/**
 * EMBED_INPUTS token lists of `tokens` each (BOS first where the model has one) through one
 * /v1/embeddings request, input tokens a second, against llama.cpp's embedding context on the same
 * lists one after another with a thread per executor (the server's executors sleep meanwhile).
 * Best of three rounds each, after one untimed round.
 */
async function embeddingsCase(
  base: string,
  model: string,
  executors: number,
  tokens: number,
): Promise<BenchResult> {
  log(`embeddings: ${EMBED_INPUTS} inputs of ${tokens} tokens, against llama.cpp's embedding context`);
  const lists = await Promise.all(
    Array.from({ length: EMBED_INPUTS }, async (_, i) => {
      const res = await fetch(`${base}/tokenize`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          content: `Document ${i + 1}. ` + 'The quick brown fox jumps over the lazy dog. '.repeat(tokens),
          add_special: true,
        }),
      });
      return ((await res.json()) as { tokens: number[] }).tokens.slice(0, tokens);
    }),
  );
  const inputTokens = lists.reduce((a, l) => a + l.length, 0);
  const ours = async (): Promise<number> => {
    const t0 = performance.now();
    const res = await fetch(`${base}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: lists }),
    });
    if (res.status !== 200) throw new Error(`/v1/embeddings answered ${res.status}: ${await res.text()}`);
    await res.json();
    return inputTokens / ((performance.now() - t0) / 1e3);
  };
  let rate = 0;
  for (let round = 0; round < 4; round++) {
    const r = await ours();
    if (round > 0) rate = Math.max(rate, r);
  }
  const ref = await openReference(model, { threads: executors, ctx: tokens + 8 });
  let reference = 0;
  try {
    for (let round = 0; round < 4; round++) {
      const t0 = performance.now();
      for (const l of lists) await ref.embedding(l);
      if (round > 0) reference = Math.max(reference, inputTokens / ((performance.now() - t0) / 1e3));
    }
  } finally {
    await ref.close();
  }
  return result({
    case: 'embeddings',
    metric: 'input tokens embedded',
    value: rate,
    unit: 'tokens/s',
    reference: 'llama.cpp',
    referenceValue: reference,
    details: { inputs: EMBED_INPUTS, tokensPerInput: tokens, executors, llamaCppThreads: executors },
  });
}

/** `n` concurrent streams of `tokens` each: every stream's timings and the aggregate tokens/s. */
async function level(
  base: string,
  n: number,
  tokens: number,
  note = '',
): Promise<{ all: StreamStats[]; rate: number }> {
  log(`${n} concurrent stream(s) of ${tokens} tokens${note}`);
  const t0 = performance.now();
  const all = await Promise.all(
    Array.from({ length: n }, (_, i) => streamOnce(base, `Story number ${i + 1}: once upon a time`, tokens)),
  );
  const seconds = (performance.now() - t0) / 1e3;
  return { all, rate: all.reduce((a, s) => a + s.tokens, 0) / seconds };
}

/** The server's prompt-lookup counters (GET /metrics). */
async function draftCounts(base: string): Promise<{ drafted: number; accepted: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const count = (o: string) =>
    Number(new RegExp(`^redblue_draft_tokens_total\\{outcome="${o}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { drafted: count('drafted'), accepted: count('accepted') };
}

async function stopServer(proc: ChildProcess): Promise<void> {
  proc.kill('SIGTERM');
  await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.on('exit', r)));
}

export function registerBenchServe(bench: Command): void {
  bench
    .command('serve')
    .description(
      'a real `redblue serve` under 1, 2, 4 and 8 concurrent streams, against one stream and redblue generate; embeddings against llama.cpp',
    )
    .requiredOption('-m, --model <file>', 'the GGUF model')
    .option('--executors <N>', 'executors (virtual nodes) of the server', (v) => Number(v), 2)
    .option('--tokens <N>', 'generated tokens per request', (v) => Number(v), 64)
    .option(
      '--levels <list>',
      'concurrent streams to measure, comma-separated (must start with 1)',
      '1,2,4,8',
    )
    .option(
      '--pairs <N>',
      'one stream against generate: alternated runs of each, the median ratio reported',
      (v) => Number(v),
      3,
    )
    .option(
      '--lookup <N>',
      'also measure every level on a server with prompt lookup (serve --lookup N), against the same level without',
      (v) => Number(v),
    )
    .option(
      '--embed-tokens <N>',
      `tokens of each of the ${EMBED_INPUTS} inputs of the embeddings case (one /v1/embeddings request against llama.cpp's embedding context; 0: skip it)`,
      (v) => Number(v),
      128,
    )
    .option('--json', 'print the results in the shared bench schema')
    .action(
      async (opts: {
        model: string;
        executors: number;
        tokens: number;
        levels: string;
        pairs: number;
        lookup?: number;
        embedTokens: number;
        json?: boolean;
      }) => {
        const levels = opts.levels.split(',').map((x) => Number(x.trim()));
        if (levels[0] !== 1 || !levels.every((x) => Number.isInteger(x) && x >= 1 && x <= 64))
          throw new UsageError(
            `--levels must list stream counts from 1 to 64, starting with 1, got '${opts.levels}'`,
          );
        for (const [flag, v] of [
          ['--executors', opts.executors],
          ['--tokens', opts.tokens],
          ['--pairs', opts.pairs],
          ...(opts.lookup !== undefined ? ([['--lookup', opts.lookup]] as const) : []),
        ] as const)
          if (!Number.isInteger(v) || v < 1)
            throw new UsageError(`${flag} must be a whole number of at least 1`);
        if (!Number.isInteger(opts.embedTokens) || opts.embedTokens < 0)
          throw new UsageError('--embed-tokens must be a whole number (0 skips the embeddings case)');
        const report = await benchServe({
          model: opts.model,
          executors: opts.executors,
          tokens: opts.tokens,
          levels,
          pairs: opts.pairs,
          ...(opts.lookup ? { lookup: opts.lookup } : {}),
          embedTokens: opts.embedTokens,
        });
        process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
      },
    );
}
