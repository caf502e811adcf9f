// `redblue generate` end to end on this machine: start one executor per (virtual) NUMA node,
// load the model's split, generate, and stop everything (also on Ctrl-C).
import type { MachineTopology } from '../../native/topology.js';
import { createThreadPool } from '../../native/binding.js';
import { measureReadBandwidth } from '../../native/read-speed.js';
import { readGguf } from '../../model/gguf/read.js';
import { describeModel, type ModelInfo } from '../../model/arch.js';
import type { ModelSplit } from '../../planner/model-split.js';
import { withLocalCluster, type LocalRunHooks } from './local-run.js';
import {
  encodePrompt,
  generate,
  loadModel,
  type GenerateOptions,
  type GenerateResult,
  type LoadedModel,
  planGenerateOn,
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
}

export interface GenerateRun {
  model: LoadedModel;
  result: GenerateResult;
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

export async function runGenerate(o: GenerateRunOptions): Promise<GenerateRun> {
  return withLocalCluster(o.topology, (cluster) => loadAndGenerate(cluster, o), o.hooks);
}
