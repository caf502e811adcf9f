// `redblue plan` as a user runs it: the built CLI in a child process.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseTopology } from '../../planner/topology-file.js';
import { parseBytes } from '../../planner/units.js';
import type { Plan } from '../../planner/types.js';

const root = join(import.meta.dirname, '..', '..');
const run = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'plan', ...args], {
    encoding: 'utf8',
    cwd: root,
  });

beforeAll(() => {
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
    cwd: root,
  });
}, 120_000);

describe('redblue plan', () => {
  it('prints the levels, a picture, the bound and every baseline', () => {
    const r = run('--m', '16384', '--n', '16384', '--k', '16384', '--ranks', '65', '--objective', 'volume');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('level ranks: grid 4×4×4 (64 of 65 used, 1 idle)');
    expect(r.stdout).toMatch(/\n {4}[A-Za-z0-9]{32}\n/);
    expect(r.stdout).toContain('lower bound per rank');
    for (const name of ['1D-m', '1D-n', '1D-k', '2D-SUMMA', '2.5D', 'CARMA', 'COSMA'])
      expect(r.stdout).toContain(name);
    expect(r.stdout).toContain('n/a: CARMA needs P a power of two');
    expect(r.stdout).toMatch(/predicted time: .*compute .*communication/);
  });

  it('prints the Plan as JSON with hosts and nodes', () => {
    const r = run(
      '--m',
      '2048',
      '--n',
      '4096',
      '--k',
      '1024',
      '--hosts',
      '3',
      '--nodes-per-host',
      '2',
      '--json',
      '--dtype',
      'bf16',
    );
    expect(r.status).toBe(0);
    const p = JSON.parse(r.stdout) as Plan;
    expect(p.schemaVersion).toBe(1);
    expect(p.ranks).toHaveLength(6);
    expect(p.cluster.nodesPerHost).toEqual([2, 2, 2]);
    expect(p.ranks.reduce((s, x) => s + x.multiplyAdds, 0)).toBe(2048 * 4096 * 1024);
    expect(p.schedule.transfers.length).toBe(p.schedule.transferCount);
  });

  it('reads a YAML topology file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-plan-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      'links:\n  network: { bandwidth: 1.0e9, latency: 1e-5 }\nhosts:\n  - name: a\n    nodes: 2\n  - name: b\n    nodes: [{ cores: 8, memoryBytes: 8GiB, flops: 2e11 }, { cores: 8, memoryBytes: 8GiB, flops: 2e11 }]\n',
    );
    const r = run(
      '--m',
      '1024',
      '--n',
      '1024',
      '--k',
      '1024',
      '--topology',
      file,
      '--json',
      '--no-baselines',
    );
    expect(r.status).toBe(0);
    const p = JSON.parse(r.stdout) as Plan;
    expect(p.cluster.links.network.bandwidth).toBe(1e9);
    expect(p.cluster.ranks).toBe(4);
    // The slower host gets less work.
    const work = (h: number) => p.ranks.filter((x) => x.host === h).reduce((s, x) => s + x.multiplyAdds, 0);
    expect(work(1)).toBeLessThan(work(0));
  });

  it.each([
    [['--m', '0', '--n', '8', '--k', '8', '--ranks', '2'], /--m must be a whole number/],
    [['--m', '1.5', '--n', '8', '--k', '8', '--ranks', '2'], /--m must be a whole number/],
    [['--m', '8', '--n', '-3', '--k', '8', '--ranks', '2'], /--n must be a whole number/],
    [['--m', '8', '--n', '8', '--k', '8', '--ranks', '0'], /--ranks must be a whole number/],
    [['--m', '8', '--n', '8', '--k', '8', '--ranks', '-3'], /--ranks must be a whole number/],
    [['--m', '8', '--n', '8', '--k', '8', '--ranks', '2.5'], /--ranks must be a whole number/],
    [['--m', '8', '--n', '8', '--k', '8', '--ranks', '2147483648'], /--ranks must be at most 2147483647/],
    [
      ['--m', '9007199254740992', '--n', '8', '--k', '8', '--ranks', '2'],
      /--m must be at most 9007199254740991/,
    ],
    [
      ['--m', '9007199254740991', '--n', '9007199254740991', '--k', '8', '--ranks', '1000000'],
      /cannot plan 1000000 ranks: .*plan for at most 16384 ranks/,
    ],
    [
      ['--m', '8', '--n', '8', '--k', '8', '--nodes-per-host', '20000'],
      /--nodes-per-host must be at most 16384/,
    ],
    [
      ['--m', '8', '--n', '8', '--k', '8', '--hosts', '1000000', '--nodes-per-host', '10000'],
      /10000000000 ranks, more than 2147483647/,
    ],
    [
      ['--m', '4096', '--n', '4096', '--k', '4096', '--ranks', '4', '--memory', '1000'],
      /below the minimum .*: \d+ B/,
    ],
    [['--m', '8', '--n', '8', '--k', '8', '--ranks', '2', '--dtype', 'f64'], /--dtype must be one of/],
    [['--m', '8', '--n', '8', '--k', '8', '--ranks', '2', '--hosts', '2'], /only one of/],
  ])('rejects bad input %j with exit 2', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('plans a million ranks for a small product: the ranks without work are idle and not listed', () => {
    const text = run('--m', '8', '--n', '8', '--k', '8', '--ranks', '1000000');
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(
      'plan: grid; 512 rank(s) used, 999488 idle (ranks 512–999999 cannot get work and are not listed)',
    );
    const json = run('--m', '8', '--n', '8', '--k', '8', '--ranks', '1000000', '--json');
    expect(json.status).toBe(0);
    const p = JSON.parse(json.stdout) as Plan;
    expect([p.cluster.ranks, p.cluster.listedRanks, p.ranks.length]).toEqual([1e6, 512, 512]);
  });

  it('rejects an inconsistent topology file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-plan-'));
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        hosts: [
          { name: 'a', nodes: 1 },
          { name: 'a', nodes: 2 },
        ],
      }),
    );
    const r = run('--m', '8', '--n', '8', '--k', '8', '--topology', file);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/host name 'a' appears twice/);
  });
});

describe('topology files', () => {
  it('names the offending entry', () => {
    expect(() => parseTopology('hosts: []')).toThrow(/non-empty list/);
    expect(() => parseTopology('hosts: [{ name: a, nodes: [{ cores: 0 }] }]')).toThrow(
      /host 0 \(a\) node 0: cores must be a positive/,
    );
    expect(() => parseTopology('hosts: [{ nodes: 1 }]\nlinks: { warp: { bandwidth: 1 } }')).toThrow(
      /unknown link class 'warp'/,
    );
    expect(() => parseTopology('{ not yaml')).toThrow(/not valid JSON or YAML/);
    const c = parseTopology('{"hosts": [{"name": "x", "nodes": 3}]}');
    expect(c.hosts[0]!.nodes).toHaveLength(3);
  });

  it('refuses names, counts and sizes that are not what they say (found by test/fuzz/topology.test.ts)', () => {
    // Was a TypeError (Cannot convert object to primitive value) from String(name).
    expect(() => parseTopology('{"hosts":[{"name":{"toString":"x","valueOf":1}}]}', 't.json')).toThrow(
      /^t.json: hosts\[0\].name must be a string, got \{"toString":"x","valueOf":1\}$/,
    );
    // Was a billion node objects: out of memory.
    expect(() => parseTopology('hosts: [{ nodes: 1000000000 }]', 't.yaml')).toThrow(
      /^t.yaml: hosts\[0\].nodes must be a list or a whole number from 1 to 1024, got 1000000000$/,
    );
    // Was a TypeError from the size parser's regex reading the object as a string.
    expect(() => parseTopology('hosts: [{ nodes: [{ memoryBytes: { toString: 1 } }] }]', 't.yaml')).toThrow(
      /^t.yaml: hosts\[0\].nodes\[0\].memoryBytes must be a size in bytes like .*, got object$/,
    );
    expect(() => parseTopology('hosts: [{ nodes: [{ memoryBytes: 1e400 }] }]', 't.yaml')).toThrow(
      /memoryBytes must be a positive number of bytes below 2\^53, got Infinity/,
    );
  });
});

describe('byte sizes', () => {
  it('parse to a positive whole number of bytes below 2^53, or name the flag (found by test/fuzz/cli-flags.test.ts)', () => {
    expect(parseBytes('16GiB', '--memory')).toBe(16 * 2 ** 30);
    expect(parseBytes('1.5 k', '--memory')).toBe(1500);
    // Were Infinity, 0 and a rounded 1e20: not sizes.
    expect(() => parseBytes('1e400', '--memory')).toThrow(
      /^--memory must be a positive size below 2\^53 bytes \(8 PiB\), got '1e400'$/,
    );
    expect(() => parseBytes(0.5, '--memory')).toThrow(
      /^--memory must be a positive number of bytes below 2\^53, got 0.5$/,
    );
    expect(() => parseBytes('99999999999999999999', '--memory')).toThrow(/below 2\^53 bytes/);
  });
});
