// `redblue run` without a subcommand: what a newcomer should see on a fresh machine. Text is
// generated from a small model (the set-up writes it: random weights, Llama 2's vocabulary, so
// the words are real and the sentence is not) with every layer split across the executors,
// then a 2048³ gemm is verified against OpenBLAS on the same executors.
import type { MachineTopology } from '../../native/topology.js';
import { ensureDemoModel } from '../../model/presets.js';
import type { LocalCluster } from '../host/local-cluster.js';
import { generate, loadModel, type GenerateResult, type LoadedModel } from './generate.js';
import { runGemm, type GemmRunResult } from './gemm-run.js';
import { planLocalGemm } from './local-plan.js';
import { verifyGemm, type GemmVerification } from './verify.js';
import type { Plan } from '../../planner/types.js';

export const DEMO_PROMPT = 'Once upon a time';
export const DEMO_TOKENS = 32;
const GEMM = 2048;

export interface DemoOptions {
  /** A GGUF model instead of the demo model. */
  model?: string;
  onProgress?: (done: number, total: number) => void;
  onText?: (text: string) => void;
}

export interface DemoResult {
  model: string;
  loaded: LoadedModel;
  generated: GenerateResult;
  plan: Plan;
  gemm: GemmRunResult;
  verify: GemmVerification;
}

export async function runDemo(
  cluster: LocalCluster,
  topo: MachineTopology,
  o: DemoOptions = {},
): Promise<DemoResult> {
  const model = o.model ?? ensureDemoModel();
  const loaded = await loadModel(cluster, {
    path: model,
    ctx: 256,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  o.onText?.(DEMO_PROMPT);
  const generated = await generate(cluster, loaded, {
    prompt: DEMO_PROMPT,
    maxTokens: DEMO_TOKENS,
    sampling: { temperature: 0, seed: 1 },
    ...(o.onText ? { onText: o.onText } : {}),
  });
  const plan = planLocalGemm(topo, { m: GEMM, n: GEMM, k: GEMM });
  const gemm = await runGemm(cluster, plan, { m: GEMM, n: GEMM, k: GEMM, seed: 1 });
  return { model, loaded, generated, plan, gemm, verify: verifyGemm(gemm) };
}
