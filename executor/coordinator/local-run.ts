// `redblue run` on this box: the host's executors for the length of one workload (always stopped,
// also on Ctrl-C, even during start-up; started again on the nodes left when one dies), and the
// shapes a workload takes from its .npy files.
import type { MachineTopology } from '../../native/topology.js';
import { UsageError } from '../../common/errors.js';
import { LocalCluster } from '../host/local-cluster.js';
import { ExecutorDiedError } from '../host/process-group.js';
import { readNpyArray, readNpyMatrixShape } from './npy.js';
import { checkFinite } from './finite.js';

export interface LocalRunHooks {
  /** Executors started so far, of all. */
  onProgress?: (done: number, total: number) => void;
  /** Called once on SIGINT/SIGTERM/SIGHUP, before the executors stop and the process exits with 130. */
  onInterrupt?: () => void;
  /** The coordinator's preparation while the executors start (LocalClusterOptions.whileStarting). */
  whileStarting?: () => void;
  /** Stops what else the work started (a draft model's executors) beside the cluster, on Ctrl-C too. */
  alsoStop?: () => Promise<void>;
}

/** Starts the executors, runs `work`, and always stops them, also on Ctrl-C (even during start-up). */
export async function withLocalCluster<T>(
  topo: MachineTopology,
  work: (c: LocalCluster) => Promise<T>,
  o: LocalRunHooks = {},
): Promise<T> {
  let cluster: LocalCluster | undefined;
  let interrupted = false;
  const stopAndExit = (c: LocalCluster) =>
    void Promise.allSettled([c.stop(), o.alsoStop?.()]).then(() => process.exit(130));
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    o.onInterrupt?.();
    if (cluster) stopAndExit(cluster);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    o.onProgress?.(0, topo.nodes.length);
    cluster = await LocalCluster.start({
      topology: topo,
      ...(o.whileStarting ? { whileStarting: o.whileStarting } : {}),
    });
    o.onProgress?.(topo.nodes.length, topo.nodes.length);
    if (interrupted) {
      stopAndExit(cluster);
      return await new Promise<never>(() => undefined);
    }
    return await work(cluster);
  } catch (err) {
    // after Ctrl-C, failures of the work are just the executors going away
    if (interrupted) return await new Promise<never>(() => undefined);
    throw err;
  } finally {
    if (!interrupted) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onSignal);
      await cluster?.stop();
    }
  }
}

/** One executor lost, and the work taken up again on the rest. */
export interface Recovery {
  /** Its rank and cpus in the run it was lost from, and why. */
  lostRank: number;
  lostCpus: number[];
  reason: string;
  /** When (ISO time). */
  at: string;
  /** Executors left. */
  executors: number;
  /** From the loss to the survivors ready to go on (started, and what `work` counts as ready). */
  seconds: number;
}

export interface SurvivorOptions {
  hooks?: LocalRunHooks;
  /** 'continue' (default): go on without a lost executor; 'abort': fail. */
  onFailure?: 'continue' | 'abort';
  /** Refuses (throws) survivors that cannot take the work up, e.g. too little memory. */
  check?: (left: MachineTopology['nodes'], lost: ExecutorDiedError) => void;
  /** Called at each loss, before the work starts again (seconds still 0). */
  onLost?: (r: Recovery) => void;
}

/**
 * withLocalCluster that survives lost executors: when one dies (its process, or its node taken
 * away), the executors are stopped, started again on the nodes left and `work` runs again there
 * (`recoveries` lists the losses so far; `work` keeps whatever state lets it go on where it was
 * and may set the last recovery's seconds once it is ready). Every node lost: an error.
 */
export async function withSurvivors<T>(
  topo: MachineTopology,
  work: (c: LocalCluster, recoveries: Recovery[]) => Promise<T>,
  o: SurvivorOptions = {},
): Promise<T> {
  let topology = topo;
  const recoveries: Recovery[] = [];
  let lostAt = 0;
  for (;;) {
    try {
      return await withLocalCluster(
        topology,
        (c) => {
          if (recoveries.length) recoveries.at(-1)!.seconds = (performance.now() - lostAt) / 1e3;
          return work(c, recoveries);
        },
        o.hooks,
      );
    } catch (e) {
      if (!(e instanceof ExecutorDiedError) || o.onFailure === 'abort') throw e;
      lostAt = performance.now();
      const node = topology.nodes[e.rank];
      const left = topology.nodes.filter((_, i) => i !== e.rank);
      if (!node || left.length === 0)
        throw new Error(`${e.message}, and no executor is left to go on with`, { cause: e });
      o.check?.(left, e);
      recoveries.push({
        lostRank: e.rank,
        lostCpus: node.cpus,
        reason: e.reason,
        at: new Date().toISOString(),
        executors: left.length,
        seconds: 0,
      });
      o.onLost?.(recoveries.at(-1)!);
      topology = { ...topology, nodes: left };
    }
  }
}

/**
 * m, n and k of a gemm from the flags and A's and B's files (headers only): a file gives the
 * dimensions it holds, a flag the ones no file gives; a flag that disagrees with a file, or two
 * files that disagree on k, is an error naming both.
 */
export function gemmShape(o: { m?: number; n?: number; k?: number; a?: string; b?: string }): {
  m: number;
  n: number;
  k: number;
} {
  const a = o.a ? readNpyMatrixShape(o.a) : undefined;
  const b = o.b ? readNpyMatrixShape(o.b) : undefined;
  if (a && b && a.cols !== b.rows) {
    throw new UsageError(
      `${o.a} is ${a.rows}×${a.cols} but ${o.b} is ${b.rows}×${b.cols}: A's columns (k) must equal B's rows`,
    );
  }
  const from = (
    flag: '--m' | '--n' | '--k',
    given: number | undefined,
    file: string | undefined,
    size?: { rows: number; cols: number },
    got?: number,
  ) => {
    if (got !== undefined && given !== undefined && given !== got) {
      throw new UsageError(
        `${flag} ${given} disagrees with ${file}, which is ${size!.rows}×${size!.cols} (${flag.slice(2)} = ${got}): drop ${flag} or fix the file`,
      );
    }
    const v = got ?? given;
    if (v === undefined)
      throw new UsageError(
        `run gemm needs ${flag} (or a file that gives it: --a A.npy is m×k, --b B.npy is k×n)`,
      );
    return v;
  };
  return {
    m: from('--m', o.m, o.a, a, a?.rows),
    n: from('--n', o.n, o.b, b, b?.cols),
    k: a ? from('--k', o.k, o.a, a, a.cols) : from('--k', o.k, o.b, b, b?.rows),
  };
}

/** n, k and layers from the flags, or from a weights file (whose shape the flags must match). */
export function layerShape(o: {
  n?: number;
  k?: number;
  layers: number;
  weights?: string;
  allowNonFinite?: boolean;
}): {
  n: number;
  k: number;
  layers: number;
  weights?: Float32Array;
} {
  if (!o.weights) {
    if (o.n === undefined || o.k === undefined) {
      throw new UsageError('run layer needs --n and --k (or --weights FILE.npy)');
    }
    return { n: o.n, k: o.k, layers: o.layers };
  }
  const w = readNpyArray(o.weights);
  if (w.shape.length !== 2 && w.shape.length !== 3) {
    throw new UsageError(
      `${o.weights}: weights must be n×k or layers×n×k, got shape (${w.shape.join(', ')})`,
    );
  }
  const [layers, n, k] =
    w.shape.length === 3 ? (w.shape as [number, number, number]) : [1, w.shape[0]!, w.shape[1]!];
  for (const [flag, want, got] of [
    ['--n', o.n, n],
    ['--k', o.k, k],
  ] as const) {
    if (want !== undefined && want !== got) {
      throw new UsageError(
        `${flag} ${want} does not match ${o.weights}, which holds ${layers}×${n}×${k} weights`,
      );
    }
  }
  checkFinite(`the weights (${o.weights})`, w.data, k, o.allowNonFinite);
  return { n, k, layers, weights: w.data };
}
