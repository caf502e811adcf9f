// The native thread pool's hand-off (native/src/core/thread_pool.cc: an atomic generation and
// countdown, the mutex only for sleepers) under ThreadSanitizer: scripts/stress-pool.sh builds
// native/stress/thread_pool_stress.cc with -fsanitize=thread and runs a random mix of jobs from
// outside the pool, jobs published by worker 0 inside steps, pauses that put the workers to sleep,
// and tasks that throw. Any race report, task run twice or never, lost exception or hang fails.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

describe('thread pool under ThreadSanitizer', () => {
  it('every task once, every exception back, no race report, on a pool with a shared cpu and one without', () => {
    const seed = '20261205';
    const r = spawnSync('bash', ['scripts/stress-pool.sh', '1', seed], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.stderr).not.toMatch(/ThreadSanitizer/);
    expect(r.status, `seed ${seed}\n${r.stderr}`).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const [i, workers] of [3, 2].entries()) {
      const m = new RegExp(
        `^pool ${i} \\(${workers} workers\\): (\\d+) jobs, (\\d+) failing tasks, (\\d+) exceptions caught, 0 wrong$`,
      ).exec(lines[i]!);
      expect(m, lines[i]).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(500);
      expect(Number(m![2])).toBeGreaterThan(0);
      expect(m![3]).toBe(m![2]);
    }
  }, 150_000);
});
