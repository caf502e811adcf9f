// `redblue generate` end to end on this machine: start one executor per (virtual) NUMA node,
// load the model's split, generate, and stop everything (also on Ctrl-C).
import type { MachineTopology, TopologyNode } from '../../native/topology.js';
import { formatBytes } from '../../common/format.js';
import { createThreadPool } from '../../native/binding.js';
import { measureReadBandwidth } from '../../native/read-speed.js';
import { readGguf } from '../../model/gguf/read.js';
import { describeModel, type ModelInfo } from '../../model/arch.js';
import type { ModelSplit } from '../../planner/model-split.js';
import { withSurvivors, type LocalRunHooks, type Recovery } from './local-run.js';
import {
  encodePrompt,
  generate,
  Sequence,
  loadModel,
  type GenerateOptions,
  type GenerateResult,
  type LoadedModel,
  planGenerateOn,
  readModelFile,
  type ModelFile,
  type ModelRunner,
} from './generate.js';
import type { LocalCluster } from '../host/local-cluster.js';

/** What loading and generating need, whichever executors run the model. */
export interface ModelRunOptions extends GenerateOptions {
  model: string;
  /** The model's header and tokenizer when already read (see ModelFile). */
  file?: ModelFile;
  ctx?: number;
  onProgress?: (done: number, total: number) => void;
  /** Called once the weights are in place, before the prompt is processed. */
  onLoaded?: (model: LoadedModel) => void;
}

export interface GenerateRunOptions extends ModelRunOptions {
  topology: MachineTopology;
  /** Starting the executors, and Ctrl-C. */
  hooks?: LocalRunHooks;
  /**
   * An executor that dies: 'continue' (the default) re-plans the split on the nodes left, loads
   * it, rebuilds the KV cache from the prompt and the tokens chosen so far and goes on; 'abort'
   * fails the run.
   */
  onFailure?: 'continue' | 'abort';
  /** Called when an executor is lost and the run is about to go on without it (seconds still 0). */
  onRecovery?: (r: GenerateRecovery) => void;
}

/** An executor lost during a generation, and the run taken up again on the rest. */
export interface GenerateRecovery extends Recovery {
  /** Tokens generated when it was lost (0: while loading or processing the prompt). */
  afterTokens: number;
}

export interface GenerateRun {
  model: LoadedModel;
  result: GenerateResult;
  /** Executors lost on the way (only with onFailure 'continue'). */
  recoveries?: GenerateRecovery[];
}

/**
 * The split `generate` would use on this topology, without starting executors: each node's read
 * bandwidth is measured here, node by node, with a pool pinned to its cpus (an executor measures
 * the same at its start).
 */
export function planGenerate(o: { model: string; topology: MachineTopology; ctx?: number }): {
  info: ModelInfo;
  split: ModelSplit;
} {
  const info = describeModel(readGguf(o.model));
  const speeds = o.topology.nodes.map((node) => {
    const pool = createThreadPool(node.cpus);
    try {
      return measureReadBandwidth(pool, node.physicalNode);
    } finally {
      pool.close();
    }
  });
  return planGenerateOn({ info, ranks: o.topology.nodes.length, speeds, ...(o.ctx ? { ctx: o.ctx } : {}) });
}

/** Loads the model's split on the executors, then generates: one host or several alike. */
export async function loadAndGenerate(
  cluster: LocalCluster | ModelRunner,
  o: ModelRunOptions,
): Promise<GenerateRun> {
  const model = await loadModel(cluster, {
    path: o.model,
    ...(o.file ? { file: o.file } : {}),
    ...(o.ctx ? { ctx: o.ctx } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  // A prompt that cannot run fails before anything is printed.
  encodePrompt(model, o);
  o.onLoaded?.(model);
  const result = await generate(cluster, model, o);
  return { model, result };
}

/**
 * Why the nodes left cannot hold a split (each rank's weights and KV cache against its node's
 * memory), naming the first that falls short and by how much; undefined when they all can.
 */
export function shortfall(split: ModelSplit, nodes: readonly TopologyNode[]): string | undefined {
  for (const [i, r] of split.ranks.entries()) {
    const need = r.weightBytes + r.kvCacheBytes;
    const have = nodes[i]?.memoryBytes ?? 0;
    if (need > have)
      return `the ${nodes.length} executor(s) left cannot hold the model: rank ${i} needs ${formatBytes(need)} (weights ${formatBytes(r.weightBytes)}, KV cache ${formatBytes(r.kvCacheBytes)}) but node ${nodes[i]?.id ?? i} has ${formatBytes(have)}: ${formatBytes(need - have)} missing`;
  }
  return undefined;
}

/**
 * `generate` on this machine's executors. An executor that dies (its process, or its node taken
 * away) does not end the run unless onFailure is 'abort': the split is planned again on the nodes
 * left, the survivors load it from the file, the sequence's prompt and chosen tokens are processed
 * again, and generation goes on where it was (greedy: the same tokens as a run that never failed).
 */
export async function runGenerate(o: GenerateRunOptions): Promise<GenerateRun> {
  let seq: Sequence | undefined;
  const lost: GenerateRecovery[] = [];
  return withSurvivors(
    o.topology,
    async (cluster, recoveries) => {
      const t0 = performance.now();
      const model = await loadModel(cluster, {
        path: o.model,
        ...(o.file ? { file: o.file } : {}),
        ...(o.ctx ? { ctx: o.ctx } : {}),
        ...(o.onProgress && !seq ? { onProgress: o.onProgress } : {}),
      });
      // Recovery takes until the survivors hold the model again.
      if (recoveries.length)
        lost.at(-1)!.seconds = recoveries.at(-1)!.seconds + (performance.now() - t0) / 1e3;
      if (!seq) {
        encodePrompt(model, o); // a prompt that cannot run fails before anything is printed
        o.onLoaded?.(model);
        seq = new Sequence(model, o);
      }
      const result = await generate(cluster, model, o, seq);
      return { model, result, ...(lost.length ? { recoveries: lost } : {}) };
    },
    {
      ...(o.hooks ? { hooks: o.hooks } : {}),
      ...(o.onFailure ? { onFailure: o.onFailure } : {}),
      check: (left, e) => {
        const info = (o.file ?? readModelFile(o.model)).info;
        const split = planGenerateOn({ info, ranks: left.length, ...(o.ctx ? { ctx: o.ctx } : {}) }).split;
        const short = shortfall(split, left);
        if (short) throw new Error(`${e.message}, and ${short}`, { cause: e });
      },
      onLost: (r) => {
        lost.push({ ...r, afterTokens: seq?.generated.length ?? 0 });
        o.onRecovery?.(lost.at(-1)!);
      },
    },
  );
}
