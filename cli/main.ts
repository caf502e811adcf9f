#!/usr/bin/env node
// The redblue command line: each subcommand lives in cli/commands/ and registers itself here.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { shownErrors, UsageError } from '../common/errors.js';
import { registerBench } from './commands/bench.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

type Registrar = (parent: Command) => unknown;
// Each command's module is imported when that command runs: importing every command's
// dependencies (gRPC, the model, the planner, the benches) cost ~0.45 s of every start. Help and
// unknown names register them all (the listing, commander's "did you mean"). In help order.
const COMMANDS: [string, () => Promise<Registrar>][] = [
  ['topo', async () => (await import('./commands/topo.js')).registerTopo],
  ['doctor', async () => (await import('./commands/doctor.js')).registerDoctor],
  ['plan', async () => (await import('./commands/plan.js')).registerPlan],
  ['run', async () => (await import('./commands/run.js')).registerRun],
  ['generate', async () => (await import('./commands/generate.js')).registerGenerate],
  ['serve', async () => (await import('./commands/serve.js')).registerServe],
  ['synth', async () => (await import('./commands/synth.js')).registerSynth],
  ['executor', async () => (await import('./commands/executor.js')).registerExecutor],
  ['launch', async () => (await import('./commands/launch.js')).registerLaunch],
];
const BENCHES: [string, () => Promise<Registrar>][] = [
  ['plan', async () => (await import('../bench/plan-speed.js')).registerBenchPlan],
  ['run', async () => (await import('../bench/run.js')).registerBenchRun],
  ['kernels', async () => (await import('../bench/kernels.js')).registerBenchKernels],
  ['collectives', async () => (await import('../bench/collectives.js')).registerBenchCollectives],
  ['transport', async () => (await import('../bench/transport.js')).registerBenchTransport],
  ['model', async () => (await import('../bench/model.js')).registerBenchModel],
  ['serve', async () => (await import('../bench/serve.js')).registerBenchServe],
  ['soak', async () => (await import('../bench/soak.js')).registerBenchSoak],
];

/** The program with the commands argv names (`redblue <command> ...`, `redblue bench <suite> ...`), or all. */
export async function buildProgram(argv: string[]): Promise<Command> {
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
  const [name, suite] = argv.slice(2);
  const chosen = (table: [string, () => Promise<Registrar>][], n: string | undefined) =>
    table.some(([c]) => c === n) ? table.filter(([c]) => c === n) : table;
  if (name === '-V' || name === '--version') return program;
  const all = name !== 'bench' && !COMMANDS.some(([c]) => c === name);
  for (const [, load] of all ? COMMANDS : chosen(COMMANDS, name)) (await load())(program);
  if (all || name === 'bench') {
    const bench = registerBench(program);
    for (const [, load] of chosen(BENCHES, name === 'bench' ? suite : undefined)) (await load())(bench);
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
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
    if (!(err instanceof Error && shownErrors.has(err))) process.stderr.write(`redblue: ${message}\n`);
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
