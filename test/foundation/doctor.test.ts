// `redblue doctor` on this machine as it is, and with pieces missing for real: huge pages
// released (and given back), shared memory left by a dead process, hosts that cannot be reached.
// Test files run one after another (vitest.config.ts), so lowering the huge-page reserve here
// takes nothing from another test.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../executor/host/doctor.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-doctor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function doctor(args: string[] = []): { code: number; report: DoctorReport; stderr: string } {
  const r = runCli(['doctor', '--json', ...args]);
  return { code: r.code, report: JSON.parse(r.stdout) as DoctorReport, stderr: r.stderr };
}
const check = (rep: DoctorReport, name: string) => {
  const c = rep.checks.find((x) => x.name === name);
  expect(c, `check ${name}`).toBeDefined();
  return c!;
};

describe('redblue doctor', () => {
  it('finds everything required on this machine, and tells the cpu features the kernels use', () => {
    const { code, report } = doctor();
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    for (const name of ['Debian packages', 'native addon', '/dev/shm'])
      expect(check(report, name).status, name).toBe('ok');
    for (const name of ['huge pages', 'open files', 'NUMA nodes (hwloc)', 'RDMA devices', 'UCX'])
      check(report, name);
    // Each node with what a model could take of it now (the memory check's figure).
    expect(check(report, 'NUMA nodes (hwloc)').detail).toMatch(
      /node 0: \d+ cpu\(s\), [\d.]+ [MGT]iB \([\d.]+ [MGT]iB available(, [\d.]+ [MGT]iB in free huge pages)?\)/,
    );
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))![1]!.split(/\s+/);
    const cpu = check(report, 'cpu features');
    expect(cpu.detail.split(';')[0]!.split(' ').includes('avx2')).toBe(flags.includes('avx2'));
    expect(cpu.detail).toMatch(
      flags.includes('avx2') ? /take the (avx\S*|amx) path/ : /take the scalar path/,
    );
    // where Linux grants AMX's tile state, auto takes the amx path (docs/kernels.md)
    const granted = /AMX tile state granted/.test(cpu.detail);
    expect(granted).toBe(flags.includes('amx_tile') && /take the amx path/.test(cpu.detail));
    // the text form says the same, with a closing line
    const text = runCli(['doctor']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ok +Debian packages +all \d+ installed$/m);
    expect(text.stdout).toMatch(/Everything redblue needs is here\.\n$/);
  });

  it('flags huge pages once they are released, with the command that reserves them again', () => {
    const file = '/proc/sys/vm/nr_hugepages';
    const before = readFileSync(file, 'utf8').trim();
    try {
      writeFileSync(file, '0');
      const { code, report } = doctor();
      // Recommended, not required: runs fall back to transparent huge pages.
      expect(code).toBe(0);
      const h = check(report, 'huge pages');
      expect(h.status).toBe('warn');
      expect(h.detail).toMatch(/fall back to transparent huge pages/);
      expect(h.fix).toMatch(/sysctl -w vm\.nr_hugepages=/);
    } finally {
      writeFileSync(file, before);
    }
    expect(readFileSync(file, 'utf8').trim()).toBe(before);
    expect(check(doctor().report, 'huge pages').status).toBe('ok');
  });

  it('points at shared memory left by a process that is gone', () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid names a dead process
    const name = `/dev/shm/redblue-run-${dead}-doctor-test`;
    writeFileSync(name, Buffer.alloc(4096));
    try {
      const c = check(doctor().report, 'stale shared memory');
      expect(c.status).toBe('warn');
      expect(c.fix).toContain(name);
    } finally {
      rmSync(name, { force: true });
    }
  });

  it('fails, naming each host, when a hostfile names hosts SSH cannot reach, within seconds', () => {
    const hostfile = join(dir, 'hosts');
    // Nothing leaves this machine (no DNS either): loopback addresses on closed ports.
    writeFileSync(hostfile, '127.0.0.2 ssh-port=1\n127.0.0.1 ssh-port=1\n');
    const t0 = Date.now();
    const { code, report } = doctor(['--hostfile', hostfile]);
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    const a = check(report, 'ssh 127.0.0.2');
    expect(a.status).toBe('fail');
    expect(a.required).toBe(true);
    expect(a.detail).toMatch(/unreachable: .*127\.0\.0\.2/);
    const b = check(report, 'ssh 127.0.0.1');
    expect(b.detail).toMatch(/unreachable: .*(refused|port 1)/);
    expect(b.fix).toMatch(/ssh -o BatchMode=yes -p 1 127\.0\.0\.1 true/);
    const text = runCli(['doctor', '--hostfile', hostfile]);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^FAIL +ssh 127\.0\.0\.2/m);
    expect(text.stdout).toMatch(/Something required is missing/);
    // a hostfile that does not exist is a usage error, not a crash
    const none = runCli(['doctor', '--hostfile', join(dir, 'nope')]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/nope/);
  });
});

describe('the set-up', () => {
  it('said what it did in under 20 lines, one per stage, every stage ok', () => {
    // scripts/setup.sh keeps what it printed; the README runs it before the tests.
    const summary = readFileSync(new URL('../../.cache/setup-summary.txt', import.meta.url), 'utf8');
    const lines = summary.trimEnd().split('\n');
    expect(lines.length).toBeLessThan(20);
    for (const stage of ['packages', 'huge pages', 'npm packages', 'native addon', 'TypeScript'])
      expect(
        // each with the time it took
        lines.some((l) => new RegExp(`^setup: ${stage} +(ok|skipped) \\((.*, )?\\d+s[;)]`).test(l)),
        stage,
      ).toBe(true);
    expect(lines.some((l) => / FAILED /.test(l))).toBe(false);
    // the log's path is said only when a stage fails
    expect(summary).not.toMatch(/setup\.log/);
    expect(lines[lines.length - 1]).toMatch(/^setup: done in \d+s/);
  });
});
