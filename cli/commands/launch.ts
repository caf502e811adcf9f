// `redblue launch`: runs a workload across hosts. Executors are started over SSH from a hostfile,
// or were started by other means (--hosts, or srun under Slurm); the plan comes from the topology
// the hosts report; everything is stopped afterwards, also on Ctrl-C or when a host fails.
import { rowLengthProblem } from '../../native/kernels.js';
import type { Command } from 'commander';
import { Option } from 'commander';
import { DEFAULT_PORT } from '../../executor/launch/hostfile.js';
import type { RemoteCluster } from '../../executor/coordinator/remote-cluster.js';
import { withHosts, type HostsOptions } from '../../executor/coordinator/hosts.js';
import { gemmShape } from '../../executor/coordinator/local-run.js';
import { runGemm } from '../../executor/coordinator/gemm-run.js';
import { runLayers } from '../../executor/coordinator/layer-run.js';
import { layerPlacement, planHostsGemm } from '../../executor/coordinator/local-plan.js';
import { verificationFailure, verifyGemm } from '../../executor/coordinator/verify.js';
import { writeNpyMatrix } from '../../executor/coordinator/npy.js';
import type { LayerDType } from '../../executor/coordinator/layer-run.js';
import { parsePositiveInt, parseSeed, shownErrors, UsageError } from '../../common/errors.js';
import { Progress } from '../progress.js';
import { authFromOptions } from '../../executor/host/options.js';
import { addSecurityOptions } from './executor.js';
import { parseTransport } from '../../executor/host/options.js';
import type { TransportChoice } from '../../transport/control.js';
import { gemmInputs, type GemmFlags } from './run.js';
import { gemmSummary, layerSummary, print, stripArrays, writeReport } from '../format.js';
import {
  addGenerateFlags,
  chatWithFlags,
  checkDraftFlags,
  generateWithFlags,
  placementOf,
  type GenerateFlags,
} from './generate.js';
import {
  remoteGenerationStep,
  remotePlaces,
  remoteRunner,
} from '../../executor/coordinator/remote-generate.js';
import { Conversation } from '../../executor/coordinator/chat-run.js';
import { Generation } from '../../executor/coordinator/generate-run.js';
import { planGenerateOn, readModelFile } from '../../executor/coordinator/generate.js';
import { checkDraftFile, startDraftCluster } from '../../executor/coordinator/draft.js';
import type { LocalCluster } from '../../executor/host/local-cluster.js';
import { readTopology } from '../../native/topology.js';
import { renderModelSplit } from '../../planner/model-split.js';
import { renderMemoryNeeds } from '../../planner/model-memory.js';

interface LaunchOpts {
  hostfile?: string;
  hosts?: string;
  slurm?: boolean;
  port: number;
  sshOption?: string[];
  remoteCommand?: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  json?: boolean;
  readyTimeout: number;
  transport?: TransportChoice;
}

const posInt = (flag: string) => (v: string) => parsePositiveInt(v, flag);
const collect = (v: string, prev: string[] = []) => [...prev, v];

function addLaunchOptions(cmd: Command): Command {
  cmd
    .option('--hostfile <FILE>', 'start executors on these hosts over SSH (see docs/hosts.md)')
    .option('--hosts <LIST>', 'executors already running: HOST:PORT,HOST:PORT,...')
    .option(
      '--slurm',
      'the hosts of this Slurm job (SLURM_JOB_NODELIST), executors on --port (srun redblue executor)',
    )
    .option(
      '--port <P>',
      'executor port for --slurm and hostfile lines without port=',
      posInt('--port'),
      DEFAULT_PORT,
    )
    .option('--ssh-option <OPT>', 'extra ssh -o option, repeatable (e.g. UserKnownHostsFile=FILE)', collect)
    .option('--remote-command <CMD>', 'how to run redblue on the hosts (hostfile default for command=)')
    .option('--ready-timeout <S>', 'seconds to wait for every host', posInt('--ready-timeout'), 60)
    .option(
      '--transport <T>',
      "--hostfile: how the started hosts' leaders exchange (auto, ucx or grpc; see `redblue executor --help`)",
      parseTransport,
    )
    .option('--json', 'print results as JSON');
  return addSecurityOptions(cmd);
}

/** The hosts for one workload (executor/coordinator/hosts.ts), with a progress bar here. */
async function onHosts<T>(
  o: LaunchOpts,
  work: (rc: RemoteCluster) => Promise<T>,
  extra: Pick<HostsOptions, 'onHostLost' | 'alsoStop'> = {},
): Promise<T> {
  const bar = new Progress('starting hosts');
  try {
    return await withHosts(
      {
        ...o,
        ...extra,
        auth: authFromOptions(o),
        onProgress: (done, total, what) => bar.update(done, total, what),
        onInterrupt: () => process.stderr.write('\nredblue: interrupted, stopping the hosts\n'),
        // Said at once: stopping the hosts left can take seconds more.
        onFailure: (e) => {
          if (!(e instanceof Error)) return;
          bar.done();
          process.stderr.write(`redblue: ${e.message}\n`);
          shownErrors.add(e);
        },
      },
      (rc) => {
        bar.done();
        return work(rc);
      },
    );
  } finally {
    bar.done();
  }
}

export function registerLaunch(program: Command): void {
  const launch = addLaunchOptions(
    program.command('launch').description('run a workload across hosts (multi-host mode; see docs/hosts.md)'),
  );
  launch.addHelpText(
    'after',
    `
Examples:
  redblue launch --hostfile hosts.txt gemm --m 4096 --n 4096 --k 4096 --verify
  redblue launch --hosts 10.0.0.1:7070,10.0.0.2:7070 --token-file token layer --n 11008 --k 4096
  redblue launch --hostfile hosts.txt generate -m model.gguf -p "The capital of France is" -n 32 --temp 0
  redblue launch --hostfile hosts.txt generate -m instruct.gguf --chat -i --system "You are terse."
  srun --ntasks-per-node=1 redblue executor --listen 0.0.0.0:7070 --token-file ~/.redblue-token &
  redblue launch --slurm --token-file ~/.redblue-token gemm --m 8192 --n 8192 --k 8192`,
  );
  // Options may come before or after the workload; an explicit value beats a default.
  const merged = (cmd: Command): LaunchOpts => {
    const out: Record<string, unknown> = { ...cmd.parent!.opts() };
    for (const [key, v] of Object.entries(cmd.opts())) {
      if (v !== undefined && (cmd.getOptionValueSource(key) !== 'default' || out[key] === undefined))
        out[key] = v;
    }
    return out as unknown as LaunchOpts;
  };

  addLaunchOptions(
    launch
      .command('gemm')
      .description('one distributed C = A·B across the hosts')
      .option('--m <M>', 'rows of A and C (taken from --a when given)', posInt('--m'))
      .option('--n <N>', 'columns of B and C (taken from --b when given)', posInt('--n'))
      .option('--k <K>', 'columns of A, rows of B (taken from --a or --b when given)', posInt('--k'))
      .option('--a <file>', 'A from a .npy file (m×k)')
      .option('--b <file>', 'B from a .npy file (k×n)')
      .option('--allow-non-finite', 'run even if A or B hold NaN or Inf (refused otherwise, saying where)')
      .option('--out <file>', 'write C as a float32 .npy file')
      .option('--seed <S>', 'seed for random A and B', parseSeed, 1)
      .option('--verify', 'compare with one OpenBLAS call here and print the largest error')
      .option('--dry-run', "print the plan for the hosts' reported topology and stop")
      .option(
        '--report <file>',
        'write the plan as an HTML page with measured times beside the predicted ones',
      ),
  ).action(async (o: GemmFlags & { dryRun?: boolean }, cmd: Command) => {
    const lo = merged(cmd);
    const shape = gemmShape(o);
    await onHosts(lo, async (rc) => {
      const p = planHostsGemm(rc.plannerCluster(), shape, { a: !o.a, b: !o.b });
      if (o.dryRun) {
        print(
          lo.json,
          p,
          `plan for ${rc.hosts.length} host(s), ${rc.size} rank(s): ${p.strategy.description}\n`,
        );
        return;
      }
      const r = await runGemm(rc, p, gemmInputs(o, shape), o.out);
      const v = o.verify ? verifyGemm(r) : undefined;
      if (o.report)
        writeReport(
          o.report,
          p,
          r,
          `redblue launch gemm, ${rc.hosts.length} host(s), ${rc.size} executor(s)`,
        );
      print(
        lo.json,
        { ...stripArrays(r), plan: p.strategy.description, ...(v ? { verify: v } : {}) },
        `${rc.hosts.length} host(s): ${rc.hellos.map((h) => `${h.hostname} (${h.nodes.length} node(s))`).join(', ')}\n` +
          gemmSummary(r, v) +
          `  cross-host reduction: ${(r.reduceSeconds * 1e3).toFixed(1)} ms, ${(r.reduceBytes / 1e6).toFixed(2)} MB between host leaders${r.reduceLink ? ` over ${r.reduceLink}` : ''}\n`,
      );
      if (v && !v.ok) throw new Error(verificationFailure(v));
    });
  });

  addLaunchOptions(
    addGenerateFlags(
      launch
        .command('generate')
        .description('generate text from a GGUF model, each layer split across every node of every host'),
    )
      .option(
        '--host-model <file>',
        "the model's path on the hosts when it differs from --model's (relative: to each executor's directory)",
      )
      .option('--dry-run', "print how the model would be split across the hosts' executors, and stop")
      .option(
        '-i, --interactive',
        'with --chat: a conversation; each line on stdin is a message (-p, when given, the first), each answer printed as it comes; the earlier turns stay in the KV caches of the hosts',
      )
      .addOption(
        new Option(
          '--on-failure <what>',
          'a host lost mid-run (its link or the host): go on with the hosts left (re-plan, reload, rebuild the KV cache) or abort',
        )
          .choices(['continue', 'abort'])
          .default('continue'),
      ),
  ).action(
    async (
      o: GenerateFlags & {
        hostModel?: string;
        dryRun?: boolean;
        interactive?: boolean;
        onFailure: 'continue' | 'abort';
      },
      cmd: Command,
    ) => {
      const lo = merged(cmd);
      checkDraftFlags(o, o.dryRun);
      // Read before the hosts are reached: a large vocabulary takes seconds (see ModelFile).
      const file = readModelFile(o.model);
      file.prepare();
      checkDraftFile(file, o.model, o.draft);
      if (o.dryRun) {
        await onHosts(lo, async (rc) => {
          const plan = planGenerateOn({
            info: file.info,
            ranks: rc.size,
            speeds: rc.speeds,
            places: remotePlaces(rc),
            placement: placementOf(o),
            ...(o.ctx ? { ctx: o.ctx } : {}),
          });
          print(
            lo.json,
            plan,
            [renderModelSplit(plan.split), ...renderMemoryNeeds(plan.memory, plan.memoryShortfall)].join(
              '\n',
            ) + '\n',
          );
        });
        return;
      }
      const hostPath = o.hostModel ? { hostPath: o.hostModel } : {};
      // A draft model runs on this machine's executors (the hosts have the model's): started with
      // the first run, kept when hosts are lost, stopped at the end (below) and on Ctrl-C.
      let side: LocalCluster | undefined;
      const draftOn = o.draft ? async () => (side ??= await startDraftCluster(readTopology())) : undefined;
      const alsoStop = async () => {
        await side?.stop();
      };
      try {
        await answer();
      } finally {
        await alsoStop();
      }
      async function answer(): Promise<void> {
        if (o.interactive) {
          await chatWithFlags(o, (co) => {
            const conversation = new Conversation({ ...co, file });
            return onHosts(
              lo,
              async (rc) => conversation.run(remoteRunner(rc, hostPath), await draftOn?.()),
              o.onFailure === 'abort'
                ? { alsoStop }
                : {
                    alsoStop,
                    onHostLost: (l, left) =>
                      process.stderr.write(
                        `\nredblue: lost host ${l.host} (${l.address}: ${l.reason}); answering again on the ${left.length} host(s) left\n`,
                      ),
                  },
            );
          });
          return;
        }
        await generateWithFlags({ ...o, json: lo.json }, (ro) => {
          const g = new Generation({ ...ro, file });
          return onHosts(
            lo,
            remoteGenerationStep(g, hostPath, draftOn),
            o.onFailure === 'abort'
              ? { alsoStop }
              : {
                  alsoStop,
                  onHostLost: (l, left) => {
                    const r = g.lost(`host ${l.host} (${l.address})`, l.reason, 0);
                    process.stderr.write(
                      `\nredblue: lost ${r.lost} (${l.reason}); going on with the ${left.length} host(s) left\n`,
                    );
                  },
                },
          );
        });
      }
    },
  );

  addLaunchOptions(
    launch
      .command('layer')
      .description('weight-stationary stack of Y = X·Wᵀ passes across the hosts')
      .requiredOption('--n <N>', 'rows of each W (outputs)', posInt('--n'))
      .requiredOption('--k <K>', 'columns of each W (a multiple of 32 for q4_0/q8_0)', posInt('--k'))
      .option('--m <M>', 'rows of X', posInt('--m'), 1)
      .addOption(new Option('--dtype <type>', 'weight type').choices(['q4_0', 'q8_0', 'f32']).default('q4_0'))
      .addOption(
        new Option('--placement <p>', 'weights per node')
          .choices(['auto', 'mirror', 'shard'])
          .default('auto'),
      )
      .option('--layers <L>', 'matrices in the stack', posInt('--layers'), 4)
      .option('--iters <N>', 'passes through the stack', posInt('--iters'), 10)
      .option(
        '--repeats <R>',
        'runs of --iters passes on the placed weights; the fastest is reported (the first run warms caches and connections)',
        posInt('--repeats'),
        1,
      )
      .option('--seed <S>', 'seed for weights and inputs', parseSeed, 1)
      .option('--out <file>', 'write Y of the last pass, (layers·m)×n float32, as .npy'),
  ).action(
    async (
      o: {
        n: number;
        k: number;
        m: number;
        dtype: LayerDType;
        placement: string;
        layers: number;
        iters: number;
        repeats: number;
        seed: number;
        out?: string;
      },
      cmd: Command,
    ) => {
      const problem = rowLengthProblem(o.dtype, o.k);
      if (problem) throw new UsageError(`--k ${o.k} must be ${problem}`);
      const lo = merged(cmd);
      await onHosts(lo, async (rc) => {
        const placement = layerPlacement(rc, o);
        const bar = new Progress('placing weights');
        const r = await runLayers(rc, {
          ...o,
          placement,
          collect: !!o.out,
          onProgress: (done, total) => bar.update(done, total, 'layers'),
        });
        bar.done();
        if (o.out && r.y) writeNpyMatrix(o.out, o.layers * o.m, o.n, r.y);
        print(lo.json, stripArrays(r), `${rc.hosts.length} host(s)\n` + layerSummary(o, r));
      });
    },
  );
}
