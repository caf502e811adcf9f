// `redblue bench collectives --quick` end to end: real ranks, the real Open MPI reference built
// with mpicc, and the report schema shared by every benchmark.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { machineInfo, renderReport, result, type BenchReport } from '../../bench/report.js';
import { listSegments } from '../../transport/shm.js';
import { ensureBuilt, root } from './harness.js';

beforeAll(() => ensureBuilt());

describe('redblue bench collectives', () => {
  it('--quick --ranks 2 --json reports every case against Open MPI and memcpy', () => {
    const run = spawnSync(
      process.execPath,
      [join(root, 'dist', 'cli', 'main.js'), 'bench', 'collectives', '--quick', '--ranks', '2', '--json'],
      { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout) as BenchReport;
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
    // Only this run's segments (named after the bench process): other runs may share the box.
    expect(listSegments().filter((p) => p.includes(`redblue-shm-bench-${run.pid}-`))).toEqual([]);
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

  it("the report's text shows a reference that was not measured as such, with no ratio", () => {
    const text = renderReport({
      benchmark: 'model',
      machine: machineInfo(),
      startedAt: new Date().toISOString(),
      results: [
        result({
          case: 'pp8',
          metric: 'prompt processing',
          value: 50,
          unit: 'tokens/s',
          reference: 'llama.cpp_2_threads',
          referenceValue: 0,
        }),
        result({
          case: 'tg4',
          metric: 'token generation',
          value: 30,
          unit: 'tokens/s',
          reference: 'llama.cpp_2_threads',
          referenceValue: 20,
        }),
      ],
    });
    expect(text).toMatch(/pp8 +prompt processing +50\.00 tokens\/s +llama\.cpp_2_threads not measured +-\n/);
    expect(text).toMatch(
      /tg4 +token generation +30\.00 tokens\/s +llama\.cpp_2_threads 20\.00 tokens\/s +1\.50×\n/,
    );
  });
});
