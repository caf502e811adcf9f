import { configDefaults, defineConfig } from 'vitest/config';

// Files that neither bind their process to cpus, start thread pools or reserve node memory, nor
// start processes, browsers or llama.cpp: the planner, the GGUF reader, sampling, drafting,
// parsers (some call the addon's kernels, which leave no state behind). They share one process
// without isolation, which skips a fork and its imports per file: 32 s → 28 s for these 24 files
// here (13 of them: 28 s → 19 s), of a suite that must stay under 10 minutes.
const PURE = [
  'test/executor/gemm-layout.test.ts',
  'test/executor/npy.test.ts',
  'test/foundation/layers.test.ts',
  'test/foundation/rdma.test.ts',
  'test/fuzz/cli-flags.test.ts',
  'test/fuzz/gguf.test.ts',
  'test/fuzz/npy.test.ts',
  'test/fuzz/server-requests.test.ts',
  'test/fuzz/topology.test.ts',
  'test/hosts/parse.test.ts',
  'test/model/arch.test.ts',
  'test/model/gguf.test.ts',
  'test/model/json-constraint.test.ts',
  'test/model/lookup.test.ts',
  'test/model/regex.test.ts',
  'test/model/sampling.test.ts',
  'test/model/tool-calls.test.ts',
  'test/planner/baselines.test.ts',
  'test/planner/limits.test.ts',
  'test/planner/model-memory.test.ts',
  'test/planner/model-split.test.ts',
  'test/planner/properties.test.ts',
  'test/server/stop-strings.test.ts',
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
