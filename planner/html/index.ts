// The plan visualisation: `redblue plan --html FILE` and the `--report FILE` of run/launch.
import { writeFileSync } from 'node:fs';
import type { Plan } from '../types.js';
import { renderPlanHtml, type RenderOptions } from './render.js';

export { renderPlanHtml, type RenderOptions } from './render.js';
export type { ExecutedSchedule, MeasuredRank, MeasuredRun } from './types.js';

/** Writes the page for `plan` to `file` (overwriting it). */
export function writePlanHtml(plan: Plan, file: string, options: RenderOptions = {}): void {
  const html = renderPlanHtml(plan, options);
  try {
    writeFileSync(file, html);
  } catch (e) {
    throw new Error(`cannot write the plan page to ${file}: ${(e as Error).message}`);
  }
}
