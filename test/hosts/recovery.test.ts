// `redblue launch generate` survives a lost host: two pretend hosts (network namespaces, one
// executor each) generate greedily; host 1's link is taken down mid-generation; the coordinator
// ends the sessions, connects the host left again, re-plans and reloads there, rebuilds the KV
// cache from the prompt and the tokens so far, and the text is the text of a run that never
// failed. With --on-failure abort the loss ends the run, naming the host.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../bench/netns-lab.js';
import { TINY, writeSyntheticModel } from '../../model/synth.js';
import { cliPath, repoRoot, runCli } from '../helpers/cli.js';
import { oneCoreArgs, startExecutor, type Started } from './lab-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-hosts-recovery-'));
const token = join(dir, 'token');
writeFileSync(token, 'recovery-test-token-0123456789\n', { mode: 0o600 });
const model = join(dir, 'tiny-f16.gguf');
const COORD = 2;
const GEN = ['-p', 'Once upon a time', '-n', '300', '--temp', '0', '--ctx', '400'];
let lab: Lab | undefined;
const started: Started[] = [];
let reference = '';

/** A fresh pair of hosts (the link of one goes down in each test). */
async function startHosts(port: number): Promise<string> {
  const l = lab!;
  const args = (i: number) => oneCoreArgs(l, i, port, token);
  started.push(...(await Promise.all([startExecutor(l, 0, args(0)), startExecutor(l, 1, args(1))])));
  return `${l.addresses[0]}:${port},${l.addresses[1]}:${port}`;
}

beforeAll(() => {
  // f16: greedy tokens do not depend on how many executors share a layer.
  writeSyntheticModel(model, { arch: 'llama', ...TINY, types: { default: 'f16' }, seed: 11 });
  const r = runCli(['generate', '-m', model, ...GEN, '--virtual-nodes', '2']);
  expect(r.code, r.stderr).toBe(0);
  reference = r.stdout;
  lab = createLab(3);
}, 120_000);

afterAll(() => {
  for (const s of started) s.proc.kill('SIGKILL');
  lab?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** launch generate in the coordinator's namespace; host 1's link goes down once text flows. */
function launchAndCut(
  hosts: string,
  extra: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = lab!.spawn(
      COORD,
      process.execPath,
      [cliPath, 'launch', '--hosts', hosts, '--token-file', token, 'generate', '-m', model, ...GEN, ...extra],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let cut = false;
    p.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (!cut && stdout.length > 'Once upon a time'.length + 20) {
        cut = true;
        lab!.linkDown(1);
      }
    });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const limit = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('exit', (code) => {
      clearTimeout(limit);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('launch generate when a host is lost', () => {
  it('goes on with the host left: the same greedy text, the loss reported', async () => {
    const hosts = await startHosts(7070);
    const r = await launchAndCut(hosts, []);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(reference);
    expect(r.stderr).toMatch(
      /lost host 1 \(10\.\d+\.\d+\.\d+:7070\) \(.*\); going on with the 1 host\(s\) left/,
    );
    expect(r.stderr).toMatch(
      /lost: +host 1 \(.*\) after [1-9]\d* generated tokens: .*; went on with 1 executor\(s\) after [\d.]+ s/,
    );
  }, 180_000);

  it('--on-failure abort: the lost host ends the run, named', async () => {
    lab!.cleanup();
    lab = createLab(3);
    const hosts = await startHosts(7071);
    const r = await launchAndCut(hosts, ['--on-failure', 'abort']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/host 1 \(10\.\d+\.\d+\.\d+:7071\)/);
    expect(r.stderr).not.toMatch(/going on with/);
  }, 180_000);
});
