// `redblue bench <suite>`: benchmarks, each reporting ratios against a reference measured in the
// same run (schema in bench/report.ts). Each suite registers itself as a subcommand here.
import type { Command } from 'commander';

export function registerBench(program: Command): Command {
  const bench = program
    .command('bench')
    .description(
      'measure redblue against references measured in the same run (OpenBLAS, memory bandwidth, MPI, TCP)',
    );
  return bench;
}
