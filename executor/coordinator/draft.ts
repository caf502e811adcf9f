// Speculative decoding with a draft model (`generate --draft`): a small model that shares the
// target's vocabulary guesses the next tokens one cheap step at a time; the target checks them all
// in one step (one read of its weights, as prompt lookup's drafts are checked) and keeps those it
// would have chosen itself. Every token is still sampled from the target's own row of logits, so
// the text is the one generated without a draft; only the number of target steps changes.
import { basename } from 'node:path';
import { UsageError } from '../../common/errors.js';
import type { Tokenizer } from '../../model/tokenizer/index.js';
import type { MachineTopology } from '../../native/topology.js';
import { LocalCluster } from '../host/local-cluster.js';
import {
  PROMPT_BATCH,
  loadModel,
  readModelFile,
  runnerOf,
  type DraftModelTimings,
  type GenerateOptions,
  type LoadedModel,
  type ModelFile,
  type ModelRunner,
  type TokenDrafter,
} from './generate.js';

/** Vocabulary sizes a draft may differ from its target by (llama.cpp allows 128 as well). */
export const DRAFT_VOCAB_SLACK = 128;

/**
 * Refuses a draft whose tokens are not the target's: the ids they share must name the same text
 * (llama.cpp's rule: Qwen2.5-0.5B's 151 936 tokens draft for Qwen2.5-32B's 152 064).
 */
export function checkDraftVocab(t: Tokenizer, d: Tokenizer, targetPath: string, draftPath: string): void {
  const names = `${basename(draftPath)} cannot draft for ${basename(targetPath)}`;
  if (Math.abs(t.vocabSize - d.vocabSize) > DRAFT_VOCAB_SLACK)
    throw new UsageError(
      `${names}: their vocabularies have ${d.vocabSize} and ${t.vocabSize} tokens (at most ${DRAFT_VOCAB_SLACK} apart); use a draft model of the same family`,
    );
  if (t.kind !== d.kind)
    throw new UsageError(
      `${names}: one tokenizes with ${d.kind}, the other with ${t.kind}; use a draft model of the same family`,
    );
  const shared = Math.min(t.vocabSize, d.vocabSize);
  for (let id = 0; id < shared; id++)
    if (t.tokenText(id) !== d.tokenText(id))
      throw new UsageError(
        `${names}: token ${id} is ${JSON.stringify(d.tokenText(id))} in the draft and ${JSON.stringify(t.tokenText(id))} in the target; use a draft model of the same family`,
      );
}

/**
 * A draft model's file, read once: checkDraftFile reads it before any executor starts and
 * loadDrafter loads from it (its header and tokenizer took a Qwen-vocabulary file ~0.5 s).
 */
const draftFiles = new Map<string, ModelFile>();
function draftFile(path: string): ModelFile {
  let f = draftFiles.get(path);
  if (!f) draftFiles.set(path, (f = readModelFile(path)));
  return f;
}

/** checkDraftVocab against the draft's file before any executor starts; nothing without a draft. */
export function checkDraftFile(target: ModelFile, targetPath: string, draftPath: string | undefined): void {
  if (draftPath !== undefined)
    checkDraftVocab(target.tokenizer, draftFile(draftPath).tokenizer, targetPath, draftPath);
}

/** Tokens a step of the model checks after its own: prompt lookup's drafts or the draft model's. */
export function draftTokensOf(o: { lookup?: number; draft?: { max: number } }): number {
  return Math.max(o.lookup ?? 0, o.draft?.max ?? 0);
}

/**
 * The most likely of the first `limit` tokens of a row of logits, when its probability (softmax
 * over the whole row) is at least `pMin`; undefined when it is less. The sum stops once it shows
 * the probability below pMin, and skips terms below e⁻²⁰ of the top (a Qwen-sized row of 152k
 * logits took 1.5 ms with every term, as long as a small draft's step).
 */
export function confidentToken(logits: Float32Array, limit: number, pMin: number): number | undefined {
  let id = 0;
  let max = -Infinity;
  const n = Math.min(limit, logits.length);
  for (let i = 0; i < n; i++)
    if (logits[i]! > max) {
      max = logits[i]!;
      id = i;
    }
  if (max === -Infinity) return undefined;
  if (pMin <= 0) return id;
  const most = 1 / pMin; // p = 1 / Σ exp(l − max) ≥ pMin ⇔ Σ ≤ 1 / pMin
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const d = logits[i]! - max;
    if (d > -20) {
      sum += Math.exp(d);
      if (sum > most) return undefined;
    }
  }
  return id;
}

export interface ModelDrafterOptions {
  /** The draft model's file (said in the timings). */
  path: string;
  /** Tokens drafted at most after each chosen one. */
  max: number;
  /** A draft ends before a token the draft model gives less than this probability (0: never). */
  pMin: number;
  /** The target's vocabulary size: a draft token past it ends the draft. */
  targetVocab: number;
  /**
   * The generation's logit biases (generate -l, serve's logit_bias), added to the draft's logits
   * too: a token the model is pushed to (or banned from) is guessed (or not) as it is chosen.
   */
  logitBias?: readonly (readonly [number, number])[];
}

/**
 * Drafts with a model loaded on its own executors. It keeps the tokens whose KV it holds (the
 * context it last saw, and its own guesses after it); each draft feeds only what is new since the
 * part of them the context still agrees with, then one token a step, greedily; after drafts of
 * which none was taken it rests a while (see taken()). A draft model whose
 * executors fail is dropped (`lost` says why) and generation goes on without drafts.
 */
export class ModelDrafter implements TokenDrafter {
  drafted = 0;
  accepted = 0;
  /** Time in the draft model's steps. */
  seconds = 0;
  /** Draft-model steps run (prompt batches included). */
  steps = 0;
  lost: string | undefined;
  private fed: number[] = [];
  private readonly row: Float32Array;
  /** Tokens to go without drafting (after drafts of which none was taken), and such drafts in a row. */
  private pause = 0;
  private misses = 0;

  constructor(
    private readonly runner: ModelRunner,
    private readonly model: LoadedModel,
    private readonly o: ModelDrafterOptions,
  ) {
    this.row = new Float32Array(model.info.nVocab);
  }

  async draft(context: readonly number[], room: number): Promise<number[]> {
    const n = Math.min(this.o.max, room, this.model.ctx - context.length);
    if (this.lost || n <= 0 || context.length === 0) return [];
    if (this.pause > 0) {
      this.pause--;
      return [];
    }
    const t0 = performance.now();
    try {
      return await this.guess(context, n);
    } catch (e) {
      this.lost = (e as Error).message;
      return [];
    } finally {
      this.seconds += (performance.now() - t0) / 1e3;
    }
  }

  private async guess(context: readonly number[], n: number): Promise<number[]> {
    // What the draft's cache still holds of this context (at least the last token goes in again:
    // its logits give the first guess).
    let keep = 0;
    while (keep < this.fed.length && keep < context.length - 1 && this.fed[keep] === context[keep]) keep++;
    this.fed.length = keep;
    let logits = this.row;
    for (let i = keep; i < context.length; i += PROMPT_BATCH) {
      const batch = context.slice(i, i + PROMPT_BATCH);
      const last = i + PROMPT_BATCH >= context.length;
      const r = await this.runner.forward(batch, i, last ? 'last' : 'none', true, this.row);
      this.steps++;
      this.fed.push(...batch);
      if (last) logits = r.logits;
    }
    const out: number[] = [];
    for (;;) {
      for (const [t, b] of this.o.logitBias ?? []) if (t < logits.length) logits[t] = logits[t]! + b;
      const id = confidentToken(logits, this.model.info.nVocab, this.o.pMin);
      if (id === undefined || id >= this.o.targetVocab) break;
      out.push(id);
      if (out.length >= n) break;
      const r = await this.runner.forward([id], this.fed.length, 'last', true, this.row);
      this.steps++;
      this.fed.push(id);
      logits = r.logits;
    }
    return out;
  }

  taken(drafted: number, accepted: number): void {
    this.drafted += drafted;
    this.accepted += accepted;
    // A draft model that keeps guessing wrong costs a step of its own and a longer check for
    // every token: it rests for 1, 2, 4 … 32 tokens after each draft of which none was taken
    // (and catches up on them in one batch), as prompt lookup's drafts pause.
    if (drafted > 0 && accepted === 0) this.pause = Math.min(32, 2 ** this.misses++);
    else if (accepted > 0) this.misses = 0;
  }

  modelTimings(): DraftModelTimings {
    return {
      path: this.o.path,
      loadSeconds: this.model.seconds,
      executors: this.model.perRank.length,
      steps: this.steps,
      seconds: this.seconds,
      ...(this.lost ? { lost: this.lost } : {}),
    };
  }
}

/** A draft model for a generation: its file, its most tokens a draft, its p-min. */
export interface DraftOptions {
  path: string;
  max: number;
  pMin: number;
  /** ModelDrafterOptions.logitBias (the generation's). */
  logitBias?: readonly (readonly [number, number])[];
}

/**
 * withSurvivors' work with a draft model's executors beside the model's, on the same nodes:
 * started with each cluster (again after a loss) and stopped with it; `alsoStop` stops them on
 * Ctrl-C (LocalRunHooks.alsoStop). Without a draft, `work` gets no second cluster.
 */
export function draftExecutors<T>(
  draft: boolean,
  run: (cluster: LocalCluster, side?: LocalCluster) => Promise<T>,
): { work: (cluster: LocalCluster) => Promise<T>; alsoStop: () => Promise<void> } {
  let side: LocalCluster | undefined;
  return {
    work: async (cluster) => {
      if (!draft) return run(cluster);
      side = await startDraftCluster(cluster.topology);
      try {
        return await run(cluster, side);
      } finally {
        const s = side;
        side = undefined;
        await s.stop();
      }
    },
    alsoStop: async () => {
      await side?.stop();
    },
  };
}

/** Executors for a draft model on `topology`'s nodes; their failure to start is not the target's loss. */
export async function startDraftCluster(topology: MachineTopology): Promise<LocalCluster> {
  try {
    return await LocalCluster.start({ topology });
  } catch (e) {
    throw new Error(`the draft model's executors did not start: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * A generation's or a conversation's drafter on its draft executors (loadDrafter, the run's logit
 * biases added to the draft's logits); undefined without a draft model.
 */
export async function drafterFor(
  on: LocalCluster | undefined,
  o: { model: string; draft?: DraftOptions; sampling: GenerateOptions['sampling'] },
  target: LoadedModel,
): Promise<ModelDrafter | undefined> {
  if (!o.draft || !on) return undefined;
  return loadDrafter(on, { ...o.draft, logitBias: o.sampling.logitBias ?? [] }, target, o.model);
}

/** The drafter each draft cluster holds: a run taken up again on it (hosts lost) keeps it. */
const drafters = new WeakMap<LocalCluster, Promise<ModelDrafter>>();

/**
 * Loads the draft model on its executors (the target's context, or the draft's own where that is
 * shorter), after checking its vocabulary against the target's, and drafts with it; once per
 * cluster (a generation taken up again on other hosts keeps the draft and what it holds). A
 * failure here is the draft's, said so, never a lost target executor.
 */
export function loadDrafter(
  on: LocalCluster,
  d: DraftOptions,
  target: LoadedModel,
  targetPath: string,
): Promise<ModelDrafter> {
  let made = drafters.get(on);
  if (!made) {
    made = (async () => {
      const file = draftFile(d.path);
      checkDraftVocab(target.tokenizer, file.tokenizer, targetPath, d.path);
      try {
        const model = await loadModel(on, {
          path: d.path,
          file,
          ctx: Math.min(target.ctx, file.info.nCtxTrain),
        });
        return new ModelDrafter(runnerOf(on), model, {
          path: d.path,
          max: d.max,
          pMin: d.pMin,
          targetVocab: target.info.nVocab,
          ...(d.logitBias ? { logitBias: d.logitBias } : {}),
        });
      } catch (e) {
        if (e instanceof UsageError)
          throw new UsageError(`the draft model ${basename(d.path)}: ${e.message}`);
        throw new Error(`the draft model ${basename(d.path)} did not load: ${(e as Error).message}`, {
          cause: e,
        });
      }
    })();
    drafters.set(on, made);
  }
  return made;
}
