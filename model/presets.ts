// Shapes of synthetic models (`redblue synth --size`, the demo, the benchmarks).
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TINY, writeSyntheticModel, type SynthOptions } from './synth.js';

export type ModelShape = Omit<SynthOptions, 'arch' | 'types'>;

export const MODEL_PRESETS: Record<string, ModelShape> = {
  tiny: TINY,
  // Small enough for the set-up to write in seconds, wide enough to split over several nodes.
  demo: { nLayer: 4, nEmbd: 512, nHead: 8, nHeadKv: 4, nFf: 1536, nCtx: 2048 },
  // TinyLlama 1.1B's shape (the benchmark model).
  tinyllama: { nLayer: 22, nEmbd: 2048, nHead: 32, nHeadKv: 4, nFf: 5632, nCtx: 2048 },
  // Qwen2.5-0.5B's shape (use with --arch qwen2): rows of 896, so a Q4_K_M file falls back to
  // q5_0 / q8_0 as llama.cpp's does; embeddings tied to the output.
  'qwen2.5-0.5b': { nLayer: 24, nEmbd: 896, nHead: 14, nHeadKv: 2, nFf: 4864, nCtx: 32768, tied: true },
};

/** The demo model's options: `redblue synth`'s defaults, so the set-up and `run` write the same file. */
export const DEMO_MODEL: SynthOptions = {
  ...MODEL_PRESETS.demo!,
  arch: 'llama',
  types: { default: 'q4_0' },
  seed: 1,
};

// The checkout (or installed package): model/presets.ts from sources, dist/model/presets.js built.
const PACKAGE_ROOT = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url),
);

/** Where `redblue run` finds the demo model (the set-up writes it there). */
export const DEMO_MODEL_PATH = join(PACKAGE_ROOT, '.cache', 'demo.gguf');

/** The demo model's path, written first if it is not there (a few seconds). */
export function ensureDemoModel(path = DEMO_MODEL_PATH): string {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    // Written beside, then renamed: an interrupted write never leaves a half file to load.
    const tmp = `${path}.${process.pid}.tmp`;
    writeSyntheticModel(tmp, DEMO_MODEL);
    renameSync(tmp, path);
  }
  return path;
}
