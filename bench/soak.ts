// `redblue bench soak`: many consecutive `run gemm`s (each with its own executors, as the command
// runs them) and a long generation on one loaded model, in this process; resident memory, open
// file descriptors, threads and /dev/shm entries at the start and at the end, of this process
// and of the model's executors. Nothing should grow: each case's ratio is the end against the
// start (1.00 = no growth; the reference is the start of the same run).
import { readdirSync, readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Command } from 'commander';
import { parsePositiveInt } from '../common/errors.js';
import { readTopology } from '../native/topology.js';
import type { MachineTopology } from '../native/topology.js';
import { withLocalCluster } from '../executor/coordinator/local-run.js';
import { planLocalGemm } from '../executor/coordinator/local-plan.js';
import { runGemm } from '../executor/coordinator/gemm-run.js';
import { generate, loadModel, localRunner } from '../executor/coordinator/generate.js';
import { machineInfo, renderReport, result, type BenchReport, type BenchResult } from './report.js';

export interface SoakOptions {
  topology: MachineTopology;
  gemmRuns: number;
  /** m = n = k of each gemm. */
  size: number;
  model?: string;
  tokens: number;
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface Resources {
  residentBytes: number;
  /** This process's JavaScript heap after a full collection (0 for another process). */
  jsHeapBytes: number;
  fds: number;
  threads: number;
  shmEntries: number;
}

/**
 * A full garbage collection of this process first, so that the JavaScript heap's slack (freed
 * arrays not yet collected) is not counted as growth.
 */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** A process's resident memory, open descriptors and threads (Linux /proc), and /dev/shm's redblue entries. */
export function resourcesOf(pid: number | 'self' = 'self'): Resources {
  if (pid === 'self') collectGarbage();
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return {
    residentBytes: field('VmRSS') * 1024,
    jsHeapBytes: pid === 'self' ? process.memoryUsage().heapUsed : 0,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    threads: field('Threads'),
    shmEntries: readdirSync('/dev/shm').filter((f) => f.startsWith('redblue-')).length,
  };
}

function growth(
  prefix: string,
  start: Resources,
  end: Resources,
  details: Record<string, unknown>,
): BenchResult[] {
  const kinds: [keyof Resources, string][] = [
    ['residentBytes', 'bytes'],
    ...(start.jsHeapBytes ? ([['jsHeapBytes', 'bytes']] as [keyof Resources, string][]) : []),
    ['fds', 'descriptors'],
    ['threads', 'threads'],
    ['shmEntries', 'entries'],
  ];
  return kinds.map(([k, unit]) => ({
    ...result({
      case: `${prefix}_${k}`,
      metric: 'end vs start',
      value: end[k],
      unit,
      reference: 'start',
      referenceValue: start[k],
      direction: 'lower-is-better',
      details,
    }),
    // None at the start and none at the end is no growth.
    ...(start[k] === 0 && end[k] === 0 ? { ratio: 1 } : {}),
  }));
}

/**
 * resourcesOf once its counts hold still: a cluster that has just closed may still be closing
 * its children's pipes for a few milliseconds, which is neither a leak nor a baseline (bounded:
 * 20 readings, 50 ms apart).
 */
async function settledResourcesOf(pid: number | 'self' = 'self'): Promise<Resources> {
  let last = resourcesOf(pid);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const now = resourcesOf(pid);
    if (now.fds === last.fds && now.threads === last.threads && now.shmEntries === last.shmEntries)
      return now;
    last = now;
  }
  return last;
}

export async function benchSoak(o: SoakOptions): Promise<BenchReport> {
  const startedAt = new Date().toISOString();
  const results: BenchResult[] = [];
  const shape = { m: o.size, n: o.size, k: o.size };
  const plan = planLocalGemm(o.topology, shape);
  // Runs first: what a run leaves in place for good (loaded and optimised code, the allocators'
  // working size) is not growth. The coordinator's resident memory rose for the first ~200 runs
  // and then held (79, 101, 123, 122, 122 MB after 0-400 runs; with 100 warm-up runs, 1,000
  // more still showed +22 MB, all of it before run 200).
  const once = () =>
    withLocalCluster(o.topology, (c) => runGemm(c, plan, { ...shape, seed: 1 }).then(() => undefined));
  const warmUp = Math.min(o.gemmRuns, 200);
  for (let i = 0; i < warmUp; i++) {
    await once();
    o.onProgress?.('warm-up run gemm', i + 1, warmUp);
  }
  const start = await settledResourcesOf();
  for (let i = 0; i < o.gemmRuns; i++) {
    await once();
    o.onProgress?.('run gemm', i + 1, o.gemmRuns);
  }
  results.push(
    ...growth('gemm_runs', start, await settledResourcesOf(), {
      runs: o.gemmRuns,
      size: o.size,
      executors: o.topology.nodes.length,
    }),
  );

  if (o.model) {
    const path = o.model;
    await withLocalCluster(o.topology, async (cluster) => {
      const runner = localRunner(cluster);
      const model = await loadModel(runner, { path, ctx: Math.min(512, 4096) });
      const gen = (n: number, seed: number) =>
        generate(runner, model, {
          prompt: 'Once upon a time',
          maxTokens: n,
          stopAtEog: false,
          sampling: { temperature: 0.8, seed },
        });
      const per = Math.max(1, model.ctx - 32);
      // Every token's bytes, which the tokenizer makes on first use and keeps (as llama.cpp
      // does): at most one entry per vocabulary entry, made now so that it is not counted as
      // growth (over 100,000 random tokens it filled a little more with each generation).
      for (let id = 0; id < model.info.nVocab; id++) model.tokenizer.piece(id, { special: true });
      // Warm-up: the whole KV cache touched, and the heap and the allocators at their working
      // size (a single generation left resident memory still rising for a few thousand tokens).
      for (let i = 0; i < 4; i++) await gen(Math.min(per, o.tokens), 1000 + i);
      const execPids = cluster.executorPids();
      const s = await settledResourcesOf();
      const e0 = await Promise.all(execPids.map((p) => settledResourcesOf(p)));
      let done = 0;
      for (let seed = 1; done < o.tokens; seed++) {
        done += (await gen(Math.min(per, o.tokens - done), seed)).generatedTokens.length;
        o.onProgress?.('tokens', done, o.tokens);
      }
      const details = { tokens: done, model: path, executors: execPids.length };
      results.push(...growth('generate', s, await settledResourcesOf(), details));
      for (const [r, p] of execPids.entries())
        results.push(...growth(`generate_executor${r}`, e0[r]!, await settledResourcesOf(p), details));
    });
  }
  return { benchmark: 'soak', results, machine: machineInfo(), startedAt };
}

export function registerBenchSoak(bench: Command): void {
  bench
    .command('soak')
    .description(
      'many run gemm invocations and a long generation: memory, descriptors, threads, /dev/shm at start and end',
    )
    .option(
      '--gemm-runs <N>',
      'consecutive run gemm invocations',
      (v) => parsePositiveInt(v, '--gemm-runs'),
      1000,
    )
    .option('--size <N>', 'm = n = k of each gemm', (v) => parsePositiveInt(v, '--size'), 256)
    .option('-m, --model <file>', 'a GGUF model to generate with (without: gemm only)')
    .option('--tokens <N>', 'tokens to generate in all', (v) => parsePositiveInt(v, '--tokens'), 100_000)
    .option('--virtual-nodes <N>', 'split the cpus into N pretend NUMA nodes', (v) =>
      parsePositiveInt(v, '--virtual-nodes'),
    )
    .option('--json', 'print the results in the shared bench schema')
    .action(
      async (o: {
        gemmRuns: number;
        size: number;
        model?: string;
        tokens: number;
        virtualNodes?: number;
        json?: boolean;
      }) => {
        const log = (s: string) => process.stderr.write(`bench soak: ${s}\n`);
        let last = 0;
        const report = await benchSoak({
          topology: readTopology({ virtualNodes: o.virtualNodes ?? 2 }),
          gemmRuns: o.gemmRuns,
          size: o.size,
          ...(o.model ? { model: o.model } : {}),
          tokens: o.tokens,
          onProgress: (what, done, total) => {
            if (done === total || Date.now() - last > 5000) {
              last = Date.now();
              log(`${what}: ${done} / ${total}`);
            }
          },
        });
        process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
      },
    );
}
