// Evaluating candidates exactly and choosing one: memory first (a plan must fit), then compute
// balance (within ε when any candidate manages it), then the objective.
import { ONE_STEP } from './chunks.js';
import { evaluate } from './evaluate.js';
import { assignOwnership } from './ownership.js';
import { chooseChunking } from './sequential.js';
import type { Candidate } from './candidates.js';
import type { EvalContext } from './context.js';
import type { Evaluation } from './evaluate.js';
import type { Objective } from './types.js';

export interface CandidateResult {
  ev: Evaluation;
  fits: boolean;
  minBytes: number;
}

export function evaluateCandidate(ctx: EvalContext, c: Candidate): CandidateResult {
  // A grid over the whole problem on the first ranks is fully described by its shape.
  const key = c.grid ? `${c.grid.join('x')}|${c.tree.box.m}|${c.tree.box.n}|${c.tree.box.k}` : null;
  if (key && ctx.memo.has(key)) return ctx.memo.get(key) as CandidateResult;
  const owns = assignOwnership(c.tree, ctx.P);
  const choice = chooseChunking(ctx, c.tree, owns);
  let unfit: Evaluation | undefined;
  // A candidate that does not fit is evaluated only if asked (baselines report it): a refusal for
  // memory then costs no evaluation at all.
  const r: CandidateResult = choice.ok
    ? { ev: evaluate(ctx, c.tree, owns, choice.chunking), fits: true, minBytes: 0 }
    : {
        get ev() {
          return (unfit ??= evaluate(ctx, c.tree, owns, ONE_STEP));
        },
        fits: false,
        minBytes: choice.minBytes,
      };
  if (key) ctx.memo.set(key, r);
  return r;
}

export interface Chosen {
  cand: Candidate;
  ev: Evaluation;
}

export type Selection = { ok: true; best: Chosen; all: Chosen[] } | { ok: false; minBytes: number };

export function better(a: Evaluation, b: Evaluation, objective: Objective): boolean {
  const key = (e: Evaluation) =>
    objective === 'volume'
      ? [e.maxVolume, e.time.total, e.totalVolume]
      : [e.time.total, e.maxVolume, e.totalVolume];
  const ka = key(a);
  const kb = key(b);
  for (let i = 0; i < ka.length; i++) {
    const x = ka[i]!;
    const y = kb[i]!;
    // Relative tolerance so float noise in times does not decide.
    if (Math.abs(x - y) > 1e-12 * Math.max(Math.abs(x), Math.abs(y))) return x < y;
  }
  return false;
}

export function select(ctx: EvalContext, cands: Candidate[], eps: number, objective: Objective): Selection {
  const fitting: Chosen[] = [];
  let minBytes = Infinity;
  for (const cand of cands) {
    const r = evaluateCandidate(ctx, cand);
    if (r.fits) fitting.push({ cand, ev: r.ev });
    else minBytes = Math.min(minBytes, r.minBytes);
  }
  if (fitting.length === 0) return { ok: false, minBytes };
  const balanced = fitting.filter((c) => c.ev.imbalance <= eps + 1e-9);
  let pool = balanced;
  if (pool.length === 0) {
    const least = Math.min(...fitting.map((c) => c.ev.imbalance));
    pool = fitting.filter((c) => c.ev.imbalance <= least + 1e-9);
  }
  let best = pool[0]!;
  for (const c of pool.slice(1)) if (better(c.ev, best.ev, objective)) best = c;
  return { ok: true, best, all: fitting };
}
