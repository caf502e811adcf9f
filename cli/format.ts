// Text output helpers shared by the commands.
/** 1536 → "1.5 KiB"; the planner's formatter, so plan and run output agree. */
export { formatBytesPlain as formatBytes } from '../planner/format.js';

/** A plain left-aligned text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
