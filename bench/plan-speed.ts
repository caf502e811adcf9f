// `redblue bench plan`: how long planning takes at scale (the issue asks < 1 s for 16,384 ranks).
// Reference, measured in the same run: the flat COSMA planner (its grid choice, native layout and
// the same exact evaluation), i.e. what the search costs on top of planning one fixed strategy.
import type { Command } from 'commander';
import { cosmaCandidate } from '../planner/baselines/index.js';
import { ranksCluster } from '../planner/cluster.js';
import { contextFor } from '../planner/context.js';
import { plan } from '../planner/index.js';
import { evaluateCandidate } from '../planner/select.js';
import type { Problem } from '../planner/types.js';
import { parsePositiveInt } from '../common/errors.js';
import { machineInfo, renderReport, result, type BenchReport, type BenchResult } from './report.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median wall time (ms) after a warm-up run, and the median process CPU time (all threads, so GC
 * helpers count too) as a hint when the machine is shared. */
function measure(repeat: number, fn: () => void): { wall: number; cpu: number } {
  fn(); // warm-up: JIT
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t = performance.now();
    const u = process.cpuUsage();
    fn();
    const d = process.cpuUsage(u);
    wall.push(performance.now() - t);
    cpu.push((d.user + d.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

function timeIt(repeat: number, fn: () => void): number {
  return measure(repeat, fn).wall;
}

export function planSpeed(ranksList: number[], size: number, repeat: number): BenchResult[] {
  const out: BenchResult[] = [];
  const problem: Problem = { m: size, n: size, k: size, dtype: 'f32' };
  for (const P of ranksList) {
    const cluster = ranksCluster(P);
    const cosmaMs = timeIt(repeat, () => {
      const ctx = contextFor(problem, cluster, cluster.hosts[0]!.nodes[0]!.memoryBytes);
      const box = { m: [0, size], n: [0, size], k: [0, size] } as const;
      const s = {
        m: size,
        n: size,
        k: size,
        gran: 1,
        bytesIn: 4,
        objective: 'volume' as const,
        flops: cluster.hosts[0]!.nodes[0]!.flops,
        link: cluster.links.network,
      };
      const ranks = Array.from({ length: P }, (_, i) => i);
      evaluateCandidate(ctx, cosmaCandidate({ m: [...box.m], n: [...box.n], k: [...box.k] }, ranks, s));
    });
    for (const baselines of [false, true]) {
      const { wall: ms, cpu } = measure(repeat, () =>
        plan(problem, cluster, { objective: 'volume', baselines }),
      );
      out.push(
        result({
          case: `plan_p${P}_cube${size}${baselines ? '_with_baselines' : ''}`,
          metric: 'planning time',
          value: ms,
          unit: 'ms',
          reference: 'cosma-planner',
          referenceValue: cosmaMs,
          direction: 'lower-is-better',
          details: {
            ranks: P,
            m: size,
            n: size,
            k: size,
            baselines,
            repeat,
            cpuMs: cpu,
            underOneSecond: ms < 1000,
          },
        }),
      );
    }
  }
  return out;
}

export function registerBenchPlan(bench: Command): void {
  bench
    .command('plan')
    .description('planning time at scale (16,384 ranks), against planning flat COSMA in the same run')
    .option('--ranks <list>', 'comma-separated rank counts', '16384,9217,65')
    .option('--size <N>', 'm = n = k', '16384')
    .option('--repeat <R>', 'timed runs per case (median reported)', '5')
    .option('--json', 'print the report as JSON')
    .action((o: { ranks: string; size: string; repeat: string; json?: boolean }) => {
      const ranks = o.ranks.split(',').map((v) => parsePositiveInt(v, '--ranks'));
      const report: BenchReport = {
        benchmark: 'plan',
        results: planSpeed(ranks, parsePositiveInt(o.size, '--size'), parsePositiveInt(o.repeat, '--repeat')),
        machine: machineInfo(),
        startedAt: new Date().toISOString(),
      };
      process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
    });
}
