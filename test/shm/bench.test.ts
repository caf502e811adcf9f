// `redblue bench collectives --quick` end to end: real ranks, the real Open MPI reference built
// with mpicc, and the report schema shared by every benchmark.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../bench/report.js';
import { listSegments } from '../../transport/shm.js';
import { ensureBuilt, root } from './harness.js';

beforeAll(() => ensureBuilt());

describe('redblue bench collectives', () => {
  it('--quick --ranks 2 --json reports every case against Open MPI and memcpy', () => {
    const before = listSegments();
    const out = execFileSync(
      process.execPath,
      [join(root, 'dist', 'cli', 'main.js'), 'bench', 'collectives', '--quick', '--ranks', '2', '--json'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const report = JSON.parse(out) as BenchReport;
    expect(report.benchmark).toBe('collectives');
    const cases = report.results.map((r) => r.case);
    for (const op of ['allreduce', 'allgather']) {
      for (const size of ['4KiB', '16KiB', '64KiB']) expect(cases).toContain(`${op}_f32_${size}_r2`);
      for (const size of ['1MiB', '16MiB']) {
        expect(cases).toContain(`${op}_f32_${size}_r2`);
        expect(cases).toContain(`${op}_f32_${size}_r2_vs_memcpy`);
      }
    }
    expect(cases).toContain('allreduce_f32_16MiB_r2_slot_vs_memcpy');
    expect(cases).toContain('allreduce_f32_16KiB_r2_js');
    for (const r of report.results) {
      expect(['openmpi', 'memcpy']).toContain(r.reference);
      expect(r.value).toBeGreaterThan(0);
      expect(r.referenceValue).toBeGreaterThan(0);
      expect(Number.isFinite(r.ratio) && r.ratio > 0).toBe(true);
      expect(r.unit).toBe(r.metric === 'latency' ? 'µs' : 'GB/s');
    }
    expect(listSegments()).toEqual(before);
  });

  it('rejects a rank count below 2 with a usage error', () => {
    let status = 0;
    let stderr = '';
    try {
      execFileSync(
        process.execPath,
        [join(root, 'dist', 'cli', 'main.js'), 'bench', 'collectives', '--ranks', '1'],
        {
          encoding: 'utf8',
          stdio: 'pipe',
        },
      );
    } catch (err) {
      status = (err as { status: number }).status;
      stderr = String((err as { stderr: string }).stderr);
    }
    expect(status).toBe(2);
    expect(stderr).toMatch(/--ranks must be between 2 and 64/);
  });
});
