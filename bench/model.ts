// `redblue bench model`: llama-bench's pp512 and tg128 on a GGUF model, redblue's executors
// against llama.cpp (node-llama-cpp, CPU) with as many threads, measured in the same run; token
// generation also against what the machine's read bandwidth allows (tokens/s × weight bytes
// per token), 2 executors against 1 beside the read-bandwidth scaling of 2 cores against 1, and
// each executor's resident memory against its share of the weights plus its KV cache. With
// --lookup N, greedy generation with prompt lookup against the same generation without it; with
// --draft F, the same with a draft model (generate --draft).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { readTopology, type MachineTopology } from '../native/topology.js';
import { oneCpuPerCore, restrictToCpus, virtualize } from '../native/virtual-nodes.js';
import { readGguf } from '../model/gguf/read.js';
import { describeModel, type ModelInfo } from '../model/arch.js';
import { MAX_DRAFT } from '../model/lookup.js';
import { DOORBELL_MAX_TOKENS } from '../native/model.js';
import { LocalCluster } from '../executor/host/local-cluster.js';
import {
  forward,
  generate,
  loadModel,
  readModelFile,
  runnerOf,
  type LoadedModel,
  type TokenDrafter,
} from '../executor/coordinator/generate.js';
import { checkDraftFile, draftTokensOf, ModelDrafter } from '../executor/coordinator/draft.js';
import { openReference, type Rate } from './llama-reference.js';
import { machineInfo, result, type BenchReport, type BenchResult } from './report.js';
import { streamRead } from './read-bandwidth.js';
import { UsageError } from '../common/errors.js';
import { formatBytes, table } from '../common/format.js';

export interface ModelBenchOptions {
  model: string;
  /** Executors of the main figures; 1 is measured too for the scaling. */
  executors: number;
  /**
   * Cores of each executor (default 1): its pinned threads. llama.cpp gets as many threads as
   * the executors have cores, and the read bandwidth is that of the same cores.
   */
  cores?: number;
  pp: number;
  tg: number;
  /**
   * Tokens already in the context when pp and tg are timed (llama-bench's -d): written once,
   * untimed, so the timed steps attend over them. Default 0.
   */
  depth?: number;
  reps: number;
  /** Skip llama.cpp (its figures then read 0). */
  reference: boolean;
  /** Drafted tokens a step checks (generate --lookup): measured against no drafts; 0: not measured. */
  lookup?: number;
  /** A draft model (generate --draft): greedy generation with it against the same without. */
  draft?: { path: string; max: number; pMin: number };
  cpus?: number[];
}

const log = (s: string) => process.stderr.write(`bench model: ${s}\n`);

function rate(runs: number[]): Rate {
  const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
  const sd =
    runs.length > 1 ? Math.sqrt(runs.reduce((a, b) => a + (b - mean) ** 2, 0) / (runs.length - 1)) : 0;
  return { mean, sd, runs };
}

/** Deterministic arbitrary token ids (llama-bench feeds arbitrary tokens too). */
function tokens(n: number, vocab: number, seed: number): number[] {
  let x = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % vocab;
  });
}

/**
 * A process's memory (Linux smaps_rollup), bytes: resident (RSS), proportional (PSS: pages shared
 * with other processes divided among them) and private (pages no other process maps: what the
 * process alone costs the machine; the node binary's and libraries' pages, ~50 MB of an
 * executor's RSS, are shared with the coordinator and every other executor). Reserved huge pages
 * (hugetlbfs, where an executor's weights go when the set-up reserved enough) are not in the
 * kernel's Rss and Private_* lines but in their own: added here, or an executor whose weights
 * got them would seem to hold a third of its share.
 */
export interface Memory {
  rss: number;
  pss: number;
  private: number;
}
export function memoryOf(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  const hugePrivate = kb('Private_Hugetlb');
  const huge = hugePrivate + kb('Shared_Hugetlb');
  return {
    rss: kb('Rss') + huge,
    pss: kb('Pss') + hugePrivate,
    private: kb('Private_Clean') + kb('Private_Dirty') + hugePrivate,
  };
}

interface OwnFigures {
  pp: Rate;
  tg: Rate;
  model: LoadedModel;
  memory: Memory[];
  /** Each executor's memory before the model was loaded (Node, gRPC, the addon). */
  memoryBefore: Memory[];
  exchangeShareTg: number;
  /**
   * The read bandwidth of the executors' cores sampled around each timed tg repetition (before
   * it and after it, the better kept): its reference from the same seconds, as a shared VM's
   * bandwidth drifts by a third from one minute to the next. Empty without `readAround`.
   */
  tgRead: number[];
  lookup?: LookupFigures;
  draft?: LookupFigures;
}

/** Greedy generation of tg tokens from one prompt, with drafts and without, alternated. */
interface LookupFigures {
  plain: Rate;
  drafted: Rate;
  draftedTokens: number;
  acceptedTokens: number;
  /** Whether every run gave the same tokens (it must: the drafts only change the steps). */
  sameTokens: boolean;
}

/** `drafter()`: a fresh drafter for each run with drafts (prompt lookup's or a draft model's). */
async function measureDrafting(
  cluster: LocalCluster,
  model: LoadedModel,
  o: ModelBenchOptions,
  info: ModelInfo,
  drafter: () => { lookup: number } | { drafter: TokenDrafter },
): Promise<LookupFigures> {
  const promptTokens = tokens(32, info.nVocab, 3);
  const runs = { plain: [] as number[], drafted: [] as number[] };
  let draftedTokens = 0;
  let acceptedTokens = 0;
  let first: number[] | undefined;
  let sameTokens = true;
  for (let r = 0; r <= o.reps; r++)
    for (const drafts of [false, true]) {
      const g = await generate(cluster, model, {
        prompt: '',
        promptTokens,
        maxTokens: o.tg,
        stopAtEog: false,
        sampling: { temperature: 0, seed: 1 },
        ...(drafts ? drafter() : {}),
      });
      first ??= g.generatedTokens;
      sameTokens &&= g.generatedTokens.join() === first.join();
      if (r === 0) continue; // warm-up
      (drafts ? runs.drafted : runs.plain).push(g.timings.generateTokensPerSecond);
      if (drafts) {
        draftedTokens += g.timings.drafted ?? 0;
        acceptedTokens += g.timings.accepted ?? 0;
      }
    }
  return { plain: rate(runs.plain), drafted: rate(runs.drafted), draftedTokens, acceptedTokens, sameTokens };
}

/** measureDrafting with a draft model on executors of its own, on the same nodes. */
async function measureDraftModel(
  cluster: LocalCluster,
  model: LoadedModel,
  o: ModelBenchOptions,
  info: ModelInfo,
): Promise<LookupFigures> {
  const d = o.draft!;
  const side = await LocalCluster.start({ topology: cluster.topology });
  try {
    const file = readModelFile(d.path);
    const draftModel = await loadModel(side, {
      path: d.path,
      file,
      ctx: Math.min(model.ctx, file.info.nCtxTrain),
    });
    const opts = { path: d.path, max: d.max, pMin: d.pMin, targetVocab: info.nVocab };
    return await measureDrafting(cluster, model, o, info, () => ({
      drafter: new ModelDrafter(runnerOf(side), draftModel, opts),
    }));
  } finally {
    await side.stop();
  }
}

async function measureOwn(
  topo: MachineTopology,
  o: ModelBenchOptions,
  info: ModelInfo,
  readAround?: () => number,
): Promise<OwnFigures> {
  const cluster = await LocalCluster.start({ topology: topo });
  try {
    const memoryBefore = cluster.pids().map(memoryOf);
    const depth = o.depth ?? 0;
    const model = await loadModel(cluster, {
      path: o.model,
      ctx: Math.min(info.nCtxTrain, depth + o.pp + o.tg + 16),
      ...(readAround && draftTokensOf(o) ? { draftTokens: draftTokensOf(o) } : {}),
    });
    const pp: number[] = [];
    const tg: number[] = [];
    let compute = 0;
    let exchange = 0;
    const prompt = tokens(o.pp, info.nVocab, 1);
    const gen = tokens(o.tg, info.nVocab, 2);
    const row = new Float32Array(info.nVocab);
    const readBefore: number[] = [];
    // The context at depth, once: every timed step below writes at positions from `depth` on and
    // attends over these (a position's K and V are rewritten before they are read again).
    const context = tokens(depth, info.nVocab, 3);
    for (let at = 0; at < depth; at += DOORBELL_MAX_TOKENS)
      await forward(cluster, context.slice(at, at + DOORBELL_MAX_TOKENS), at, 'none', false);
    for (let r = 0; r <= o.reps; r++) {
      let t0 = performance.now();
      // Computed, not sent back: llama.cpp's pp (evaluate without generating) reads no logits.
      await forward(cluster, prompt, depth, 'last', false);
      const ppSeconds = (performance.now() - t0) / 1e3;
      // The executors are idle now (they sleep between steps), so the sample has the cores.
      if (r > 0 && readAround) readBefore.push(readAround());
      t0 = performance.now();
      for (let i = 0; i < o.tg; i++) {
        // Sent back, as generating needs them (the reference's tg runs greedy steps too), into
        // one buffer as generate's loop.
        const f = await forward(cluster, [gen[i]!], depth + i, 'last', true, row);
        if (r > 0) {
          compute += Math.max(...f.replies.map((x) => x.computeSeconds));
          exchange += Math.max(...f.replies.map((x) => x.exchangeSeconds));
        }
      }
      const tgSeconds = (performance.now() - t0) / 1e3;
      if (r === 0) continue; // warm-up, as llama-bench
      pp.push(o.pp / ppSeconds);
      tg.push(o.tg / tgSeconds);
    }
    const readAfter = readAround && o.reps > 0 ? readAround() : 0;
    // Repetition r's samples: the one before it and the one before the next (after the last).
    const tgRead = readBefore.map((b, r) => Math.max(b, readBefore[r + 1] ?? readAfter));
    const memory = cluster.pids().map(memoryOf);
    const lookup =
      o.lookup && readAround
        ? await measureDrafting(cluster, model, o, info, () => ({ lookup: o.lookup! }))
        : undefined;
    const draft = o.draft && readAround ? await measureDraftModel(cluster, model, o, info) : undefined;
    return {
      ...(lookup ? { lookup } : {}),
      ...(draft ? { draft } : {}),
      pp: rate(pp),
      tg: rate(tg),
      model,
      memory,
      memoryBefore,
      exchangeShareTg: exchange / (compute + exchange || 1),
      tgRead,
    };
  } finally {
    await cluster.stop();
  }
}

export async function benchModel(o: ModelBenchOptions): Promise<BenchReport & { table: string }> {
  const startedAt = new Date().toISOString();
  const info = describeModel(readGguf(o.model, { strings: 'count' }));
  const depth = o.depth ?? 0;
  // Both engines time pp and tg from position `depth` (each after the other's tokens are dropped).
  const need = depth + Math.max(o.pp, o.tg + 1);
  if (need > info.nCtxTrain)
    throw new UsageError(
      `--depth ${depth} and --pp ${o.pp} / --tg ${o.tg} need a context of ${need} tokens; ${o.model} was trained for ${info.nCtxTrain}: ask for less`,
    );
  // llama-bench's test names: pp512, and pp512 @ d2048 at a depth (cases pp512_d2048).
  const test = (t: string) => (depth ? `${t} @ d${depth}` : t);
  const id = (t: string) => (depth ? `${t}_d${depth}` : t);
  const P = o.executors;
  const C = o.cores ?? 1;
  const real = readTopology();
  const cpus = o.cpus ?? oneCpuPerCore(real, P * C);
  if (!o.cpus && cpus.length < P * C)
    throw new UsageError(
      `--executors ${P} of --cores ${C} need ${P * C} cpus; this machine gives ${cpus.length}: ask for fewer`,
    );
  if (cpus.length !== P * C)
    throw new UsageError(
      `--cpus takes ${P * C} cpus (${C === 1 ? 'one' : C} per executor), got ${cpus.length}`,
    );
  const cpus1 = cpus.slice(0, C); // the one executor of the scaling figure
  const many = virtualize(restrictToCpus(real, cpus), P);
  const one = virtualize(restrictToCpus(real, cpus1), 1);
  const cores = (n: number) => `${n} core${n === 1 ? '' : 's'}`;
  const results: BenchResult[] = [];

  // The read reference is sampled before, between and after the runs, and the best kept: on a
  // shared VM one sampling read 24 GB/s for 2 cores minutes after generation itself had read 34.
  const bytes = Math.max(512 << 20, Math.min(2 * info.weightBytesPerToken, 2 << 30));
  const readSamples: { p: number[]; one: number[] } = { p: [], one: [] };
  const sampleRead = (): void => {
    log(`read bandwidth of ${P > 1 ? `${C} and ` : ''}${P * C} cores`);
    readSamples.p.push(streamRead(cpus, bytes, 3));
    if (P > 1) readSamples.one.push(streamRead(cpus1, bytes, 3));
  };
  sampleRead();
  log(
    `${o.model}: ${info.arch}, ${info.nLayer} layers, on ${P} executor(s) of ${cores(C)} (cpus ${cpus.join(',')})`,
  );
  // Shorter than the run-wide samples (a tenth of a second): one before each timed generation.
  const own = await measureOwn(many, o, info, () => streamRead(cpus, 256 << 20, 3));
  if (P > 1) log(`the same on 1 executor (cpus ${cpus1.join(',')})`);
  const own1 = P > 1 ? await measureOwn(one, o, info) : own;
  sampleRead();

  let ref = { pp: rate([0]), tg: rate([0]) };
  let refSettings: unknown;
  if (o.reference) {
    log(`llama.cpp with ${P * C} thread(s)`);
    const r = await openReference(o.model, { threads: P * C, ctx: depth + o.pp + o.tg + 16 });
    try {
      ref = await r.bench({ pp: o.pp, tg: o.tg, reps: o.reps, depth });
      refSettings = r.settings;
    } finally {
      await r.close();
    }
  }
  sampleRead();
  const readP = Math.max(...readSamples.p);
  const read1 = Math.max(...readSamples.one);

  const common = {
    executors: P,
    coresPerExecutor: C,
    model: o.model,
    arch: info.arch,
    weightBytesPerToken: info.weightBytesPerToken,
    depth,
  };
  const bestTgGBps = (Math.max(...own.tg.runs) * info.weightBytesPerToken) / 1e9;
  const pairs = own.tg.runs.map((t, r) => ({
    gbps: (t * info.weightBytesPerToken) / 1e9,
    read: own.tgRead[r] ?? readP,
  }));
  const byRatio = [...pairs].sort((a, b) => a.gbps / a.read - b.gbps / b.read);
  const paired = byRatio[(byRatio.length - 1) >> 1]!;
  const percent = (x: number) => `${(x * 100).toFixed(0)}%`;
  results.push(
    result({
      case: id(`pp${o.pp}`),
      metric: 'prompt processing',
      value: own.pp.mean,
      unit: 'tokens/s',
      reference: `llama.cpp_${P * C}_threads`,
      referenceValue: ref.pp.mean,
      details: { ...common, sd: own.pp.sd, referenceSd: ref.pp.sd, referenceSettings: refSettings },
    }),
    result({
      case: id(`tg${o.tg}`),
      metric: 'token generation',
      value: own.tg.mean,
      unit: 'tokens/s',
      reference: `llama.cpp_${P * C}_threads`,
      referenceValue: ref.tg.mean,
      details: { ...common, sd: own.tg.sd, referenceSd: ref.tg.sd, exchangeShare: own.exchangeShareTg },
    }),
    // Each timed generation against the read bandwidth sampled around it; the repetition with
    // the median ratio is the figure. Best against best over the whole run is in details.
    result({
      case: `${id(`tg${o.tg}`)}_bandwidth`,
      // At a depth each token also reads the cache's K and V, which this does not count.
      metric: depth
        ? 'weights read while generating (the KV cache not counted)'
        : 'weights read while generating',
      value: paired.gbps,
      unit: 'GB/s',
      reference: `read_bandwidth_${P * C}_cores`,
      referenceValue: paired.read,
      details: {
        ...common,
        pairs: pairs.map((p) => ({ tgGBps: p.gbps, readGBps: p.read })),
        meanGBps: (own.tg.mean * info.weightBytesPerToken) / 1e9,
        bestGBps: bestTgGBps,
        bestReadGBps: readP,
        readSamplesGBps: readSamples.p,
      },
    }),
  );
  // The scaling of P executors over 1 (none when P is 1).
  if (P > 1)
    results.push(
      result({
        case: `${id(`tg${o.tg}`)}_scaling`,
        metric: `speed-up of ${P} executors over 1`,
        value: own.tg.mean / own1.tg.mean,
        unit: '×',
        reference: `read_bandwidth_${P * C}_cores_over_${C}`,
        referenceValue: readP / read1,
        details: {
          oneExecutor: own1.tg.mean,
          read1GBps: read1,
          readGBps: readP,
          read1SamplesGBps: readSamples.one,
        },
      }),
    );
  const lk = own.lookup;
  if (lk)
    results.push(
      result({
        case: `gen${o.tg}_lookup${o.lookup}`,
        metric: `greedy generation with prompt lookup (--lookup ${o.lookup})`,
        value: lk.drafted.mean,
        unit: 'tokens/s',
        reference: `gen${o.tg}_without_lookup`,
        referenceValue: lk.plain.mean,
        details: {
          ...common,
          sd: lk.drafted.sd,
          referenceSd: lk.plain.sd,
          draftedTokens: lk.draftedTokens,
          acceptedTokens: lk.acceptedTokens,
          sameTokens: lk.sameTokens,
        },
      }),
    );
  const dm = own.draft;
  if (dm)
    results.push(
      result({
        case: `gen${o.tg}_draft`,
        metric: `greedy generation with a draft model (--draft ${basename(o.draft!.path)}, --draft-max ${o.draft!.max}, --draft-p-min ${o.draft!.pMin})`,
        value: dm.drafted.mean,
        unit: 'tokens/s',
        reference: `gen${o.tg}_without_draft`,
        referenceValue: dm.plain.mean,
        details: {
          ...common,
          sd: dm.drafted.sd,
          referenceSd: dm.plain.sd,
          draftedTokens: dm.draftedTokens,
          acceptedTokens: dm.acceptedTokens,
          sameTokens: dm.sameTokens,
        },
      }),
    );
  own.model.perRank.forEach((p, rank) => {
    const share = p.weightBytes + p.kvBytes;
    const m = own.memory[rank]!;
    const before = own.memoryBefore[rank]!;
    const details = {
      weightBytes: p.weightBytes,
      kvBytes: p.kvBytes,
      rssBytes: m.rss,
      pssBytes: m.pss,
      privateBytes: m.private,
      // The process before loading (Node, gRPC, the addon), and what loading and running the
      // model added over its share.
      beforeLoadBytes: before.rss,
      beforeLoadPrivateBytes: before.private,
      modelOverhead: (m.private - before.private) / share - 1,
    };
    const memoryCase = (name: string, metric: string, value: number) =>
      result({
        case: `${name}_rank${rank}`,
        metric,
        value,
        unit: 'bytes',
        reference: 'weights_share_plus_kv',
        referenceValue: share,
        direction: 'lower-is-better',
        details: { ...details, overhead: value / share - 1 },
      });
    results.push(
      memoryCase('rss', 'resident memory, shared pages included', m.rss),
      memoryCase('private', 'resident memory of its own (not shared with other processes)', m.private),
    );
  });

  const fmt = (r: Rate) => `${r.mean.toFixed(2)} ± ${r.sd.toFixed(2)}`;
  const types = Object.entries(info.bytesByType)
    .sort((a, b) => b[1]!.bytes - a[1]!.bytes)
    .map(([t]) => t)
    .join('+');
  const params = `${(info.parameterCount / 1e9).toFixed(2)} B`;
  // llama-bench's model column: architecture, size class, main weight type.
  const main = Object.entries(info.bytesByType).sort((a, b) => b[1]!.bytes - a[1]!.bytes)[0]?.[0] ?? '?';
  const name = `${info.arch} ${params} ${main.toUpperCase()}`;
  const vs = (own: Rate, ref: Rate): [string, string] =>
    o.reference ? [fmt(ref), `${(own.mean / ref.mean).toFixed(2)}×`] : ['-', '-'];
  const row = (executors: number, test: string, own: Rate, ref?: Rate) => [
    name,
    formatBytes(info.weightBytesPerToken),
    params,
    types,
    C === 1 ? String(executors) : `${executors} × ${cores(C)}`,
    test,
    fmt(own),
    ...(ref ? vs(own, ref) : ['', '']),
  ];
  const rows = [
    row(P, test(`pp${o.pp}`), own.pp, ref.pp),
    row(P, test(`tg${o.tg}`), own.tg, ref.tg),
    ...(P > 1 ? [row(1, test(`tg${o.tg}`), own1.tg)] : []),
  ];
  const text =
    table(['model', 'size', 'params', 'type', 'executors', 'test', 't/s', 'llama.cpp t/s', 'ratio'], rows) +
    '\n\n' +
    [
      `token generation reads ${paired.gbps.toFixed(2)} GB/s of weights: ${percent(paired.gbps / paired.read)} of the read bandwidth of ${P * C} core(s) sampled around it (${paired.read.toFixed(2)} GB/s; each repetition: ${pairs.map((p) => percent(p.gbps / p.read)).join(', ')}, median kept)`,
      `best against best over the run: ${bestTgGBps.toFixed(2)} GB/s (${((own.tg.mean * info.weightBytesPerToken) / 1e9).toFixed(2)} on average) against ${readP.toFixed(2)} GB/s, ${percent(bestTgGBps / readP)} (run-wide samples ${readSamples.p.map((v) => v.toFixed(1)).join(', ')})`,
      ...(P > 1
        ? [
            `${P} executors against 1: ${(own.tg.mean / own1.tg.mean).toFixed(2)}× (the read bandwidth of ${P * C} cores against ${C}: ${(readP / read1).toFixed(2)}×)`,
          ]
        : []),
      ...(lk
        ? [
            `prompt lookup (--lookup ${o.lookup}): greedy generation of ${o.tg} tokens at ${fmt(lk.drafted)} tokens/s against ${fmt(lk.plain)} without it, ${(lk.drafted.mean / lk.plain.mean).toFixed(2)}×; ${lk.acceptedTokens} of ${lk.draftedTokens} drafted tokens taken; ${lk.sameTokens ? 'the same tokens' : 'OTHER TOKENS (a bug)'} with and without`,
          ]
        : []),
      ...(dm
        ? [
            `draft model (--draft ${basename(o.draft!.path)}): greedy generation of ${o.tg} tokens at ${fmt(dm.drafted)} tokens/s against ${fmt(dm.plain)} without it, ${(dm.drafted.mean / dm.plain.mean).toFixed(2)}×; ${dm.acceptedTokens} of ${dm.draftedTokens} drafted tokens taken; ${dm.sameTokens ? 'the same tokens' : 'OTHER TOKENS (a bug)'} with and without`,
          ]
        : []),
      ...own.model.perRank.map((p, r) => {
        const m = own.memory[r]!;
        const b = own.memoryBefore[r]!;
        const share = p.weightBytes + p.kvBytes;
        const pct = (v: number) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}%`;
        return (
          `rank ${r}: weights ${formatBytes(p.weightBytes)} + KV cache ${formatBytes(share - p.weightBytes)}; ` +
          `its own memory ${formatBytes(m.private)} (${pct(m.private / share - 1)}), resident ${formatBytes(m.rss)} with the pages it shares (${pct(m.rss / share - 1)}); ` +
          `${formatBytes(b.private)} of its own before loading (Node, gRPC, the addon), the model added ${formatBytes(m.private - b.private)} (${pct((m.private - b.private) / share - 1)})`
        );
      }),
    ].join('\n') +
    '\n';
  return { benchmark: 'model', results, machine: machineInfo(), startedAt, table: text };
}

export function registerBenchModel(bench: Command): void {
  bench
    .command('model')
    .description(
      "llama-bench's pp512 / tg128 on a GGUF model: redblue's executors against llama.cpp in the same run",
    )
    .requiredOption('-m, --model <file>', 'the GGUF model')
    .option('--executors <N>', 'executors (virtual nodes)', (v) => Number(v), 2)
    .option(
      '--cores <N>',
      "cores of each executor (its threads; llama.cpp gets all the executors' cores)",
      (v) => Number(v),
      1,
    )
    .option('--pp <N>', 'prompt tokens', (v) => Number(v), 512)
    .option('--tg <N>', 'generated tokens', (v) => Number(v), 128)
    .option(
      '--depth <N>',
      "tokens already in the context when pp and tg are timed (llama-bench's -d; both engines write them once, untimed)",
      (v) => Number(v),
      0,
    )
    .option('--reps <N>', 'timed repetitions after one warm-up', (v) => Number(v), 3)
    .option('--cpus <list>', 'the cpus of the executors, --cores each (default: one per core)')
    .option(
      '--lookup <N>',
      'also time greedy generation with prompt lookup (generate --lookup N) against the same generation without it',
      (v) => Number(v),
    )
    .option(
      '--draft <file>',
      'also time greedy generation with a draft model (generate --draft FILE) against the same generation without it',
    )
    .option(
      '--draft-max <N>',
      'with --draft: tokens drafted at most after each chosen one',
      (v) => Number(v),
      8,
    )
    .option(
      '--draft-p-min <P>',
      'with --draft: a draft ends before a token the draft model gives less than this probability',
      (v) => Number(v),
      0.75,
    )
    .option('--no-reference', 'skip llama.cpp')
    .option('--json', 'print the results in the shared bench schema')
    .action(
      async (opts: {
        model: string;
        executors: number;
        cores: number;
        pp: number;
        tg: number;
        depth: number;
        reps: number;
        cpus?: string;
        reference: boolean;
        lookup?: number;
        draft?: string;
        draftMax: number;
        draftPMin: number;
        json?: boolean;
      }) => {
        for (const [flag, v] of [
          ['--executors', opts.executors],
          ['--cores', opts.cores],
          ['--pp', opts.pp],
          ['--tg', opts.tg],
          ['--reps', opts.reps],
          ...(opts.lookup !== undefined ? ([['--lookup', opts.lookup]] as const) : []),
          ['--draft-max', opts.draftMax],
        ] as const) {
          if (!Number.isSafeInteger(v) || v < 1)
            throw new UsageError(`${flag} must be a whole number of at least 1, got ${v}`);
        }
        if (!Number.isSafeInteger(opts.depth) || opts.depth < 0)
          throw new UsageError(`--depth must be a whole number of at least 0, got ${opts.depth}`);
        const cpus = opts.cpus?.split(',').map((x) => Number(x.trim()));
        if (opts.lookup !== undefined && opts.lookup > MAX_DRAFT)
          throw new UsageError(`--lookup drafts at most ${MAX_DRAFT} tokens a step, got ${opts.lookup}`);
        if (opts.draftMax > MAX_DRAFT)
          throw new UsageError(`--draft-max drafts at most ${MAX_DRAFT} tokens a step, got ${opts.draftMax}`);
        if (!(opts.draftPMin >= 0 && opts.draftPMin <= 1))
          throw new UsageError(`--draft-p-min must be a number from 0 to 1, got ${opts.draftPMin}`);
        if (opts.draft !== undefined) checkDraftFile(readModelFile(opts.model), opts.model, opts.draft);
        if (cpus?.some((c) => !Number.isInteger(c) || c < 0))
          throw new UsageError(`--cpus takes cpu numbers such as 0,1, got "${opts.cpus}"`);
        const { table: text, ...report } = await benchModel({
          model: opts.model,
          executors: opts.executors,
          cores: opts.cores,
          pp: opts.pp,
          tg: opts.tg,
          depth: opts.depth,
          reps: opts.reps,
          reference: opts.reference,
          ...(opts.lookup ? { lookup: opts.lookup } : {}),
          ...(opts.draft !== undefined
            ? { draft: { path: opts.draft, max: opts.draftMax, pMin: opts.draftPMin } }
            : {}),
          ...(cpus ? { cpus } : {}),
        });
        process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : text);
      },
    );
}
