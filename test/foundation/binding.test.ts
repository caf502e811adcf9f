// Binding and pinned pools, read back from the OS. Binding runs in a child process so the test
// runner itself keeps all cpus.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../native/addon.js';
import { readTopology } from '../../native/topology.js';
import { repoRoot } from '../helpers/cli.js';

const addon = loadAddon();
const cpus = readTopology().nodes.flatMap((n) => n.cpus);

describe('process binding', () => {
  it('binds every thread of the process to the node cpus, as the OS reports', () => {
    const target = cpus[cpus.length - 1]!;
    const script = `
      import { createRequire } from 'node:module';
      import { readdirSync, readFileSync } from 'node:fs';
      const a = createRequire(import.meta.url)('./build/Release/redblue.node');
      a.bindProcess([${target}], 0);
      const tasks = readdirSync('/proc/self/task');
      const lists = tasks.map((t) => /Cpus_allowed_list:\\s*(\\S+)/.exec(readFileSync('/proc/self/task/' + t + '/status', 'utf8'))[1]);
      const mem = /Mems_allowed_list:\\s*(\\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1];
      console.log(JSON.stringify({ threads: tasks.length, lists, mine: a.currentAffinity(), mem }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { threads: number; lists: string[]; mine: number[] };
    expect(out.threads).toBeGreaterThan(1); // V8 and libuv threads exist and were bound too
    for (const l of out.lists) expect(l).toBe(String(target));
    expect(out.mine).toEqual([target]);
  });

  it('rejects unknown cpus and nodes with the valid range', () => {
    expect(() => addon.bindProcess([9999], 0)).toThrow(/cpu 9999 does not exist: this machine has cpus 0-/);
    expect(() => addon.bindProcess([0], 42)).toThrow(/node 42 does not exist/);
    expect(() => addon.bindProcess([], 0)).toThrow(/empty set of cpus/);
    // the failed calls changed nothing
    expect(readFileSync('/proc/self/status', 'utf8')).toMatch(/Cpus_allowed_list/);
  });
});

describe('pinned thread pools', () => {
  it('pins each worker to its own cpu', () => {
    const pool = new addon.ThreadPool(cpus);
    try {
      expect(pool.size).toBe(cpus.length);
      const aff = pool.workerAffinity();
      aff.forEach((w, i) => {
        expect(w.allowed).toEqual([cpus[i]]);
        expect(w.ranOn).toBe(cpus[i]);
      });
    } finally {
      pool.close();
    }
    expect(() => pool.cpus()).toThrow(/closed/);
  });

  it('allows oversubscription (several workers on one cpu)', () => {
    const pool = new addon.ThreadPool([cpus[0]!, cpus[0]!, cpus[0]!]);
    expect(pool.workerAffinity().map((w) => w.allowed)).toEqual([[cpus[0]], [cpus[0]], [cpus[0]]]);
    pool.close();
  });

  it('rejects bad cpu lists', () => {
    expect(() => new addon.ThreadPool([])).toThrow(/at least one cpu/);
    expect(() => new addon.ThreadPool([4096])).toThrow(/cpu 4096 does not exist/);
    expect(() => new addon.ThreadPool([-1])).toThrow(/non-negative/);
  });
});

describe('worker threads', () => {
  it('load the addon with classes of their own, and the main thread keeps working', async () => {
    const { Worker } = await import('node:worker_threads');
    const addonPath = `${repoRoot}/build/Release/redblue.node`;
    const code = `
      const a = require(${JSON.stringify(addonPath)});
      const p = new a.ThreadPool([${cpus[0]}]);
      const ok = p.workerAffinity()[0].allowed[0] === ${cpus[0]};
      p.close();
      require('node:worker_threads').parentPort.postMessage(ok);`;
    for (let i = 0; i < 3; i++) {
      const w = new Worker(code, { eval: true });
      const msg = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(msg).toBe(true);
      await new Promise((r) => w.once('exit', r));
    }
    const pool = new addon.ThreadPool([cpus[0]!]);
    expect(pool.workerAffinity()[0]!.allowed).toEqual([cpus[0]]);
    pool.close();
  });
});
