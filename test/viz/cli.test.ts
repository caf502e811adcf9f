// `redblue plan --html FILE` writes the page next to the usual text or JSON output.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerPlan } from '../../cli/commands/plan.js';

async function redblue(args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerPlan(program);
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  await program.parseAsync(['node', 'redblue', ...args]);
  return out;
}

describe('redblue plan --html', () => {
  afterEach(() => vi.restoreAllMocks());
  const dir = mkdtempSync(join(tmpdir(), 'redblue-viz-cli-'));
  const problem = [
    'plan',
    '--m',
    '8192',
    '--n',
    '8192',
    '--k',
    '8192',
    '--hosts',
    '3',
    '--nodes-per-host',
    '4',
  ];

  it('writes the page and still prints the text plan', async () => {
    const file = join(dir, 'plan.html');
    const text = await redblue([...problem, '--html', file]);
    expect(text).toContain('level ');
    const html = readFileSync(file, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<g class="brick"/g)!.length).toBe(12);
    expect(html).toContain('8192×8192×8192 f32 on 12 rank(s)');
  });

  it('writes the page with --json too, and stdout stays pure JSON', async () => {
    const file = join(dir, 'plan-json.html');
    const out = await redblue([...problem, '--stationary', 'B', '--json', '--html', file]);
    const plan = JSON.parse(out) as { ranks: unknown[] };
    expect(plan.ranks.length).toBe(12);
    expect(readFileSync(file, 'utf8')).toContain('Operand <b>B</b> stays resident');
  });

  it('names the file when it cannot be written', async () => {
    const file = join(dir, 'no-such-dir', 'plan.html');
    await expect(redblue([...problem, '--html', file])).rejects.toThrow(
      `cannot write the plan page to ${file}`,
    );
    expect(existsSync(file)).toBe(false);
  });
});
