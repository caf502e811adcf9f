// `redblue doctor`: what the engine needs from this host (and, with --hostfile, from the others).
import type { Command } from 'commander';
import { runDoctor, type DoctorCheck } from '../../executor/host/doctor.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      "check what redblue needs on this machine (and over SSH on a hostfile's hosts), with the fix for each miss",
    )
    .option('--hostfile <F>', 'also check that every host of this hostfile answers over SSH and has redblue')
    .option(
      '--ssh-option <OPT>',
      'extra ssh -o option (repeatable), as launch takes them',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--json', 'print { ok, checks: [{ name, status, required, detail, fix? }] }')
    .addHelpText(
      'after',
      `
Statuses: ok; warn (works, slower or fragile: the fix says how to do better); fail (a required
piece is missing: the exit code is 1); info (facts: NUMA nodes, cpu features, RDMA, UCX).

Examples:
  redblue doctor
  redblue doctor --hostfile hosts.txt --json`,
    )
    .action(async (o: { hostfile?: string; sshOption: string[]; json?: boolean }) => {
      const report = await runDoctor({
        ...(o.hostfile ? { hostfile: o.hostfile } : {}),
        ...(o.sshOption.length ? { sshOptions: o.sshOption } : {}),
      });
      process.stdout.write(
        o.json ? JSON.stringify(report, null, 2) + '\n' : render(report.checks, report.ok),
      );
      if (!report.ok) process.exitCode = 1;
    });
}

const MARK: Record<DoctorCheck['status'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: '    ' };

function render(checks: DoctorCheck[], ok: boolean): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.flatMap((c) => [
    `${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`,
    ...(c.fix ? [`      ${' '.repeat(width)}  fix: ${c.fix}`] : []),
  ]);
  lines.push(
    '',
    ok
      ? 'Everything redblue needs is here.'
      : 'Something required is missing (FAIL above): apply its fix, then run redblue doctor again.',
  );
  return lines.join('\n') + '\n';
}
