// The one result schema every redblue benchmark prints (`--json`), and its text rendering.
// `ratio` is always "how many times better than the reference": value / reference for rates,
// reference / value for times.
import { cpus, hostname, totalmem } from 'node:os';

export type Direction = 'higher-is-better' | 'lower-is-better';

export interface BenchResult {
  /** Stable case name, e.g. "gemm_f32_2048_t1" (listed in the README). */
  case: string;
  /** What was measured, e.g. "GFLOP/s", "latency", "bandwidth". */
  metric: string;
  value: number;
  unit: string;
  /** What it is compared with, measured in the same run, e.g. "openblas", "stream-read". */
  reference: string;
  referenceValue: number;
  ratio: number;
  /** Optional free-form notes (thread count, sizes). */
  details?: Record<string, unknown>;
}

export interface BenchReport {
  benchmark: string;
  results: BenchResult[];
  machine: { hostname: string; cpuModel: string; cpus: number; memoryBytes: number; node: string };
  startedAt: string;
}

export function result(r: Omit<BenchResult, 'ratio'> & { direction?: Direction }): BenchResult {
  const { direction = 'higher-is-better', ...rest } = r;
  const ratio = direction === 'higher-is-better' ? r.value / r.referenceValue : r.referenceValue / r.value;
  return { ...rest, ratio: Number.isFinite(ratio) ? ratio : 0 };
}

export function machineInfo(): BenchReport['machine'] {
  const c = cpus();
  return {
    hostname: hostname(),
    cpuModel: c[0]?.model ?? 'unknown',
    cpus: c.length,
    memoryBytes: totalmem(),
    node: process.version,
  };
}

export function renderReport(report: BenchReport): string {
  const fmt = (v: number) =>
    Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
  // A reference of 0 was not measured (e.g. `bench model --no-reference`): no ratio to show.
  const rows = report.results.map((r) => [
    r.case,
    r.metric,
    `${fmt(r.value)} ${r.unit}`,
    r.referenceValue === 0
      ? `${r.reference} not measured`
      : `${r.reference} ${fmt(r.referenceValue)} ${r.unit}`,
    r.referenceValue === 0 ? '-' : `${r.ratio.toFixed(2)}×`,
  ]);
  const header = ['case', 'metric', 'value', 'reference', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return (
    [
      `${report.benchmark} on ${report.machine.hostname} (${report.machine.cpus} cpus, ${report.machine.cpuModel})`,
      line(header),
      ...rows.map(line),
    ].join('\n') + '\n'
  );
}
