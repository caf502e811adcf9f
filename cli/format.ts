// Text output helpers shared by the commands.
/** The project's byte formatter (planner/format.ts), so plan and run output agree. */
import { formatBytes, table } from '../common/format.js';
import type { GemmRunResult } from '../executor/coordinator/gemm-run.js';
import type { LayerRunResult } from '../executor/coordinator/layer-run.js';
import type { GemmVerification } from '../executor/coordinator/verify.js';
import { writePlanHtml } from '../planner/html/index.js';
import type { Plan } from '../planner/types.js';

export { formatBytes, table };

/** `text` broken at spaces into lines of at most `width` characters (help texts). */
export function wrapText(text: string, width = 96): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}

export function print(json: boolean | undefined, value: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text);
}

/** Results without their (large) arrays, for JSON output. */
export function stripArrays<T extends object>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => !ArrayBuffer.isView(v)));
}

/** The plan page with each rank's measured compute, exchange and total beside the prediction. */
export function writeReport(file: string, plan: Plan, r: GemmRunResult, label: string): void {
  writePlanHtml(plan, file, {
    measured: {
      label,
      ranks: r.perRank.map((p) => ({
        rank: p.rank,
        compute: p.computeSeconds,
        exchange: p.exchangeSeconds,
        total: p.totalSeconds,
        ...(p.steps !== undefined
          ? {
              executed: {
                steps: p.steps,
                blocksFetched: p.blocksFetched ?? 0,
                bytesFetched: p.bytesFetched ?? 0,
                localPeakBytes: p.localPeakBytes ?? 0,
              },
            }
          : {}),
      })),
    },
  });
}

export function gemmSummary(r: GemmRunResult, verify?: GemmVerification): string {
  const lines = [
    `gemm ${r.m}×${r.n}×${r.k} f32 on ${r.perRank.length} executor(s): ${(r.seconds * 1e3).toFixed(1)} ms, ${r.gflops.toFixed(1)} GFLOP/s`,
  ];
  for (const p of r.perRank) {
    lines.push(
      `  rank ${p.rank}: ${p.bricks} brick(s), compute ${(p.computeSeconds * 1e3).toFixed(1)} ms, exchange ${(p.exchangeSeconds * 1e3).toFixed(1)} ms, received ${formatBytes(p.bytesReceived)}`,
    );
  }
  if (verify) {
    lines.push(
      `  verify: largest error ${verify.maxAbsError.toExponential(2)} (relative ${verify.maxRelError.toExponential(2)}) against one OpenBLAS call: ${verify.ok ? 'OK' : 'FAILED'}`,
    );
    if (verify.nonFinite > 0 || verify.mismatches > 0)
      lines.push(
        `  verify: ${verify.nonFinite} NaN/Inf position(s) in OpenBLAS's C, ${verify.mismatches} where the result disagrees`,
      );
  }
  return lines.join('\n') + '\n';
}

export function layerSummary(
  o: { dtype: string; n: number; k: number; m: number; layers: number },
  r: LayerRunResult,
): string {
  const lines = [
    `layer stack: ${o.layers} × ${o.dtype} ${o.n}×${o.k}, m = ${o.m}, on ${r.perRank.length} executor(s)`,
    `  ${r.passesPerSecond.toFixed(2)} passes/s, ${r.effectiveGBps.toFixed(2)} GB/s of weights (${formatBytes(r.weightBytesPerPass)} per pass)${r.runs > 1 ? `, the fastest of ${r.runs} runs` : ''}`,
    `  per pass: compute ${(r.computeSecondsPerPass * 1e3).toFixed(2)} ms, exchange ${(r.exchangeSecondsPerPass * 1e3).toFixed(2)} ms (${(r.exchangeFraction * 100).toFixed(1)}% of the pass), waiting for the slower peer ${(r.waitSecondsPerPass * 1e3).toFixed(2)} ms`,
  ];
  for (const p of r.perRank) {
    lines.push(
      `  rank ${p.rank}: rows ${p.rows[0]}-${p.rows[1]}, ${p.placement}, ${formatBytes(p.weightBytes)} of weights (${p.backing})`,
    );
  }
  if (r.balancedRows) {
    lines.push(
      `  rows balanced by each executor's speed, layer by layer: ended at ${r.balancedRows.join(' / ')} rows per rank`,
    );
  }
  return lines.join('\n') + '\n';
}
