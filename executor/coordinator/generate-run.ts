// `redblue generate` end to end on this machine: start one executor per (virtual) NUMA node,
// load the model's split, generate, and stop everything (also on Ctrl-C).
import type { MachineTopology } from '../../native/topology.js';
import { readGguf } from '../../model/gguf/read.js';
import { describeModel, type ModelInfo } from '../../model/arch.js';
import { planModelSplit, type ModelSplit } from '../../planner/model-split.js';
import { withLocalCluster, type LocalRunHooks } from './local-run.js';
import {
  encodePrompt,
  generate,
  loadModel,
  type GenerateOptions,
  type GenerateResult,
  type LoadedModel,
} from './generate.js';

export interface GenerateRunOptions extends GenerateOptions {
  model: string;
  topology: MachineTopology;
  ctx?: number;
  onProgress?: (done: number, total: number) => void;
  /** Called once the weights are in place, before the prompt is processed. */
  onLoaded?: (model: LoadedModel) => void;
  /** Starting the executors, and Ctrl-C. */
  hooks?: LocalRunHooks;
}

export interface GenerateRun {
  model: LoadedModel;
  result: GenerateResult;
}

/** The split `generate` would use on this topology, without starting anything. */
export function planGenerate(o: { model: string; topology: MachineTopology; ctx?: number }): {
  info: ModelInfo;
  split: ModelSplit;
} {
  const info = describeModel(readGguf(o.model));
  const ctx = o.ctx ?? Math.min(info.nCtxTrain, 4096);
  return {
    info,
    split: planModelSplit(
      info,
      o.topology.nodes.map(() => ({ rate: 1 })),
      { context: ctx },
    ),
  };
}

export async function runGenerate(o: GenerateRunOptions): Promise<GenerateRun> {
  return withLocalCluster(
    o.topology,
    async (cluster) => {
      const model = await loadModel(cluster, {
        path: o.model,
        ...(o.ctx ? { ctx: o.ctx } : {}),
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      });
      // A prompt that cannot run fails before anything is printed.
      encodePrompt(model, o);
      o.onLoaded?.(model);
      const result = await generate(cluster, model, o);
      return { model, result };
    },
    o.hooks,
  );
}
