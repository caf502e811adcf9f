// `redblue generate`: text from a GGUF model, every layer split across one executor per
// (virtual) NUMA node.
import { Option, type Command } from 'commander';
import { readTopology } from '../../native/topology.js';
import { parsePositiveInt, UsageError } from '../../common/errors.js';
import { formatBytes } from '../format.js';
import { Progress } from '../progress.js';
import {
  runGenerate,
  planGenerate,
  type GenerateRun,
  type ModelRunOptions,
} from '../../executor/coordinator/generate-run.js';
import {
  renderModelSplit,
  type EmbeddingPlacement,
  type OutputPlacement,
} from '../../planner/model-split.js';
import { writeModelSplitHtml } from '../../planner/html/model-split.js';
import { renderMemoryNeeds } from '../../planner/model-memory.js';
import { MAX_DRAFT } from '../../model/lookup.js';
import {
  compileJsonSchema,
  JsonSchemaError,
  SUPPORTED,
  type JsonShape,
} from '../../model/json-constraint.js';
import { runChat, type ConversationOptions } from '../../executor/coordinator/chat-run.js';
import type { DraftOptions } from '../../executor/coordinator/draft.js';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { basename } from 'node:path';

export interface GenerateFlags {
  model: string;
  prompt: string;
  nPredict: number;
  ctx?: number;
  temp: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
  frequencyPenalty: number;
  presencePenalty: number;
  logitBias: [number, number][];
  /** Texts that end the answer where they appear (the text printed stops before them). */
  stop: string[];
  jsonObject?: boolean;
  jsonSchema?: string;
  lookup: number;
  /** A draft model (speculative decoding), its most tokens a draft, its p-min. */
  draft?: string;
  draftMax?: number;
  draftPMin?: number;
  seed?: number;
  json?: boolean;
  bos: boolean;
  ignoreEos?: boolean;
  embeddings: EmbeddingPlacement | 'auto';
  output: OutputPlacement | 'auto';
  chat?: boolean;
  system?: string;
  file?: string;
}

const number = (flag: string, min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a number from ${min} to ${max}, got '${v}'`);
  }
  return n;
};
const whole = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n)) {
    throw new UsageError(`${flag} must be a non-negative whole number, got '${v}'`);
  }
  return n;
};

export function timingsText(r: GenerateRun): string {
  const t = r.result.timings;
  const lines = [
    `model: ${r.model.info.arch}, ${r.model.info.nLayer} layers, ${formatBytes(r.model.info.weightBytesPerToken)} of weights, on ${r.model.perRank.length} executor(s), context ${r.model.ctx}`,
    `load:       ${r.model.seconds.toFixed(2)} s`,
    `prompt:     ${t.promptTokens} tokens in ${(t.promptSeconds * 1e3).toFixed(1)} ms, ${t.promptTokensPerSecond.toFixed(2)} tokens/s`,
    `generation: ${t.generatedTokens} tokens in ${(t.generateSeconds * 1e3).toFixed(1)} ms, ${t.generateTokensPerSecond.toFixed(2)} tokens/s (stopped by ${r.result.stoppedBy})`,
  ];
  if (t.drafted !== undefined)
    lines.push(
      `${t.draftModel ? 'draft:   ' : 'lookup:  '}   ${t.accepted} of ${t.drafted} drafted tokens were the ones chosen (${t.drafted ? ((100 * t.accepted!) / t.drafted).toFixed(0) : 0}%)${t.draftModel ? `; ${t.draftModel.steps} draft-model steps in ${(t.draftModel.seconds * 1e3).toFixed(1)} ms (${basename(t.draftModel.path)} on ${t.draftModel.executors} executor(s), loaded in ${t.draftModel.loadSeconds.toFixed(2)} s)` : ''}`,
    );
  if (t.draftModel?.lost) lines.push(`draft lost: ${t.draftModel.lost}; went on without drafts`);
  for (const x of r.recoveries ?? [])
    lines.push(
      `lost:       ${x.lost} after ${x.afterTokens} generated tokens: ${x.reason}; went on with ${x.executors} executor(s) after ${x.seconds.toFixed(2)} s`,
    );
  for (const p of r.model.perRank) {
    const rt = t.perRank[p.rank]!;
    lines.push(
      `  rank ${p.rank}: ${formatBytes(p.weightBytes)} of weights (${p.backing}), ${formatBytes(p.kvBytes)} KV cache; compute ${rt.computeSeconds.toFixed(3)} s, exchange ${rt.exchangeSeconds.toFixed(3)} s${allReducesText(rt.allReduces)}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** "; all-reduces 44 shm-split, 2860 shm-flat": which algorithms moved the partial sums. */
function allReducesText(counts: Record<string, number> | undefined): string {
  const parts = Object.entries(counts ?? {}).map(([algo, n]) => `${n} ${algo}`);
  return parts.length ? `; all-reduces ${parts.join(', ')}` : '';
}

/** A file's text ('-': stdin), as UTF-8; a missing or unreadable file is a usage error. */
function readText(path: string, what: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new UsageError(`cannot read ${what} from ${path === '-' ? 'stdin' : path}: ${why}`);
  }
}

/**
 * --json-schema's argument: a JSON schema of the subset compileJsonSchema follows, given inline
 * (it begins with '{', as llama.cpp's --json-schema takes it) or as a file ('-': stdin).
 */
function readJsonSchema(arg: string): JsonShape {
  const inline = arg.trimStart().startsWith('{');
  const where = inline ? '(inline)' : arg;
  let schema: unknown;
  try {
    schema = JSON.parse(inline ? arg : readText(arg, 'the JSON schema'));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--json-schema ${where} is not JSON: ${(e as Error).message}`);
  }
  try {
    return compileJsonSchema(schema);
  } catch (e) {
    if (!(e instanceof JsonSchemaError)) throw e;
    throw new UsageError(`--json-schema ${where}: ${e.message}`);
  }
}

/** The flags of a generation (model, prompt, length, context, sampling), for `generate` and `launch generate`. */
export function addGenerateFlags(cmd: Command): Command {
  return addDraftFlags(
    cmd
      .requiredOption('-m, --model <file>', 'the GGUF model (llama, qwen2 or qwen3; F32 … Q6_K)')
      .option('-p, --prompt <text>', 'the prompt (with --chat: the user message)', '')
      .option('-f, --file <path>', "read the prompt from a file ('-': from stdin) instead of --prompt")
      .option(
        '--chat',
        "treat the prompt as a user's message: render it with the model's chat template (tokenizer.chat_template; ChatML when the file has none) and print only the answer",
      )
      .option('--system <text>', 'with --chat: a system message before the user message')
      .option('-n, --n-predict <N>', 'tokens to generate at most', whole('--n-predict'), 128)
      .option(
        '-c, --ctx <N>',
        'context size in tokens (KV cache per executor; default: the model’s, at most 4096)',
        (v) => parsePositiveInt(v, '--ctx'),
      )
      .option('--temp <T>', 'temperature; 0 = greedy', number('--temp', 0, 100), 0.8)
      .option('--top-k <K>', 'keep the K most likely tokens (0 = all)', whole('--top-k'), 40)
      .option(
        '--top-p <P>',
        'keep the smallest set of tokens whose probability reaches P',
        number('--top-p', 0, 1),
        0.95,
      )
      .option(
        '--min-p <P>',
        'drop tokens less likely than P × the most likely one',
        number('--min-p', 0, 1),
        0.05,
      )
      .option(
        '--repeat-penalty <R>',
        'penalise tokens seen in the last --repeat-last-n (1 = off)',
        number('--repeat-penalty', 0, 100),
        1,
      )
      .option(
        '--repeat-last-n <N>',
        'tokens the repeat, frequency and presence penalties look back over',
        whole('--repeat-last-n'),
        64,
      )
      .option(
        '--frequency-penalty <F>',
        'subtract F × (times a token was seen in the last --repeat-last-n) from its logit (0 = off)',
        number('--frequency-penalty', -2, 2),
        0,
      )
      .option(
        '--presence-penalty <P>',
        'subtract P from the logit of every token seen in the last --repeat-last-n (0 = off)',
        number('--presence-penalty', -2, 2),
        0,
      )
      .option(
        '-l, --logit-bias <ID±BIAS>',
        "add BIAS to token ID's logit before sampling, as llama.cpp's -l: 15043+1.5, 29871-2, 13-inf bans token 13 (repeatable)",
        (v: string, all: [number, number][]) => [...all, parseLogitBias(v)],
        [] as [number, number][],
      )
      .option(
        '--stop <text>',
        "end the answer where TEXT appears, printing what came before it (llama.cpp's -r, the API's stop; repeatable, the first to appear ends it; a newline: --stop $'\\n' in bash)",
        (v: string, all: string[]) => {
          if (v === '') throw new UsageError('--stop needs a text to stop at, got an empty one');
          return [...all, v];
        },
        [] as string[],
      )
      .option(
        '--json-object',
        "constrain the answer to one JSON object (serve's response_format json_object): only tokens that keep it one are drawn, and it ends when the object closes",
      )
      .option(
        '--json-schema <file|json>',
        `as --json-object, and the object keeps to the JSON schema in the file, or given inline when it begins with '{' (serve's response_format json_schema): ${SUPPORTED.join(', ')}`,
      )
      .option(
        '--lookup <N>',
        'prompt lookup decoding: after each token, draft up to N more by finding the last few tokens earlier in the prompt or the text, and check them in the same step (one read of the weights); the text is the one generated without it, faster where it repeats what came before (0 = off, at most 32)',
        lookupTokens,
        0,
      )
      .option(
        '-s, --seed <S>',
        'random seed: the same seed gives the same text (default: random)',
        whole('--seed'),
      )
      .option('--no-bos', 'do not add the BOS token even where the model asks for it')
      .option(
        '--ignore-eos',
        'go on past the end-of-generation token until -n tokens (as llama.cpp; for timing a fixed length)',
      )
      .addOption(
        new Option(
          '--embeddings <where>',
          "token_embd: shared (the file's pages, one copy per host), mirrored (a copy in each executor's node), or auto (the planner's choice: mirrored when executors sit on different memory nodes and have room)",
        )
          .choices(['auto', 'shared', 'mirrored'])
          .default('auto'),
      )
      .addOption(
        new Option(
          '--output <where>',
          'the output projection: sharded (vocabulary rows split, logits gathered), single (one executor reads it all), or auto (whichever the planner reckons faster per token)',
        )
          .choices(['auto', 'sharded', 'single'])
          .default('auto'),
      ),
  );
}
/** --draft and its flags (generate, launch generate, serve). */
export function addDraftFlags(cmd: Command): Command {
  return cmd
    .option(
      '--draft <file>',
      "speculative decoding (llama.cpp's -md): a small GGUF model of the same vocabulary guesses the next tokens, one cheap step each, on executors of its own (on the same nodes; with launch or serve --hostfile, on the coordinator's machine), and the model checks them all in one step; the text is the one generated without it, faster where the draft guesses well (serve: while one stream decodes alone)",
    )
    .option(
      '--draft-max <N>',
      `with --draft: tokens drafted at most after each chosen one (1-${MAX_DRAFT})`,
      draftTokens,
      8,
    )
    .option(
      '--draft-p-min <P>',
      'with --draft: a draft ends before a token the draft model gives less than this probability (0 = never)',
      number('--draft-p-min', 0, 1),
      0.75,
    );
}

/** --draft-max's value: 1 to MAX_DRAFT drafted tokens. */
function draftTokens(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || n < 1 || n > MAX_DRAFT)
    throw new UsageError(`--draft-max must be a whole number from 1 to ${MAX_DRAFT}, got '${v}'`);
  return n;
}

/** --lookup's value (generate, launch generate and serve): 0 to MAX_DRAFT drafted tokens. */
export function lookupTokens(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || n > MAX_DRAFT)
    throw new UsageError(`--lookup must be a whole number from 0 to ${MAX_DRAFT}, got '${v}'`);
  return n;
}

/** --draft against the flags it does not go with (generate and launch generate). */
export function checkDraftFlags(o: GenerateFlags, dryRun: boolean | undefined): void {
  if (o.draft === undefined) return;
  if (o.lookup) throw new UsageError('--draft and --lookup both draft tokens: choose one');
  if (dryRun)
    throw new UsageError(
      "--dry-run shows the model's split: leave out --draft (a draft model's own split: --dry-run -m DRAFT)",
    );
}

/** --draft and its flags as a generation or a conversation takes them. */
export function draftOf(o: Pick<GenerateFlags, 'draft' | 'draftMax' | 'draftPMin'>): {
  draft?: DraftOptions;
} {
  return o.draft ? { draft: { path: o.draft, max: o.draftMax ?? 8, pMin: o.draftPMin ?? 0.75 } } : {};
}

/** The sampling flags as a generation takes them. */
function samplingOf(o: GenerateFlags, seed: number): ModelRunOptions['sampling'] {
  return {
    temperature: o.temp,
    topK: o.topK,
    topP: o.topP,
    minP: o.minP,
    repeatPenalty: o.repeatPenalty,
    repeatLastN: o.repeatLastN,
    frequencyPenalty: o.frequencyPenalty,
    presencePenalty: o.presencePenalty,
    logitBias: o.logitBias,
    seed,
  };
}

/** llama.cpp's TOKEN_ID(+/-)BIAS, as -l takes it; `inf` as the bias bans (with -) the token. */
function parseLogitBias(v: string): [number, number] {
  const m = /^\s*(\d+)\s*([+-])\s*(inf|\d+(?:\.\d*)?|\.\d+)\s*$/i.exec(v);
  const bias = m ? (m[3]!.toLowerCase() === 'inf' ? Infinity : Number(m[3])) * (m[2] === '-' ? -1 : 1) : NaN;
  if (!m || !Number.isSafeInteger(Number(m[1])) || bias === Infinity)
    throw new UsageError(
      `--logit-bias takes TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 15043+1.5, 13-inf to ban token 13), got '${v}'`,
    );
  return [Number(m[1]), bias];
}

/** The placement flags as the planner takes them. */
export function placementOf(o: Pick<GenerateFlags, 'embeddings' | 'output'>): {
  embeddings: EmbeddingPlacement | 'auto';
  output: OutputPlacement | 'auto';
} {
  return { embeddings: o.embeddings, output: o.output };
}

/**
 * Runs a generation the way both commands show it: a progress bar while loading, the text
 * streamed to stdout and the timings to stderr, or one JSON object with --json.
 */
export async function generateWithFlags(
  o: GenerateFlags,
  run: (ro: ModelRunOptions) => Promise<GenerateRun>,
): Promise<void> {
  if (o.system !== undefined && !o.chat) throw new UsageError('--system goes with --chat');
  if (o.file !== undefined) {
    if (o.prompt) throw new UsageError('give the prompt with --prompt or with --file, not both');
    o = { ...o, prompt: readText(o.file, 'the prompt') };
  }
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  const bar = new Progress('loading weights');
  let template: string | undefined;
  const r = await run({
    model: o.model,
    ...(o.ctx ? { ctx: o.ctx } : {}),
    placement: placementOf(o),
    prompt: o.prompt,
    ...(o.chat ? { chat: o.system !== undefined ? { system: o.system } : {} } : {}),
    maxTokens: o.nPredict,
    addBos: o.bos ? undefined : false,
    ...(o.ignoreEos ? { stopAtEog: false } : {}),
    ...(o.stop.length ? { stop: o.stop } : {}),
    ...(o.jsonSchema !== undefined
      ? { json: readJsonSchema(o.jsonSchema) }
      : o.jsonObject
        ? { json: true }
        : {}),
    ...(o.lookup ? { lookup: o.lookup } : {}),
    ...draftOf(o),
    sampling: samplingOf(o, seed),
    onProgress: (done, total) => bar.update(done, total, 'layers'),
    onLoaded: (model) => {
      bar.done();
      if (o.chat) {
        template = model.chat.description;
        if (model.chat.source.kind !== 'file' && !o.json)
          process.stderr.write(`chat template: ${template}\n`);
      } else if (!o.json) process.stdout.write(o.prompt);
    },
    ...(o.json ? {} : { onText: (s: string) => process.stdout.write(s) }),
  }).finally(() => bar.done());
  if (o.json) {
    process.stdout.write(
      JSON.stringify(
        {
          model: o.model,
          executors: r.model.perRank.length,
          split: r.model.split,
          seed,
          ...(template ? { chatTemplate: template } : {}),
          promptTokens: r.result.promptTokens,
          generatedTokens: r.result.generatedTokens,
          text: r.result.text,
          stoppedBy: r.result.stoppedBy,
          ...(r.recoveries ? { recoveries: r.recoveries } : {}),
          timings: { load: r.model.perRank, loadSeconds: r.model.seconds, ...r.result.timings },
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    process.stdout.write('\n');
    process.stderr.write('\n' + timingsText(r));
  }
}

/**
 * `--chat --interactive` (generate and launch generate): messages from stdin, answers streamed, a
 * line of timings each. `run` answers the conversation on its executors.
 */
export async function chatWithFlags(
  o: GenerateFlags,
  run: (co: ConversationOptions) => Promise<unknown>,
): Promise<void> {
  if (!o.chat) throw new UsageError('--interactive goes with --chat');
  if (o.jsonObject || o.jsonSchema !== undefined)
    throw new UsageError('--json-object and --json-schema constrain one answer: leave out --interactive');
  if (o.json) throw new UsageError('--interactive prints the conversation as it goes: leave out --json');
  if (o.ignoreEos)
    throw new UsageError(
      '--interactive ends each answer at the end-of-generation token: leave out --ignore-eos',
    );
  if (o.file === '-')
    throw new UsageError('--interactive reads the messages from stdin: -f - cannot be the first');
  const first = o.file !== undefined ? readText(o.file, 'the prompt') : o.prompt;
  const lines = createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
  const tty = process.stdin.isTTY === true;
  let opening: string | undefined = first || undefined;
  const bar = new Progress('loading weights');
  await run({
    model: o.model,
    ...(o.ctx ? { ctx: o.ctx } : {}),
    placement: placementOf(o),
    ...(o.system !== undefined ? { system: o.system } : {}),
    maxTokens: o.nPredict,
    ...(o.stop.length ? { stop: o.stop } : {}),
    ...(o.lookup ? { lookup: o.lookup } : {}),
    ...draftOf(o),
    sampling: samplingOf(o, o.seed ?? Math.floor(Math.random() * 2 ** 32)),
    nextMessage: async () => {
      if (opening !== undefined) {
        const m = opening;
        opening = undefined;
        return m;
      }
      for (;;) {
        if (tty) process.stderr.write('> ');
        const r = await lines.next();
        if (r.done) return undefined;
        if (r.value.trim()) return r.value;
      }
    },
    onText: (s) => process.stdout.write(s),
    onTurn: (t) => {
      process.stdout.write('\n');
      const dropped = t.dropped ? `; dropped the ${t.dropped} oldest exchange(s) to fit the context` : '';
      const drafts = t.drafted !== undefined ? `; ${t.accepted} of ${t.drafted} drafted tokens taken` : '';
      process.stderr.write(
        `[prompt ${t.promptTokens} new tokens (${t.reusedTokens} from the cache), ${(t.promptTokens / t.promptSeconds).toFixed(1)} tokens/s; answer ${t.generatedTokens} tokens, ${(t.generatedTokens / t.generateSeconds).toFixed(1)} tokens/s, stopped by ${t.stoppedBy}${drafts}${dropped}]\n`,
      );
    },
    onProgress: (done, total) => bar.update(done, total, 'layers'),
    onLoaded: (model) => {
      bar.done();
      if (model.chat.source.kind !== 'file')
        process.stderr.write(`chat template: ${model.chat.description}\n`);
    },
  }).finally(() => bar.done());
}

export function registerGenerate(program: Command): void {
  addGenerateFlags(
    program
      .command('generate')
      .description('generate text from a GGUF model, each layer split across the NUMA nodes'),
  )
    .option('--virtual-nodes <N>', 'split the cpus into N pretend NUMA nodes', (v) =>
      parsePositiveInt(v, '--virtual-nodes'),
    )
    .option('--dry-run', 'print how the model would be split across the executors, and stop')
    .option('--html <file>', 'with --dry-run: also write the split as an HTML page')
    .addOption(
      new Option(
        '--on-failure <what>',
        'an executor that dies: continue on the others (re-plan, reload, rebuild the KV cache) or abort',
      )
        .choices(['continue', 'abort'])
        .default('continue'),
    )
    .option('--json', 'print one JSON object (token ids, text, timings) instead of streaming text')
    .option(
      '-i, --interactive',
      'with --chat: a conversation; each line on stdin is a message (-p, when given, the first), each answer printed as it comes; the earlier turns stay in the KV cache',
    )
    .addHelpText(
      'after',
      `
The text streams to stdout as it is generated; timings follow on stderr (prompt tokens/s,
generation tokens/s, and per executor the time in kernels and in exchanges).

An executor that dies (or its node taken away) does not end the run: the split is planned again
on the nodes left, they load it from the file, the prompt and the tokens so far are processed
again, and generation goes on (greedy: the same text); the timings say what was lost and how long
recovery took. --on-failure abort fails the run instead.

--chat --interactive holds a conversation: type a message and Enter, an empty line is skipped,
Ctrl-D ends it. Each turn processes only what is new since the last one.

Examples:
  redblue generate -m model.gguf -p "The capital of France is" -n 32 --temp 0
  redblue generate -m model.gguf -p "Once upon a time" --virtual-nodes 2 --seed 7
  redblue generate -m instruct.gguf --chat -f report.txt --lookup 7   # quotes its input: fewer steps
  redblue generate -m qwen2.5-32b.gguf --draft qwen2.5-0.5b.gguf -p "def fib(n):" --temp 0
  redblue generate -m instruct.gguf --chat --system "Answer briefly." -p "Why is the sky blue?"
  git diff | redblue generate -m instruct.gguf --chat -f - -n 256
  redblue generate -m instruct.gguf --chat -i --system "You are terse." --virtual-nodes 2
  redblue generate -m model.gguf --dry-run --virtual-nodes 2 --json`,
    )
    .action(
      async (
        o: GenerateFlags & {
          virtualNodes?: number;
          dryRun?: boolean;
          html?: string;
          interactive?: boolean;
          onFailure: 'continue' | 'abort';
        },
      ) => {
        const topology = readTopology({ virtualNodes: o.virtualNodes });
        if (o.html && !o.dryRun) throw new UsageError('--html goes with --dry-run');
        checkDraftFlags(o, o.dryRun);
        if (o.dryRun) {
          const plan = planGenerate({
            model: o.model,
            topology,
            placement: placementOf(o),
            ...(o.ctx ? { ctx: o.ctx } : {}),
          });
          if (o.html) {
            const i = plan.info;
            writeModelSplitHtml(plan.split, o.html, {
              model: basename(o.model),
              description: `${i.arch}, ${i.nLayer} layers, ${i.nEmbd} wide, ${i.nHead} heads (${i.nHeadKv} KV), n_ff ${i.nFf}, vocabulary ${i.nVocab}`,
            });
          }
          process.stdout.write(
            o.json
              ? JSON.stringify(plan, null, 2) + '\n'
              : [renderModelSplit(plan.split), ...renderMemoryNeeds(plan.memory, plan.memoryShortfall)].join(
                  '\n',
                ) + '\n',
          );
          return;
        }
        // What a lost executor and Ctrl-C print, with what the run does next.
        const onThisBox = (next: string) => ({
          topology,
          onFailure: o.onFailure,
          onRecovery: (x: { lost: string; reason: string; executors: number }) =>
            process.stderr.write(
              `\nredblue: lost ${x.lost} (${x.reason}); ${next} ${x.executors} executor(s)\n`,
            ),
          hooks: {
            onInterrupt: () => process.stderr.write('\nredblue: interrupted, stopping the executors\n'),
          },
        });
        if (o.interactive) {
          await chatWithFlags(o, (co) => runChat({ ...co, ...onThisBox('answering again on') }));
          return;
        }
        await generateWithFlags(o, (ro) => runGenerate({ ...ro, ...onThisBox('going on with') }));
      },
    );
}
