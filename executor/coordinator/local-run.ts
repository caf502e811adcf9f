// `redblue run` on this box: the host's executors for the length of one workload (always stopped,
// also on Ctrl-C, even during start-up), and the shapes a workload takes from its .npy files.
import type { MachineTopology } from '../../native/topology.js';
import { UsageError } from '../../common/errors.js';
import { LocalCluster } from '../host/local-cluster.js';
import { readNpyArray } from './npy.js';

export interface LocalRunHooks {
  /** Executors started so far, of all. */
  onProgress?: (done: number, total: number) => void;
  /** Called once on SIGINT/SIGTERM/SIGHUP, before the executors stop and the process exits with 130. */
  onInterrupt?: () => void;
}

/** Starts the executors, runs `work`, and always stops them, also on Ctrl-C (even during start-up). */
export async function withLocalCluster<T>(
  topo: MachineTopology,
  work: (c: LocalCluster) => Promise<T>,
  o: LocalRunHooks = {},
): Promise<T> {
  let cluster: LocalCluster | undefined;
  let interrupted = false;
  const stopAndExit = (c: LocalCluster) => void c.stop().then(() => process.exit(130));
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
    cluster = await LocalCluster.start({ topology: topo });
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

/** n, k and layers from the flags, or from a weights file (whose shape the flags must match). */
export function layerShape(o: { n?: number; k?: number; layers: number; weights?: string }): {
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
  return { n, k, layers, weights: w.data };
}
