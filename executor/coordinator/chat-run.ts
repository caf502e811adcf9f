// A conversation with an instruct model (`redblue generate --chat --interactive`, and `redblue
// launch generate --chat --interactive` across hosts): the model loads once; each turn renders the whole conversation with the file's
// chat template, and only the tokens after what the KV cache already holds (the earlier turns)
// are processed. When the conversation outgrows the context, its oldest exchanges are dropped.
// A lost executor (or host): the survivors load the model and the turn in hand is answered again.
import type { MachineTopology } from '../../native/topology.js';
import type { ChatMessage } from '../../model/chat.js';
import { withSurvivors, type LocalRunHooks } from './local-run.js';
import { checkDraftFile, draftExecutors, drafterFor, draftTokensOf, type DraftOptions } from './draft.js';
import {
  generate,
  loadModel,
  readModelFile,
  type GenerateOptions,
  type GenerateResult,
  type LoadedModel,
  type ModelFile,
  type ModelRunner,
  type PlacementChoice,
} from './generate.js';
import type { GenerateRecovery } from './generate-run.js';
import type { LocalCluster } from '../host/local-cluster.js';

export interface ChatTurn {
  user: string;
  answer: string;
  stoppedBy: GenerateResult['stoppedBy'];
  /** Tokens of the conversation this turn processed, and those it found in the KV cache. */
  promptTokens: number;
  reusedTokens: number;
  generatedTokens: number;
  promptSeconds: number;
  generateSeconds: number;
  /** Earlier exchanges (user and answer) dropped so that the conversation fits the context. */
  dropped: number;
  /** With lookup or a draft model: this answer's drafted tokens, and those that were the ones chosen. */
  drafted?: number;
  accepted?: number;
}

/** A conversation's settings, whichever executors answer it. */
export interface ConversationOptions {
  model: string;
  /** The model's header and tokenizer when already read (see ModelFile). */
  file?: ModelFile;
  ctx?: number;
  placement?: PlacementChoice;
  system?: string;
  /** Tokens per answer at most. */
  maxTokens: number;
  sampling: GenerateOptions['sampling'];
  /** Texts that end an answer where they appear (GenerateOptions.stop). */
  stop?: readonly string[];
  /** The user's next message; undefined ends the conversation. */
  nextMessage: () => Promise<string | undefined>;
  onText?: (text: string) => void;
  onTurn?: (turn: ChatTurn) => void;
  onLoaded?: (model: LoadedModel) => void;
  onProgress?: (done: number, total: number) => void;
  /** Prompt lookup (GenerateOptions.lookup): drafted tokens a step verifies at most; 0: off. */
  lookup?: number;
  /** A draft model (speculative decoding, coordinator/draft.ts); it keeps its KV cache across turns too. */
  draft?: DraftOptions;
  /** false: every turn processes the whole conversation again (tests compare the two). */
  reuseCache?: boolean;
}

export interface ChatRunOptions extends ConversationOptions {
  topology: MachineTopology;
  hooks?: LocalRunHooks;
  onFailure?: 'continue' | 'abort';
  onRecovery?: (r: Pick<GenerateRecovery, 'lost' | 'reason' | 'executors'>) => void;
}

/** Length of the common start of two token lists. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/**
 * A conversation's state (the exchanges answered, a message not answered yet), apart from the
 * executors that answer it: run() loads the model on the executors it is given and answers
 * messages until there are none. When they fail, run() is called again on what is left (this
 * machine's surviving executors, or the hosts left), which loads the model there and answers the
 * message in hand again, from the whole conversation.
 */
export class Conversation {
  private readonly file: ModelFile;
  private readonly history: ChatMessage[] = []; // answered exchanges, user then assistant
  readonly turns: ChatTurn[] = [];
  private pending: string | undefined; // a message not answered yet (asked, or lost mid-answer)
  private loaded = false;

  constructor(private readonly o: ConversationOptions) {
    // The file first: a missing, damaged or unsupported model fails before any executor starts.
    this.file = o.file ?? readModelFile(o.model);
  }

  /** `draftOn`: the draft model's executors (with ConversationOptions.draft). */
  async run(cluster: LocalCluster | ModelRunner, draftOn?: LocalCluster): Promise<ChatTurn[]> {
    const o = this.o;
    const draftTokens = draftTokensOf(o);
    const model = await loadModel(cluster, {
      path: o.model,
      file: this.file,
      ...(o.ctx ? { ctx: o.ctx } : {}),
      ...(o.placement ? { placement: o.placement } : {}),
      ...(draftTokens ? { draftTokens } : {}),
      ...(o.onProgress && !this.loaded ? { onProgress: o.onProgress } : {}),
    });
    const drafter = await drafterFor(draftOn, o, model);
    if (!this.loaded) o.onLoaded?.(model);
    this.loaded = true;
    let cached: number[] = []; // what these executors' KV cache holds, from position 0
    for (;;) {
      this.pending ??= await o.nextMessage();
      const pending = this.pending;
      if (pending === undefined) return this.turns;
      const { tokens, dropped } = fit(model, this.history, o.system, pending, o.maxTokens);
      const reuse = o.reuseCache === false ? 0 : commonPrefix(cached, tokens);
      const r = await generate(cluster, model, {
        prompt: '',
        promptTokens: tokens,
        reuse,
        maxTokens: o.maxTokens,
        sampling: o.sampling,
        ...(o.stop?.length ? { stop: o.stop } : {}),
        ...(o.lookup ? { lookup: o.lookup } : {}),
        ...(drafter ? { drafter } : {}),
        ...(o.onText ? { onText: o.onText } : {}),
      });
      this.history.splice(0, 2 * dropped);
      this.history.push({ role: 'user', content: pending }, { role: 'assistant', content: r.text });
      // The KV cache holds the tokens fed: the last one chosen is not, unless the answer ended on
      // an end-of-generation token (which is not kept) or was cut before choosing.
      const fed = r.stoppedBy === 'eog' || r.stoppedBy === 'aborted' ? 0 : 1;
      cached = [
        ...r.promptTokens,
        ...r.generatedTokens.slice(0, Math.max(0, r.generatedTokens.length - fed)),
      ];
      const t = r.timings;
      const turn: ChatTurn = {
        user: pending,
        answer: r.text,
        stoppedBy: r.stoppedBy,
        promptTokens: t.promptTokens,
        reusedTokens: r.promptTokens.length - t.promptTokens,
        generatedTokens: t.generatedTokens,
        promptSeconds: t.promptSeconds,
        generateSeconds: t.generateSeconds,
        dropped,
        ...(t.drafted !== undefined ? { drafted: t.drafted, accepted: t.accepted ?? 0 } : {}),
      };
      this.turns.push(turn);
      this.pending = undefined;
      o.onTurn?.(turn);
    }
  }
}

/** A conversation on this machine's executors; a lost executor: the survivors answer again. */
export async function runChat(o: ChatRunOptions): Promise<ChatTurn[]> {
  const file = o.file ?? readModelFile(o.model);
  checkDraftFile(file, o.model, o.draft?.path);
  const conversation = new Conversation({ ...o, file });
  const { work, alsoStop } = draftExecutors(!!o.draft, (cluster, side) => conversation.run(cluster, side));
  return withSurvivors(o.topology, work, {
    hooks: { ...o.hooks, whileStarting: () => file.prepare(), alsoStop },
    ...(o.onFailure ? { onFailure: o.onFailure } : {}),
    onLost: (r) =>
      o.onRecovery?.({
        lost: `executor rank ${r.lostRank} (cpus ${r.lostCpus.join(',')})`,
        reason: r.reason,
        executors: r.executors,
      }),
  });
}

/**
 * The conversation's tokens for the next answer, dropping the oldest exchanges until they leave
 * room for it (a quarter of the context at least, or maxTokens when less); throws when the
 * message alone does not fit.
 */
function fit(
  model: LoadedModel,
  history: readonly ChatMessage[],
  system: string | undefined,
  message: string,
  maxTokens: number,
): { tokens: number[]; dropped: number } {
  const room = Math.min(maxTokens, Math.floor(model.ctx / 4));
  for (let dropped = 0; ; dropped++) {
    const messages: ChatMessage[] = [
      ...(system !== undefined ? [{ role: 'system', content: system }] : []),
      ...history.slice(2 * dropped),
      { role: 'user', content: message },
    ];
    const tokens = model.chat.tokens(messages);
    if (tokens.length + room <= model.ctx) return { tokens, dropped };
    if (2 * dropped >= history.length)
      throw new Error(
        `the message makes a conversation of ${tokens.length} tokens, and the context holds ${model.ctx} with room for an answer: use a larger --ctx or a shorter message`,
      );
  }
}
