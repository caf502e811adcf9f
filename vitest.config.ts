import { configDefaults, defineConfig } from 'vitest/config';

// Files that neither call the addon in their own process nor start processes, browsers or
// llama.cpp: pure TypeScript (the planner, the GGUF reader, sampling, drafting). They share one
// process without isolation, which skips a fork and its imports per file: 28 s → 19 s for these
// 13 files here, of a suite that must stay under 10 minutes.
const PURE = [
  'test/foundation/layers.test.ts',
  'test/fuzz/gguf.test.ts',
  'test/fuzz/topology.test.ts',
  'test/model/arch.test.ts',
  'test/model/gguf.test.ts',
  'test/model/json-constraint.test.ts',
  'test/model/lookup.test.ts',
  'test/model/sampling.test.ts',
  'test/planner/baselines.test.ts',
  'test/planner/limits.test.ts',
  'test/planner/model-memory.test.ts',
  'test/planner/model-split.test.ts',
  'test/planner/properties.test.ts',
  'test/viz/render.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native tests bind the process to cpus and reserve memory: run files in separate forks.
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    setupFiles: ['./test/helpers/keep-llama.ts'],
    projects: [
      { extends: true, test: { name: 'pure', include: PURE, isolate: false } },
      {
        extends: true,
        test: {
          name: 'native',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...PURE],
        },
      },
    ],
  },
});
