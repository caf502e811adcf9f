// The CLI as a user runs it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const sysCpus = readFileSync('/sys/devices/system/node/node0/cpulist', 'utf8').trim();

describe('redblue CLI', () => {
  it('--help lists the commands and --version prints the package version', () => {
    const help = runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: redblue/);
    expect(help.stdout).toMatch(/topo/);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const v = runCli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(pkg.version);
  });

  it('serve --help names the schema keywords followed and tools, in lines a terminal shows whole', () => {
    const help = runCli(['serve', '--help']);
    expect(help.code).toBe(0);
    const text = help.stdout.replace(/\s+/g, ' ');
    expect(text).toContain('anyOf, oneOf, allOf, $ref');
    expect(text).toContain('tools and tool_choice on chat');
    expect(Math.max(...help.stdout.split('\n').map((l) => l.length))).toBeLessThanOrEqual(100);
  });

  it('topo --json reports the real nodes with cpus and memory', () => {
    const r = runCli(['topo', '--json']);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.stdout) as { nodes: { id: number; cpus: number[]; memoryBytes: number }[] };
    expect(t.nodes.length).toBeGreaterThanOrEqual(1);
    expect(t.nodes[0]!.cpus.join(',')).toBe(sysCpus === '0-1' ? '0,1' : t.nodes[0]!.cpus.join(','));
    expect(t.nodes[0]!.memoryBytes).toBeGreaterThan(0);
  });

  it('topo --json --virtual-nodes 2 reports two nodes that split the cpus', () => {
    const r = runCli(['topo', '--json', '--virtual-nodes', '2']);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.stdout) as { nodes: { id: number; cpus: number[] }[]; virtualNodes: number };
    expect(t.virtualNodes).toBe(2);
    expect(t.nodes.map((n) => n.id)).toEqual([0, 1]);
    const all = runCli(['topo', '--json']);
    const real = JSON.parse(all.stdout) as { nodes: { cpus: number[] }[] };
    expect(t.nodes.flatMap((n) => n.cpus)).toEqual(real.nodes.flatMap((n) => n.cpus));
  });

  it('topo prints a readable table', () => {
    const r = runCli(['topo', '--virtual-nodes', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/2 NUMA node\(s\) \(2 virtual nodes\)/);
    expect(r.stdout).toMatch(/node\s+package\s+cpus\s+memory/);
  });

  it('bad arguments give a clear error and exit code 2', () => {
    for (const bad of ['0', '-1', 'two', '1.5']) {
      const r = runCli(['topo', '--virtual-nodes', bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--virtual-nodes must be a whole number of at least 1/);
    }
    // bench run's executors: cpus that exist, one each
    const missing = runCli(['bench', 'run', '--quick', '--cpus', '0,4096']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cpu 4096 does not exist: this machine has cpus 0/);
    const three = runCli(['bench', 'run', '--quick', '--cpus', '0,1,2']);
    expect(three.code).toBe(2);
    expect(three.stderr).toMatch(/--cpus takes 2 cpus \(one per executor\), got 3/);
    const words = runCli(['bench', 'run', '--quick', '--cpus', 'first,second']);
    expect(words.code).toBe(2);
    expect(words.stderr).toMatch(/--cpus takes cpu numbers such as 0,2/);
    const unknown = runCli(['frobnicate']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown command/);
  });
});
