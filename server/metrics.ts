// GET /metrics of `redblue serve`, in Prometheus' text format: requests by route and status, tokens
// in and out, the queue, time per output token, prompt lookup's drafts, each executor's compute
// and exchange time and its all-reduces by algorithm.
import type { ForwardReply } from '../transport/control.js';
import type { GenerateResult } from '../executor/coordinator/generate.js';

export class Metrics {
  queued = 0;
  active = 0;
  slots = 1;
  private steps = 0;
  private stepTokens = 0;
  private stepSequences = 0;
  private readonly requests = new Map<string, number>();
  private promptTokens = 0;
  private cachedPromptTokens = 0;
  private generatedTokens = 0;
  private generations = 0;
  private aborted = 0;
  private tokenSeconds = 0;
  private drafted = 0;
  private accepted = 0;
  private readonly compute: number[];
  private readonly exchange: number[];
  /** Per rank: all-reduces by algorithm (shm-flat, shm-split, hosts-direct, hosts-chain). */
  private readonly allReduces: Map<string, number>[];

  constructor(ranks: number) {
    this.compute = new Array<number>(ranks).fill(0);
    this.exchange = new Array<number>(ranks).fill(0);
    this.allReduces = Array.from({ length: ranks }, () => new Map<string, number>());
  }

  request(url: string, status: number): void {
    const path = url.split('?')[0]!;
    const route = ['/v1/completions', '/v1/chat/completions', '/v1/models', '/health', '/metrics'].includes(
      path,
    )
      ? path
      : 'other';
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  record(r: GenerateResult): void {
    this.generations++;
    if (r.stoppedBy === 'aborted') this.aborted++;
    this.promptTokens += r.promptTokens.length;
    this.cachedPromptTokens += r.cachedPromptTokens ?? 0;
    this.generatedTokens += r.generatedTokens.length;
    this.tokenSeconds += r.timings.generateSeconds;
  }

  /** One model step: every executor's time, the tokens and sequences it carried. */
  step(
    replies: readonly (Pick<ForwardReply, 'computeSeconds' | 'exchangeSeconds'> &
      Partial<Pick<ForwardReply, 'allReduces'>>)[],
    tokens: number,
    sequences: number,
  ): void {
    this.steps++;
    this.stepTokens += tokens;
    this.stepSequences += sequences;
    replies.forEach((p, rank) => {
      this.compute[rank] = (this.compute[rank] ?? 0) + p.computeSeconds;
      this.exchange[rank] = (this.exchange[rank] ?? 0) + p.exchangeSeconds;
      const counts = (this.allReduces[rank] ??= new Map<string, number>());
      for (const [algo, n] of Object.entries(p.allReduces ?? {}))
        counts.set(algo, (counts.get(algo) ?? 0) + n);
    });
  }

  /** Prompt lookup: a step's drafts for one sequence, and how many were the tokens chosen. */
  drafts(drafted: number, accepted: number): void {
    this.drafted += drafted;
    this.accepted += accepted;
  }

  render(): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    metric('redblue_requests_total', 'counter', 'HTTP requests by route and status.', [
      ...[...this.requests].map(([k, v]) => `redblue_requests_total{${k}} ${v}`),
    ]);
    metric('redblue_prompt_tokens_total', 'counter', 'Prompt tokens of the requests answered.', [
      `redblue_prompt_tokens_total ${this.promptTokens}`,
    ]);
    metric(
      'redblue_prompt_tokens_cached_total',
      'counter',
      "Prompt tokens found in a KV slot's cache (a prefix of the slot's last sequence) and not processed again.",
      [`redblue_prompt_tokens_cached_total ${this.cachedPromptTokens}`],
    );
    metric('redblue_generated_tokens_total', 'counter', 'Tokens generated.', [
      `redblue_generated_tokens_total ${this.generatedTokens}`,
    ]);
    metric('redblue_generations_total', 'counter', 'Generations run (aborted: the client went away).', [
      `redblue_generations_total ${this.generations}`,
      `redblue_generations_aborted_total ${this.aborted}`,
    ]);
    metric('redblue_queue_length', 'gauge', 'Requests waiting for the model.', [
      `redblue_queue_length ${this.queued}`,
    ]);
    metric('redblue_active_requests', 'gauge', 'Requests generating now, each in a KV slot.', [
      `redblue_active_requests ${this.active}`,
    ]);
    metric('redblue_kv_slots', 'gauge', 'KV-cache slots on every executor (--parallel), and those in use.', [
      `redblue_kv_slots{state="total"} ${this.slots}`,
      `redblue_kv_slots{state="in_use"} ${this.active}`,
    ]);
    metric('redblue_steps_total', 'counter', 'Model steps, the tokens and the sequences they carried.', [
      `redblue_steps_total ${this.steps}`,
      `redblue_step_tokens_total ${this.stepTokens}`,
      `redblue_step_sequences_total ${this.stepSequences}`,
    ]);
    metric(
      'redblue_draft_tokens_total',
      'counter',
      'Drafted tokens (serve --lookup or --draft): tokens drafted, and those that were the tokens chosen.',
      [
        `redblue_draft_tokens_total{outcome="drafted"} ${this.drafted}`,
        `redblue_draft_tokens_total{outcome="accepted"} ${this.accepted}`,
      ],
    );
    metric(
      'redblue_seconds_per_output_token',
      'gauge',
      'Mean decoding time per generated token, per request (streams decoded together overlap).',
      [
        `redblue_seconds_per_output_token ${this.generatedTokens ? this.tokenSeconds / this.generatedTokens : 0}`,
      ],
    );
    metric('redblue_executor_seconds_total', 'counter', "Each executor's time in kernels and in exchanges.", [
      ...this.compute.map((s, r) => `redblue_executor_seconds_total{rank="${r}",kind="compute"} ${s}`),
      ...this.exchange.map((s, r) => `redblue_executor_seconds_total{rank="${r}",kind="exchange"} ${s}`),
    ]);
    metric(
      'redblue_executor_allreduces_total',
      'counter',
      "Each executor's all-reduces by algorithm: shm-flat, shm-split (inside a host, small and large vectors), hosts-direct, hosts-chain (across hosts).",
      this.allReduces.flatMap((m, r) =>
        [...m].map(([algo, n]) => `redblue_executor_allreduces_total{rank="${r}",algorithm="${algo}"} ${n}`),
      ),
    );
    return out.join('\n') + '\n';
  }
}
