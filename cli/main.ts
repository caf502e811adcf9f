#!/usr/bin/env node
// The redblue command line: each subcommand lives in cli/commands/ and registers itself here.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { UsageError } from '../common/errors.js';
import { registerTopo } from './commands/topo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerBench } from './commands/bench.js';
import { registerRun } from './commands/run.js';
import { registerPlan } from './commands/plan.js';
import { registerBenchRun } from '../bench/run.js';
import { registerBenchPlan } from '../bench/plan-speed.js';
import { registerBenchKernels } from '../bench/kernels.js';
import { registerBenchCollectives } from '../bench/collectives.js';
import { registerExecutor } from './commands/executor.js';
import { registerLaunch } from './commands/launch.js';
import { registerBenchTransport } from '../bench/transport.js';
import { registerBenchModel } from '../bench/model.js';
import { registerBenchServe } from '../bench/serve.js';
import { registerBenchSoak } from '../bench/soak.js';
import { registerGenerate } from './commands/generate.js';
import { registerServe } from './commands/serve.js';
import { registerSynth } from './commands/synth.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('redblue')
    .description(
      'Distributed tensor-parallel engine: one executor per NUMA node (and per host), a planner that ' +
        'splits matrix work so the least data crosses slow links, and native kernels.',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerTopo(program);
  registerDoctor(program);
  registerPlan(program);
  registerRun(program);
  registerGenerate(program);
  registerServe(program);
  registerSynth(program);
  registerExecutor(program);
  registerLaunch(program);
  const bench = registerBench(program);
  registerBenchPlan(bench);
  registerBenchRun(bench);
  registerBenchKernels(bench);
  registerBenchCollectives(bench);
  registerBenchTransport(bench);
  registerBenchModel(bench);
  registerBenchServe(bench);
  registerBenchSoak(bench);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    // A command that ends normally may still have set an exit code (doctor: something missing).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit with 0; commander already printed its message
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`redblue: ${message}\n`);
    return err instanceof UsageError || err instanceof RangeError || err instanceof TypeError ? 2 : 1;
  }
}

// Output piped into `head` and the like: stop quietly when the reader goes away.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`redblue: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
