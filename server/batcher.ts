// Continuous batching: every step serves all active sequences at once, each in its own KV slot
// on every executor (one decode token each, m = their number); a new request takes a free slot
// at the next step and its prompt goes in in chunks beside the others' decode tokens, so running
// streams are not stalled behind it; a sequence that ends, or whose client leaves, frees its
// slot at once. With batch-invariant kernels (serve loads them when --parallel > 1) a sequence's
// tokens are the ones it would get alone. With prompt lookup a decoding sequence also feeds
// tokens drafted from its context (model/lookup.ts) while the step stays small, and takes as
// many of its rows as were the tokens chosen: the same tokens in fewer steps.
import {
  Sequence,
  type ForwardResult,
  type GenerateOptions,
  type GenerateResult,
  type LoadedModel,
  type ModelRunner,
  type TokenDrafter,
} from '../executor/coordinator/generate.js';
import { DOORBELL_MAX_TOKENS, type SeqRun } from '../native/model.js';
import { Drafter, NgramCache } from '../model/lookup.js';

export interface BatcherOptions {
  runner: ModelRunner;
  model: LoadedModel;
  /** Prompt tokens per step while other sequences are decoding (default 64). */
  prefillChunk?: number;
  /** Called after every step with the executors' replies (the metrics' compute and exchange). */
  onStep?: (replies: ForwardResult['replies'], tokens: number, sequences: number) => void;
  /**
   * Prompt lookup: tokens a decoding sequence may draft a step (at most the model's draftTokens);
   * 0 or absent: off.
   */
  lookup?: number;
  /**
   * With lookup: draft also from the texts of requests served before (an NgramCache shared by
   * every request; serve --lookup-shared): faster where requests repeat each other, but a
   * request's speed then says something of what others were sent and answered.
   */
  lookupShared?: boolean;
  /** Called after a step's drafts are checked: tokens drafted, and of those the ones chosen. */
  onDrafts?: (drafted: number, accepted: number) => void;
  /**
   * A draft model's drafter (serve --draft): while one sequence alone decodes (nothing else
   * active or waiting), its next tokens are guessed by the draft model before each step and
   * checked in it; with more, the steps are as without it (a batch already reads the weights once
   * for several tokens).
   */
  modelDrafter?: TokenDrafter;
}

/**
 * Decode tokens and drafts of a step with drafts at most: 8 rows of X fill the kernels' widest
 * tile, and past it a step costs about a token's worth more per row (scripts/draft-step.mjs).
 */
const DRAFT_STEP_TOKENS = 8;

interface Entry {
  seq: Sequence;
  signal: AbortSignal | undefined;
  slot: number;
  /** Prompt tokens in the slot's cache. */
  fed: number;
  /** Positions of the slot's cache this sequence has written (or a posted step will have). */
  kv: number;
  /** Prompt tokens found in the slot's cache, or in another slot's, when it was admitted. */
  cached: number;
  /** The slot whose first `fed` positions this one takes in its first step (see admit). */
  from: number | undefined;
  /** Called once its whole prompt is posted (the step after it may copy from its slot). */
  onPromptIn: (() => void) | undefined;
  /** The token to feed next step (decoding). */
  pending: number | undefined;
  /** Prompt lookup's drafts for this sequence (when on). */
  drafter: Drafter | undefined;
  /** The draft model's guesses for the next step (BatcherOptions.modelDrafter), made before it. */
  guessed: number[] | undefined;
  queuedAt: number;
  admittedAt: number;
  firstAt: number;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
}

export class Batcher {
  private readonly waiting: Entry[] = [];
  private readonly active: Entry[] = [];
  private readonly free: number[];
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private readonly chunk: number;
  /**
   * Every step's rows of logits, as many as the model allows: a sequence's row (and its drafts'), or a scored
   * prompt's several (each used before the next step).
   */
  private readonly rows: Float32Array;
  /**
   * The tokens at positions 0… of each slot's KV cache, as its last sequence left them: a new
   * prompt that begins with some of them starts after those (a chat resending its history).
   */
  private readonly cached: number[][];
  /** Drafted tokens a sequence may feed a step (0: prompt lookup off). */
  private readonly lookup: number;
  /** The texts served (BatcherOptions.lookupShared). */
  private readonly served: NgramCache | undefined;

  constructor(private readonly o: BatcherOptions) {
    if (!o.runner.step && o.model.slots > 1)
      throw new Error(
        'these executors cannot run several sequences in one step (across hosts): use one slot',
      );
    this.free = Array.from({ length: o.model.slots }, (_, i) => o.model.slots - 1 - i);
    this.chunk = Math.max(1, Math.min(o.prefillChunk ?? 64, DOORBELL_MAX_TOKENS));
    this.cached = Array.from({ length: o.model.slots }, () => []);
    this.lookup = Math.max(0, Math.min(o.lookup ?? 0, o.model.draftTokens));
    this.served = this.lookup && o.lookupShared ? new NgramCache() : undefined;
    this.rows = new Float32Array(o.model.logitRows * o.model.info.nVocab);
  }

  get slots(): number {
    return this.o.model.slots;
  }
  get queued(): number {
    return this.waiting.length;
  }
  get activeCount(): number {
    return this.active.length;
  }

  /**
   * Queues a generation; it starts when a slot is free. Throws at once for a bad prompt (the
   * Sequence checks it); the promise rejects when a step fails. `onPromptIn`: called once its
   * whole prompt is posted, so that requests sharing it can follow and copy it (n choices).
   */
  submit(g: GenerateOptions, onPromptIn?: () => void): Promise<GenerateResult> {
    const seq = new Sequence(this.o.model, g);
    return new Promise<GenerateResult>((resolve, reject) => {
      this.waiting.push({
        seq,
        signal: g.signal,
        slot: -1,
        fed: 0,
        kv: 0,
        cached: 0,
        from: undefined,
        onPromptIn,
        pending: undefined,
        drafter: this.lookup ? new Drafter(this.lookup, this.served) : undefined,
        guessed: undefined,
        queuedAt: performance.now(),
        admittedAt: 0,
        firstAt: 0,
        resolve,
        reject,
      });
      if (!this.running) {
        this.running = true;
        void this.loop();
      }
    });
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private finish(e: Entry, why?: GenerateResult['stoppedBy']): void {
    if (why) e.seq.end(why);
    this.served?.add([...e.seq.prompt, ...e.seq.generated]);
    const now = performance.now();
    const first = e.firstAt || now;
    const i = this.active.indexOf(e);
    if (i >= 0) this.active.splice(i, 1);
    if (e.slot >= 0) {
      this.cached[e.slot] = [...e.seq.prompt, ...e.seq.generated].slice(0, e.kv);
      this.free.push(e.slot);
    }
    e.slot = -1;
    e.resolve({
      ...e.seq.result((first - (e.admittedAt || now)) / 1e3, (now - first) / 1e3, []),
      cachedPromptTokens: e.cached,
    });
  }

  /**
   * With a draft model, while one sequence alone decodes: its picked token delivered (its text
   * streams now, not after the draft), then the draft model's guesses of the tokens after it,
   * for the next step to check. Returns whether it delivered `picked`.
   */
  private async guess(picked: [Entry, number][]): Promise<boolean> {
    const d = this.o.modelDrafter;
    const e = picked[0]?.[0];
    if (!d || picked.length !== 1 || this.active.length !== 1 || this.waiting.length || !e) return false;
    if (e.pending === undefined || e.slot < 0) return false;
    if (e.seq.deliver(picked[0]![1]) === undefined) {
      this.finish(e);
      return true;
    }
    const room = Math.min(e.seq.draftRoom, this.o.model.logitRows - 1, this.o.model.draftTokens);
    const guessed = room > 0 ? await d.draft([...e.seq.prompt, ...e.seq.generated], room) : [];
    e.guessed = guessed.length && e.slot >= 0 ? guessed : undefined;
    return true;
  }

  /**
   * The next step: aborted entries end, waiting ones take free slots, then the decoders' tokens
   * and what is left of the step for prompts (a chunk while others decode; prompts that are
   * scored token by token after the others, within the rows of logits left). `asks`: the runs
   * whose rows of logits come back, in the order they come.
   */
  private plan(): StepPlan | undefined {
    for (const e of [...this.active]) if (e.signal?.aborted) this.finish(e, 'aborted');
    while (this.free.length && this.waiting.length) {
      const e = this.waiting.shift()!;
      if (e.signal?.aborted) {
        this.finish(e, 'aborted');
        continue;
      }
      if (!this.admit(e)) break;
    }
    const tokens: number[] = [];
    const runs: SeqRun[] = [];
    const asks: RowsOf[] = [];
    let rowCount = 0;
    const decoding = new Set<Entry>();
    const decoders = this.active.filter((e) => e.pending !== undefined).length;
    // Drafts while the step stays small, leaving a row for each sequence that may finish its
    // prompt in this step.
    let draftRows = Math.min(this.o.model.logitRows - this.active.length, DRAFT_STEP_TOKENS - decoders);
    for (const e of this.active)
      if (e.pending !== undefined) {
        const draft = e.guessed
          ? e.guessed.slice(0, Math.max(0, draftRows))
          : e.drafter && draftRows > 0
            ? e.drafter.draft([...e.seq.prompt, ...e.seq.generated], Math.min(e.seq.draftRoom, draftRows))
            : [];
        if (e.guessed) e.guessed = draft.length ? draft : undefined; // what the step checks
        draftRows -= draft.length;
        const count = 1 + draft.length;
        tokens.push(e.pending, ...draft);
        runs.push({ slot: e.slot, pos: e.seq.position, count, logits: count });
        asks.push({ e, n: count, from: e.seq.position, pick: true, ...(draft.length ? { draft } : {}) });
        e.kv = e.seq.position + count;
        rowCount += count;
        decoding.add(e);
        e.pending = undefined;
      }
    let budget = decoding.size ? this.chunk : DOORBELL_MAX_TOKENS;
    budget = Math.min(budget, DOORBELL_MAX_TOKENS - tokens.length);
    // Prompts scored token by token take a row of logits a token: they come after the others
    // (at most one row each), in the rows the slots leave.
    for (const scored of [false, true])
      for (const e of this.active) {
        // A sequence whose last token is out (its text still to be passed on) has nothing to feed.
        if (budget <= 0 || e.fed === e.seq.prompt.length || decoding.has(e)) continue;
        if (e.seq.scoresPrompt !== scored) continue;
        let n = Math.min(e.seq.prompt.length - e.fed, budget);
        if (scored) n = Math.min(n, this.o.model.logitRows - rowCount);
        if (n <= 0) continue;
        const last = e.fed + n === e.seq.prompt.length;
        const k = scored ? n : last ? 1 : 0;
        tokens.push(...e.seq.prompt.slice(e.fed, e.fed + n));
        runs.push({
          slot: e.slot,
          pos: e.fed,
          count: n,
          logits: k,
          ...(e.from !== undefined ? { from: e.from } : {}),
          ...(e.seq.embeds ? { hidden: true } : {}),
        });
        e.from = undefined;
        if (last) e.onPromptIn?.();
        if (k) asks.push({ e, n: k, from: e.fed + n - k, pick: last });
        rowCount += k;
        e.fed += n;
        e.kv = e.fed;
        budget -= n;
      }
    return runs.length ? { tokens, runs, asks } : undefined;
  }

  /**
   * Gives `e` the free slot whose cache begins with the most of its prompt, and starts it after
   * those tokens; or, where a running sequence's slot holds more of the prompt, any free slot
   * that takes those positions from it in its first step (SeqRun.from: a copy of the cache, not
   * the prompt computed again). At least its last token is fed again, for the logits after it. A
   * prompt scored token by token starts at 0 (every position's logits are wanted).
   */
  private admit(e: Entry): boolean {
    const prompt = e.seq.prompt;
    const prefix = (c: readonly number[], upTo: number) => {
      const limit = Math.min(upTo, prompt.length - 1);
      let n = 0;
      while (n < limit && c[n] === prompt[n]) n++;
      return n;
    };
    // A slot still to be copied from keeps its positions until the copy is done.
    const sources = new Set(this.active.flatMap((a) => (a.from !== undefined ? [a.from] : [])));
    let best = -1;
    let common = 0;
    for (let k = this.free.length - 1; k >= 0; k--) {
      if (sources.has(this.free[k]!)) continue;
      if (best < 0) best = k;
      const n = e.seq.scoresPrompt ? 0 : prefix(this.cached[this.free[k]!]!, Infinity);
      if (n > common) [best, common] = [k, n];
    }
    if (best < 0) {
      this.waiting.unshift(e); // every free slot is a copy's source: next step
      return false;
    }
    let from: number | undefined;
    if (!e.seq.scoresPrompt)
      for (const a of this.active) {
        // Positions 0…fed-1 of a's slot hold its prompt's (every step before this one has run);
        // one whose own copy is pending holds nothing yet.
        const n = a.from === undefined ? prefix(a.seq.prompt, a.fed) : 0;
        if (n > common) [from, common] = [a.slot, n];
      }
    e.slot = this.free.splice(best, 1)[0]!;
    e.from = from;
    e.fed = e.kv = e.cached = common;
    e.admittedAt = performance.now();
    this.active.push(e);
    return true;
  }

  private async run(p: StepPlan): Promise<Float32Array[]> {
    const r = this.o.runner.step
      ? await this.o.runner.step(p.tokens, p.runs, this.rows)
      : await this.o.runner
          .forward(p.tokens, p.runs[0]!.pos, p.asks.length ? 'last' : 'none', true, this.rows)
          .then((f) => ({ replies: f.replies, logits: p.asks.length ? [f.logits] : [] }));
    this.o.onStep?.(r.replies, p.tokens.length, p.runs.length);
    return r.logits;
  }

  /**
   * A decoding step with drafts (Sequence.pickDrafted): the last token picked, undefined when the
   * sequence ended. `pos`: the fed token's position.
   */
  private takeDrafts(e: Entry, rows: Float32Array[], pos: number, draft: number[]): number | undefined {
    const { token, taken } = e.seq.pickDrafted(rows, draft);
    e.kv = pos + 1 + taken; // the fed token, and each draft that was the token chosen
    if (e.guessed) this.o.modelDrafter!.taken(draft.length, taken);
    else e.drafter!.taken(draft.length, taken);
    e.guessed = undefined;
    this.o.onDrafts?.(draft.length, taken);
    return token;
  }

  // One step in flight at a time, and the next posted as soon as its tokens are sampled: the
  // sampled tokens' text, the stop strings and the writes to the clients run while it computes
  // (a stop string found then costs that sequence one token of the step already posted).
  private async loop(): Promise<void> {
    try {
      let plan = this.plan();
      let inflight = plan && this.run(plan);
      while (plan && inflight) {
        let logits: Float32Array[];
        try {
          logits = await inflight;
        } catch (err) {
          // Every sequence in the slots fails with the step, and no slot's cache is known now (a
          // sequence that ended meanwhile counted on this step).
          this.cached.fill([]);
          for (const e of this.active.splice(0)) {
            this.free.push(e.slot);
            e.slot = -1;
            e.reject(err);
          }
          plan = this.plan();
          inflight = plan && this.run(plan);
          continue;
        }
        const picked: [Entry, number][] = [];
        let at = 0;
        for (const { e, n, from, pick, draft } of plan.asks) {
          const mine = logits.slice(at, (at += n));
          if (e.slot < 0) continue; // ended while the step ran (a stop string): its rows are not needed
          e.seq.scorePrompt(mine, from);
          if (!pick) continue;
          if (!e.firstAt) e.firstAt = performance.now();
          const next = draft ? this.takeDrafts(e, mine, from, draft) : e.seq.pick(mine[n - 1]!);
          if (next === undefined) {
            this.finish(e);
            continue;
          }
          picked.push([e, next]);
          if (!e.seq.pickedLast) e.pending = next;
        }
        if (await this.guess(picked)) picked.length = 0; // delivered there, before the draft
        plan = this.plan();
        inflight = plan && this.run(plan);
        for (const [e, token] of picked)
          if (e.slot >= 0 && e.seq.deliver(token) === undefined) this.finish(e);
        if (!plan) {
          // Everything in flight ended, or the slots just freed have requests waiting.
          plan = this.plan();
          inflight = plan && this.run(plan);
        }
      }
    } finally {
      this.running = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}

interface StepPlan {
  tokens: number[];
  runs: SeqRun[];
  asks: RowsOf[];
}

/**
 * A run's rows of logits: `n` rows after positions from…; `pick`: the last one samples a token,
 * or with `draft` (the tokens fed after the decode token) they are checked in turn.
 */
interface RowsOf {
  e: Entry;
  n: number;
  from: number;
  pick: boolean;
  draft?: number[];
}
