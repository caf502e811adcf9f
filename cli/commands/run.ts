// `redblue run`: executes work on this box with one executor per (virtual) NUMA node.
import { rowLengthProblem } from '../../native/kernels.js';
import type { Command } from 'commander';
import { Option } from 'commander';
import { readTopology, type MachineTopology } from '../../native/topology.js';
import type { LocalCluster } from '../../executor/host/local-cluster.js';
import { GemmJob, type GemmInputs } from '../../executor/coordinator/gemm-run.js';
import {
  runLayers,
  type LayerDType,
  type LayerRunOptions,
  type LayerRunResult,
  type PlacementMode,
} from '../../executor/coordinator/layer-run.js';
import { planLocalGemm, placementFor } from '../../executor/coordinator/local-plan.js';
import { verificationFailure, verifyGemm } from '../../executor/coordinator/verify.js';
import { writeNpyMatrix } from '../../executor/coordinator/npy.js';
import { DEMO_TOKENS, runDemo } from '../../executor/coordinator/demo.js';
import {
  gemmShape,
  layerShape,
  withLocalCluster,
  withSurvivors,
  type Recovery,
} from '../../executor/coordinator/local-run.js';
import { parsePositiveInt, parseSeed, UsageError } from '../../common/errors.js';
import { parseBytes } from '../../planner/units.js';
import { gemmSummary, layerSummary, print, stripArrays, writeReport } from '../format.js';
import { Progress } from '../progress.js';

/** The flags of a gemm workload, for `run gemm` and `launch gemm`. */
export interface GemmFlags {
  /** Given, or taken from --a / --b (gemmShape). */
  m?: number;
  n?: number;
  k?: number;
  allowNonFinite?: boolean;
  a?: string;
  b?: string;
  out?: string;
  seed: number;
  verify?: boolean;
  report?: string;
  /** Per-executor memory limit (bytes): the plan's sequential steps fit it. */
  memory?: number;
}

interface CommonOpts {
  virtualNodes?: number;
  json?: boolean;
}

const posInt = (flag: string) => (v: string) => parsePositiveInt(v, flag);

/** The executors of this box for one workload, with a progress bar and the Ctrl-C message here. */
function withCluster<T>(topo: MachineTopology, work: (c: LocalCluster) => Promise<T>): Promise<T> {
  const progress = new Progress('starting executors');
  return withLocalCluster(topo, work, {
    onProgress: (done, total) => {
      progress.update(done, total);
      if (done === total) progress.done();
    },
    onInterrupt: () => process.stderr.write('\nredblue: interrupted, stopping the executors\n'),
  });
}

function topologyFor(o: CommonOpts): MachineTopology {
  return readTopology({ virtualNodes: o.virtualNodes });
}

async function layerWork(
  cluster: LocalCluster,
  o: Omit<LayerRunOptions, 'placement' | 'onProgress'> & { placement: string },
): Promise<LayerRunResult> {
  const placement: PlacementMode[] = placementFor(cluster.topology, o);
  const bar = new Progress('placing weights');
  const r = await runLayers(cluster, {
    ...o,
    placement,
    onProgress: (done, total) => bar.update(done, total, 'layers'),
  });
  bar.done();
  return r;
}

export function registerRun(program: Command): void {
  const run = program
    .command('run')
    .description('run work on this machine with one executor per NUMA node (no subcommand: a demo)')
    .option('--virtual-nodes <N>', 'split the cpus into N pretend NUMA nodes', posInt('--virtual-nodes'))
    .option('--json', 'print results as JSON')
    .option(
      '--report <file>',
      "write the gemm's plan as an HTML page with measured times beside the predicted ones",
    )
    .option('-m, --model <file>', 'the demo generates from this GGUF model instead of the demo model')
    .addHelpText(
      'after',
      `
Without a subcommand, runs a demo on the detected topology: ${DEMO_TOKENS} tokens generated from a small
model (random weights and Llama 2's vocabulary, written by the set-up to .cache/demo.gguf), every
layer split across the executors, then a verified 2048³ f32 gemm.

Examples:
  redblue run --virtual-nodes 2
  redblue run gemm --m 4096 --n 4096 --k 4096 --verify
  redblue run gemm --m 300 --n 200 --k 100 --a A.npy --b B.npy --out C.npy
  redblue run layer --n 11008 --k 4096 --dtype q4_0 --layers 24 --iters 20
  redblue generate -m model.gguf -p "Hello" --virtual-nodes 2     # text from your own model`,
    )
    .action(async (o: CommonOpts & { report?: string; model?: string }) => {
      const topo = topologyFor(o);
      const bar = new Progress('loading the demo model');
      const stream = !o.json;
      if (stream)
        process.stdout.write(
          `redblue demo on ${topo.nodes.length} node(s)${topo.virtualNodes ? ' (virtual)' : ''}\n\n`,
        );
      const r = await withCluster(topo, (cluster) =>
        runDemo(cluster, topo, {
          ...(o.model ? { model: o.model } : {}),
          onProgress: (done, total) => {
            bar.update(done, total, 'layers');
            if (done === total) bar.done();
          },
          ...(stream ? { onText: (t: string) => process.stdout.write(t) } : {}),
        }),
      );
      if (o.report)
        writeReport(o.report, r.plan, r.gemm, `redblue run (demo gemm), ${topo.nodes.length} executor(s)`);
      const t = r.generated.timings;
      print(
        o.json,
        {
          nodes: topo.nodes.length,
          generate: {
            model: r.model,
            promptTokens: r.generated.promptTokens,
            generatedTokens: r.generated.generatedTokens,
            text: r.generated.text,
            timings: t,
          },
          gemm: stripArrays(r.gemm),
          verify: r.verify,
        },
        `\n\n${r.model}: ${t.promptTokens} prompt tokens at ${t.promptTokensPerSecond.toFixed(1)} tokens/s, ` +
          `${t.generatedTokens} generated at ${t.generateTokensPerSecond.toFixed(1)} tokens/s, split over ${r.loaded.perRank.length} executor(s)\n` +
          (o.model ? '' : '(random weights: the words are real, the sentence is not)\n') +
          '\n' +
          gemmSummary(r.gemm, r.verify) +
          (topo.nodes.length === 1
            ? '\nThis machine has one NUMA node; `redblue run --virtual-nodes 2` splits its cpus in two to show the split.\n'
            : ''),
      );
      if (!r.verify.ok) throw new Error('the demo gemm did not verify');
    });

  run
    .command('gemm')
    .description('one distributed C = A·B following the planner')
    .option('--m <M>', 'rows of A and C (taken from --a when given)', posInt('--m'))
    .option('--n <N>', 'columns of B and C (taken from --b when given)', posInt('--n'))
    .option('--k <K>', 'columns of A, rows of B (taken from --a or --b when given)', posInt('--k'))
    .addOption(new Option('--dtype <type>', 'element type').choices(['f32']).default('f32'))
    .option('--a <file>', 'A from a .npy file (float32 or float64, m×k)')
    .option('--b <file>', 'B from a .npy file (float32 or float64, k×n)')
    .option(
      '--allow-non-finite',
      'run even if A or B hold NaN or Inf (refused otherwise, saying where); --verify then compares them by position',
    )
    .option('--out <file>', 'write C as a float32 .npy file')
    .option('--seed <S>', 'seed for random A and B', parseSeed, 1)
    .option('--verify', 'compare with one OpenBLAS call in this process and print the largest error')
    .addOption(new Option('--objective <o>', 'planner objective').choices(['time', 'volume']).default('time'))
    .option(
      '--memory <BYTES>',
      'memory limit per executor, e.g. 64MiB: the plan cuts bricks into sequential steps that fit, and the executors run them so',
      (v: string) => parseBytes(v, '--memory'),
    )
    .option('--report <file>', 'write the plan as an HTML page with measured times beside the predicted ones')
    .addOption(
      new Option('--on-failure <what>', 'an executor that dies: compute C again on the others, or abort')
        .choices(['continue', 'abort'])
        .default('continue'),
    )
    .option('--virtual-nodes <N>', 'split the cpus into N pretend NUMA nodes', posInt('--virtual-nodes'))
    .option('--json', 'print results as JSON')
    .action(
      async (
        o: CommonOpts & GemmFlags & { objective: 'time' | 'volume'; onFailure: 'continue' | 'abort' },
        cmd: Command,
      ) => {
        const merged = { ...cmd.parent?.opts<CommonOpts>(), ...stripUndefined(o) };
        const shape = gemmShape(o);
        const topo = topologyFor(merged);
        const p = planLocalGemm(topo, shape, o.objective, o.memory);
        const progress = new Progress('starting executors');
        // A lost executor: the executors left compute the C chunks it left undone.
        const lost: Recovery[] = [];
        const job = new GemmJob(p, gemmInputs(o, shape), o.out);
        let r: Awaited<ReturnType<GemmJob['run']>>;
        try {
          r = await withSurvivors(topo, (c) => job.run(c), {
            onFailure: o.onFailure,
            onLost: (x) => {
              lost.push(x);
              process.stderr.write(
                `redblue: executor rank ${x.lostRank} died (${x.reason}); computing the C chunks not done on ${x.executors} executor(s)\n`,
              );
            },
            hooks: {
              onProgress: (done, total) => {
                progress.update(done, total);
                if (done === total) progress.done();
              },
              onInterrupt: () => process.stderr.write('\nredblue: interrupted, stopping the executors\n'),
            },
          });
        } finally {
          job.close();
        }
        const v = o.verify ? verifyGemm(r) : undefined;
        const report = (merged as { report?: string }).report;
        if (report) writeReport(report, p, r, `redblue run gemm, ${topo.nodes.length} executor(s)`);
        print(
          merged.json,
          {
            ...stripArrays(r),
            plan: p.strategy.description,
            ...(v ? { verify: v } : {}),
            ...(lost.length ? { recoveries: lost } : {}),
          },
          gemmSummary(r, v) +
            lost
              .map(
                (x) =>
                  `lost: executor rank ${x.lostRank} (cpus ${x.lostCpus.join(',')}) at ${x.at}: ${x.reason}; went on with ${x.executors} executor(s), ${x.seconds.toFixed(2)} s to restart\n`,
              )
              .join('') +
            (r.chunks
              ? `C chunks computed again: ${r.chunks.recomputed} of ${r.chunks.planned} (the rest were done before the loss and kept)\n`
              : ''),
        );
        if (v && !v.ok) throw new Error(verificationFailure(v));
      },
    );

  run
    .command('layer')
    .description('weight-stationary stack of Y = X·Wᵀ passes (LLM token generation / prompt pattern)')
    .option('--n <N>', 'rows of each W (outputs)', posInt('--n'))
    .option('--k <K>', 'columns of each W (inputs; a multiple of 32 for q4_0/q8_0)', posInt('--k'))
    .option('--weights <file>', 'weights from a .npy file: layers×n×k (or n×k for one layer), float32/64')
    .option('--allow-non-finite', 'run even if the weights hold NaN or Inf (refused otherwise, saying where)')
    .option('--m <M>', 'rows of X: 1 = token generation, 512 = prompt', posInt('--m'), 1)
    .addOption(new Option('--dtype <type>', 'weight type').choices(['q4_0', 'q8_0', 'f32']).default('q4_0'))
    .addOption(
      new Option('--placement <p>', 'weights per node').choices(['auto', 'mirror', 'shard']).default('auto'),
    )
    .option('--layers <L>', 'matrices in the stack', posInt('--layers'), 4)
    .option('--iters <N>', 'passes through the stack', posInt('--iters'), 10)
    .option(
      '--repeats <R>',
      'runs of --iters passes on the placed weights; the fastest is reported (the first run warms caches and connections)',
      posInt('--repeats'),
      1,
    )
    .option('--seed <S>', 'seed for weights and inputs', parseSeed, 1)
    .option('--out <file>', 'write Y of the last pass, (layers·m)×n float32, as .npy')
    .option('--virtual-nodes <N>', 'split the cpus into N pretend NUMA nodes', posInt('--virtual-nodes'))
    .option('--json', 'print results as JSON')
    .action(
      async (
        o: CommonOpts & {
          n?: number;
          k?: number;
          weights?: string;
          m: number;
          dtype: LayerDType;
          placement: string;
          layers: number;
          iters: number;
          repeats: number;
          seed: number;
          allowNonFinite?: boolean;
          out?: string;
        },
        cmd: Command,
      ) => {
        const merged = { ...cmd.parent?.opts<CommonOpts>(), ...stripUndefined(o) };
        const shape = layerShape(o);
        const problem = rowLengthProblem(o.dtype, shape.k);
        if (problem) throw new UsageError(`--k ${shape.k} must be ${problem}`);
        const { weights: _file, allowNonFinite: _allow, out, ...rest } = o;
        const work = { ...rest, ...shape, collect: !!out };
        const topo = topologyFor(merged);
        const r = await withCluster(topo, (c) => layerWork(c, work));
        if (out && r.y) writeNpyMatrix(out, work.layers * work.m, work.n, r.y);
        print(merged.json, stripArrays(r), layerSummary(work, r));
      },
    );
}

/** What a gemm run takes (`run gemm` and `launch gemm`), from the flags and the resolved shape. */
export function gemmInputs(o: GemmFlags, shape: { m: number; n: number; k: number }): GemmInputs {
  return {
    ...shape,
    seed: o.seed,
    ...(o.a ? { a: o.a } : {}),
    ...(o.b ? { b: o.b } : {}),
    ...(o.allowNonFinite ? { allowNonFinite: true } : {}),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
