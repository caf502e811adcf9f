// `redblue bench kernels --quick --json` end to end through the built CLI: the report schema
// and the stable case names.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rows8Runs } from '../../native/kernels.js';

const cli = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function run(args: string[]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  return spawnSync(process.execPath, [cli, 'bench', 'kernels', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('redblue bench kernels', () => {
  it('--quick --json prints every case in the shared schema', () => {
    const r = run(['--quick', '--json', '--threads', '1']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      benchmark: string;
      results: Record<string, unknown>[];
      machine: Record<string, unknown>;
    };
    expect(report.benchmark).toBe('kernels');
    expect(typeof report.machine.cpus).toBe('number');
    const names = report.results.map((x) => x.case);
    expect(names).toEqual([
      'gemm_f32_64_t1',
      'gemm_f32_128_t1',
      'gemm_f32_m16_n256_k256_t1',
      'gemv_q4_0_256x256_t1',
      'gemv_q8_0_256x256_t1',
      'gemm_q4_0_m32_n256_k256_t1',
      'gemm_q8_0_m32_n256_k256_t1',
    ]);
    for (const x of report.results) {
      for (const key of ['case', 'metric', 'unit', 'reference']) expect(typeof x[key]).toBe('string');
      for (const key of ['value', 'referenceValue', 'ratio']) {
        expect(typeof x[key]).toBe('number');
        expect(x[key] as number).toBeGreaterThan(0);
      }
      expect(x.ratio as number).toBeCloseTo((x.value as number) / (x.referenceValue as number), 6);
    }
    expect(r.stderr).toMatch(/\[bench kernels\] gemm_f32_64_t1/); // progress goes to stderr
  });

  it('--gemv-only --gemv-types measures the GEMV of the given types only', () => {
    const r = run(['--quick', '--json', '--threads', '1', '--gemv-only', '--gemv-types', 'q4_k,q6_k,f32']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { results: { case: string; value: number; unit: string }[] };
    expect(report.results.map((x) => x.case)).toEqual([
      'gemv_q4_k_256x256_t1',
      'gemv_q6_k_256x256_t1',
      'gemv_f32_256x256_t1',
    ]);
    for (const x of report.results) expect([x.unit, x.value > 0]).toEqual(['GB/s', true]);
    // Measured on the layout and pages generate's weights get: rows8 for the K types here.
    const details = (report.results as unknown as { details: { layout: string; pages: string } }[]).map(
      (x) => x.details,
    );
    expect(details.map((d) => d.layout)).toEqual([
      rows8Runs('q4_k') ? 'rows8' : 'natural',
      rows8Runs('q6_k') ? 'rows8' : 'natural',
      'natural',
    ]);
    for (const d of details) expect(['hugetlb', 'thp', 'normal']).toContain(d.pages);
  });

  it('rejects an unknown --gemv-types entry with a usage error', () => {
    const r = run(['--quick', '--gemv-types', 'q4_k,iq2_xxs']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown weight type 'iq2_xxs'/);
  });

  it('rejects a bad --threads value with a usage error', () => {
    const r = run(['--quick', '--threads', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--threads takes thread counts/);
  });
});
