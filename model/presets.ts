// Shapes of synthetic models (`redblue synth --size`, the demo, the benchmarks).
import { TINY, type SynthOptions } from './synth.js';

export type ModelShape = Omit<SynthOptions, 'arch' | 'types'>;

export const MODEL_PRESETS: Record<string, ModelShape> = {
  tiny: TINY,
  // Small enough for the set-up to write in seconds, wide enough to split over several nodes.
  demo: { nLayer: 4, nEmbd: 512, nHead: 8, nHeadKv: 4, nFf: 1536, nCtx: 2048 },
  // TinyLlama 1.1B's shape (the benchmark model).
  tinyllama: { nLayer: 22, nEmbd: 2048, nHead: 32, nHeadKv: 4, nFf: 5632, nCtx: 2048 },
};
