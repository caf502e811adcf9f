// `redblue launch generate`: the model's split over every rank of every host. Each host's
// supervisor has its executors load their parts from the file as that host sees it; a Forward
// runs every layer natively on every rank with each all-reduce and all-gather spanning the hosts
// (shared memory inside a host, the host leaders over gRPC), and the first host's rank 0 returns
// the logits. Generation itself is generate.ts's, unchanged: this is only a ModelRunner.
import { randomBytes } from 'node:crypto';
import { allHosts, type RemoteCluster } from './remote-cluster.js';
import { logitsOf, type ModelRunner, type RankPlace } from './generate.js';
import { logitRows } from '../../native/model.js';
import type { Generation, GenerateRun } from './generate-run.js';
import type { LocalCluster } from '../host/local-cluster.js';

export interface RemoteRunnerOptions {
  /** The model's path on the hosts when it differs from the coordinator's (relative: to each host's executor directory). */
  hostPath?: string;
}

/**
 * Each global rank's host, memory node and cpus, as the host's hello reported its nodes (a
 * rank's executor runs on its host's node of the same index). Ranks of one memory node share its
 * bandwidth (the split's rates); the hosts tell the planner that the logits' gather crosses
 * between hosts.
 */
export function remotePlaces(rc: RemoteCluster): RankPlace[] {
  return rc.hellos.flatMap((h, host) =>
    h.nodes.map((n) => ({
      host,
      memoryNode: n.physicalNode,
      cpus: n.cpus.length,
      memoryBytes: Number(n.memoryBytes),
      ...(Number(n.availableBytes) > 0
        ? {
            availableBytes: Number(n.availableBytes),
            hugeFreeBytes: Number(n.hugeFreeBytes),
            hugePageBytes: Number(n.hugePageBytes) || 2 << 20,
          }
        : {}),
    })),
  );
}

/** Every host's executors as one ModelRunner (global ranks: host 0's first). */
export function remoteRunner(rc: RemoteCluster, o: RemoteRunnerOptions = {}): ModelRunner {
  const first = rc.hostFirstRanks;
  const world = rc.size;
  // One run per loaded model: its exchanges are numbered across all of its steps, so the
  // supervisors can ask for the next one ahead of time, step after step.
  const run = `g${randomBytes(4).toString('hex')}`;
  return {
    ranks: world,
    speeds: rc.speeds,
    places: remotePlaces(rc),
    async load(reqs) {
      // The executors join their host's shared-memory group (the host-local half of each exchange).
      await rc.guard(Promise.all(rc.hosts.map((c) => c.stage(64))));
      const replies = await rc.guard(
        Promise.all(
          rc.hosts.map((c, h) =>
            c.loadModel({
              path: o.hostPath ?? reqs[0]!.path,
              ctx: reqs[0]!.ctx,
              firstRank: first[h]!,
              world,
              slots: reqs[0]!.slots || 1,
              batchInvariant: reqs[0]!.batchInvariant ?? false,
              invariantTokens: reqs[0]!.invariantTokens ?? 0,
              mirrorEmbeddings: reqs[0]!.mirrorEmbeddings ?? false,
              ranks: reqs.slice(first[h]!, first[h + 1]!).map((r) => ({
                kvHeads: r.kvHeads,
                ff: r.ff,
                vocab: r.vocab,
                vocabPerRank: r.vocabPerRank,
              })),
            }),
          ),
        ),
      );
      return replies.flatMap((r) => r.ranks);
    },
    async loadProgress() {
      const ps = await Promise.all(
        rc.hosts.map((c, h) =>
          c.loadProgress(5000).then(
            (r) => r.ranks,
            () => Array.from({ length: first[h + 1]! - first[h]! }, () => undefined),
          ),
        ),
      );
      return ps.flat();
    },
    async forward(tokens, pos, logits, _send, into) {
      const replies = await rc.guard(
        allHosts(
          rc.hosts.map((c, h) =>
            c.forward({ tokens, pos, logits, firstRank: first[h]!, world, run, hostFirstRanks: first }),
          ),
        ),
      );
      const ranks = replies.flatMap((r) => r.ranks);
      return { logits: logitsOf(ranks[0]!.logits, into), replies: ranks };
    },
    async step(tokens, runs, into) {
      const replies = await rc.guard(
        allHosts(
          rc.hosts.map((c, h) =>
            c.forward({
              tokens,
              pos: 0,
              logits: 'none',
              runs: runs.map(({ from, ...r }) => ({
                ...r,
                logits: logitRows(r) > 0,
                logitRows: logitRows(r),
                fromSlot: from === undefined ? 0 : from + 1,
              })),
              firstRank: first[h]!,
              world,
              run,
              hostFirstRanks: first,
            }),
          ),
        ),
      );
      const ranks = replies.flatMap((r) => r.ranks);
      const all = logitsOf(ranks[0]!.logits, into);
      const rows = runs.reduce((a, r) => a + logitRows(r), 0);
      const n = rows ? all.length / rows : 0;
      return {
        logits: Array.from({ length: rows }, (_, i) => all.subarray(i * n, (i + 1) * n)),
        replies: ranks,
      };
    },
  };
}

/**
 * A generation on the hosts' executors (their sessions are the caller's): a Generation, so that the
 * hosts left after a loss take it up again (withHosts' onHostLost). `draftOn`: a draft model's
 * executors on the coordinator's machine (launch generate --draft).
 */
export function remoteGenerationStep(
  g: Generation,
  o: RemoteRunnerOptions,
  draftOn?: () => Promise<LocalCluster | undefined>,
): (rc: RemoteCluster) => Promise<GenerateRun> {
  return async (rc) => g.run(remoteRunner(rc, o), await draftOn?.());
}
