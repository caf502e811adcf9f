// `redblue serve` end to end: one executor per (virtual) NUMA node of this machine, or of every
// host of a hostfile / host list; the model's split loaded once, then the HTTP server until
// SIGTERM or SIGINT, which stop taking requests, let the running and queued ones finish, and stop
// the executors (and the hosts' sessions).
import { UsageError } from '../common/errors.js';
import { isLoopback } from '../common/address.js';
import type { MachineTopology } from '../native/topology.js';
import { LocalCluster } from '../executor/host/local-cluster.js';
import { readTopology } from '../native/topology.js';
import {
  checkDraftFile,
  draftTokensOf,
  loadDrafter,
  startDraftCluster,
  type DraftOptions,
} from '../executor/coordinator/draft.js';
import { withHosts, type HostsOptions } from '../executor/coordinator/hosts.js';
import { remoteRunner } from '../executor/coordinator/remote-generate.js';
import {
  loadModel,
  localRunner,
  readModelFile,
  type LoadedModel,
  type ModelFile,
  type ModelRunner,
} from '../executor/coordinator/generate.js';
import type { Server } from 'node:http';
import { listenWhileLoading, startServer, type RunningServer } from './http.js';

export interface ServeRunOptions {
  model: string;
  /** This machine's executors (one per node)… */
  topology?: MachineTopology;
  /** …or the hosts of a hostfile / host list, each with its executors. */
  hosts?: Omit<HostsOptions, 'handleSignals'>;
  /** The model's path on the hosts when it differs from `model`. */
  hostModel?: string;
  ctx?: number;
  /** Sequences decoded together (KV slots on every executor); default 4. */
  parallel?: number;
  /** Prompt tokens per step while other streams decode. */
  prefillChunk?: number;
  /** Prompt lookup: tokens a decoding stream may draft a step (0: off). */
  lookup?: number;
  /** With lookup: draft from earlier requests' texts too (BatcherOptions.lookupShared). */
  lookupShared?: boolean;
  /**
   * A draft model (serve --draft) on executors of its own on this machine, guessing for a stream
   * that decodes alone (BatcherOptions.modelDrafter).
   */
  draft?: DraftOptions;
  host: string;
  port: number;
  apiKey?: string;
  /** The name /v1/models lists (default: the file's name). */
  modelName: string;
  onProgress?: (done: number, total: number) => void;
  /** Called once the server listens. */
  onListening?: (s: { port: number; model: LoadedModel; template: string }) => void;
  log?: (line: string) => void;
}

export async function serve(o: ServeRunOptions): Promise<void> {
  if (!isLoopback(o.host) && !o.apiKey)
    throw new UsageError(
      `--host ${o.host} is reachable from other machines: give --api-key K (clients send Authorization: Bearer K)`,
    );
  if (!o.topology === !o.hosts) throw new UsageError('serve runs on this machine or on hosts, not both');
  const file = readModelFile(o.model);
  checkDraftFile(file, o.model, o.draft?.path);
  // The port first: one that is taken fails now, not after a load of minutes; meanwhile the
  // server answers that the model is loading.
  const listening = await listenWhileLoading(o.host, o.port);
  let stop: (() => void) | undefined;
  const stopped = new Promise<string>((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    const term = on('SIGTERM');
    const int = on('SIGINT');
    process.once('SIGTERM', term);
    process.once('SIGINT', int);
    stop = () => {
      process.off('SIGTERM', term);
      process.off('SIGINT', int);
    };
  });
  // The draft model's executors: this machine's nodes (the hosts', with --hostfile, run the model).
  let side: LocalCluster | undefined;
  try {
    if (o.draft) side = await startDraftCluster(o.topology ?? readTopology());
    if (o.hosts) {
      file.prepare(); // before the hosts are reached (see ModelFile)
      await withHosts({ ...o.hosts, handleSignals: false }, (rc) =>
        serveOn(
          remoteRunner(rc, o.hostModel ? { hostPath: o.hostModel } : {}),
          file,
          o,
          stopped,
          listening,
          side,
        ),
      );
      return;
    }
    const cluster = await LocalCluster.start({ topology: o.topology!, whileStarting: () => file.prepare() });
    try {
      await serveOn(localRunner(cluster), file, o, stopped, listening, side);
    } finally {
      await cluster.stop();
    }
  } finally {
    stop?.();
    await side?.stop();
    if (listening.listening) listening.close();
  }
}

/** Loads the model on the runner's executors and serves until a signal, then drains. */
async function serveOn(
  runner: ModelRunner,
  file: ModelFile,
  o: ServeRunOptions,
  stopped: Promise<string>,
  listening: Server,
  draftOn?: LocalCluster,
) {
  const parallel = o.parallel ?? 4;
  const model = await loadModel(runner, {
    path: o.model,
    file,
    ...(o.ctx ? { ctx: o.ctx } : {}),
    // Several slots: row-invariant kernels, so a stream's tokens do not depend on its neighbours.
    slots: parallel,
    batchInvariant: parallel > 1,
    ...(draftTokensOf(o) ? { draftTokens: draftTokensOf(o) } : {}),
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  });
  // Requests bring their own logit biases: the draft guesses without them.
  const modelDrafter = o.draft && draftOn ? await loadDrafter(draftOn, o.draft, model, o.model) : undefined;
  let server: RunningServer | undefined;
  try {
    server = await startServer({
      runner,
      model,
      chat: file.chat,
      modelName: o.modelName,
      host: o.host,
      port: o.port,
      listening,
      ...(o.apiKey ? { apiKey: o.apiKey } : {}),
      ...(o.prefillChunk ? { prefillChunk: o.prefillChunk } : {}),
      ...(o.lookup ? { lookup: o.lookup } : {}),
      ...(o.lookupShared ? { lookupShared: true } : {}),
      ...(modelDrafter ? { modelDrafter } : {}),
      ...(o.log ? { log: o.log } : {}),
    });
    const template =
      file.chat.source.kind === 'file' ? "the file's chat template" : `ChatML (${file.chat.source.why})`;
    o.onListening?.({ port: server.port, model, template });
    const sig = await stopped;
    o.log?.(`${sig}: finishing the requests in hand, then stopping`);
    await server.drain();
  } finally {
    server?.server.close();
  }
}
