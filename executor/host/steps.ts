// Step dispatch on one host: each request of a session, checked, handed to every node executor
// of the host (ranks numbered inside the host), their replies gathered. What a step does lives in
// the node executors and native code; this only fans out and validates.
import { rowLengthProblem } from '../../native/kernels.js';
import { MAX_SEQUENCES } from '../../native/model.js';
import * as grpc from '@grpc/grpc-js';
import { accessSync, constants as fsConstants } from 'node:fs';
import { resolve } from 'node:path';
import type { MachineTopology } from '../../native/topology.js';
import type { SharedArea } from '../../transport/shared-area.js';
import { callMessage, RpcError } from '../../transport/grpc-data.js';
import type {
  HostForwardRequest,
  HostGemmRequest,
  HostLoadModelRequest,
  HostPlaceRequest,
  HostRunRequest,
} from '../../transport/host-client.js';
import type { CrossHost, SeqRunMsg } from '../../transport/control.js';
import { brickFromWire, rangeToWire, type WireBrick } from '../../transport/bricks.js';
import { cRowsOf, partialBytesOf, planChunks } from '../node/gemm-layout.js';
import type { LocalCluster } from './local-cluster.js';
import { byteRange, int, invalid, list, MAX_DIM, oneOf, range } from './host-validate.js';

/** Most ranks a plan may name, and bricks per rank, in one request. */
const MAX_RANKS = 4096;
const MAX_BRICKS = 1 << 16;

/**
 * What a step needs of the session it runs in: the host's executors, and its place among the
 * hosts (a supervisor's session, or the coordinator's own host for `redblue run`).
 */
export interface StepContext {
  readonly cluster: LocalCluster;
  hostRanks(req: StepRanks): Promise<{ first: number; hosts?: CrossHost }>;
}

/** Where a multi-host step's ranks lie, as its request says. */
export interface StepRanks {
  world: number;
  firstRank: number;
  hostFirstRanks: number[];
  run: string;
}

export class HostSteps {
  constructor(private readonly topology: MachineTopology) {}

  private get nodes(): number {
    return this.topology.nodes.length;
  }

  async gemm(s: StepContext, area: SharedArea, req: HostGemmRequest) {
    const m = int('m', req.m, 1, MAX_DIM);
    const n = int('n', req.n, 1, MAX_DIM);
    const k = int('k', req.k, 1, MAX_DIM);
    const total = area.bytes;
    byteRange('A', req.aOffset, m * k * 4, total, 4);
    byteRange('B', req.bOffset, k * n * 4, total, 4);
    byteRange('C', req.cOffset, m * n * 4, total, 4);
    // A recovery step lists the plan's bricks of every rank it had, which may be more than the
    // nodes left; each node then computes the chunks of its own list.
    const redo = req.redoChunks?.length
      ? list<{ chunks: unknown[] }>('redoChunks', req.redoChunks, this.nodes)
      : undefined;
    if (redo && redo.length !== this.nodes)
      throw invalid(`redoChunks must give one list per node (${this.nodes})`);
    const owners = redo ? MAX_RANKS : this.nodes;
    const perNode = list<{ node: number; bricks: unknown[] }>('bricks', req.bricks, owners);
    const bricks: WireBrick[][] = [];
    for (const e of perNode) {
      const node = int('node', e.node, 0, owners - 1);
      while (bricks.length <= node) bricks.push([]);
      for (const b of list<{ m: unknown; n: unknown; k: unknown }>('bricks', e.bricks, MAX_BRICKS)) {
        const br = { m: range('brick.m', b.m, m), n: range('brick.n', b.n, n), k: range('brick.k', b.k, k) };
        bricks[node]!.push(br);
      }
    }
    while (bricks.length < this.nodes) bricks.push([]);
    const planned = bricks.map((b) => b.map(brickFromWire));
    const chunks = planChunks(
      planned.map((b, rank) => ({ rank, bricks: b })),
      0,
      k,
    );
    byteRange('partial C', req.partialOffset, partialBytesOf(planned, k), total, 4);
    const doneOffset = req.doneOffset ? int('doneOffset', req.doneOffset, 0, total) : 0;
    if (doneOffset) byteRange('done', doneOffset, chunks.length * 4, total, 4);
    const redoChunks = redo?.map((r, i) =>
      list<number>(`redoChunks[${i}]`, r.chunks, chunks.length).map((c) =>
        int('chunk', c, 0, chunks.length - 1),
      ),
    );
    if (redoChunks && !doneOffset) throw invalid('a recovery step needs the done array (doneOffset)');
    const allBricks = bricks.map((b, rank) => ({ rank, bricks: b }));
    const P = this.nodes;
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, rank) =>
          c.gemm({
            m,
            n,
            k,
            bricks: redoChunks ? [] : bricks[rank]!,
            allBricks,
            aOffset: req.aOffset,
            bOffset: req.bOffset,
            cOffset: req.cOffset,
            partialOffset: req.partialOffset,
            // Rows of C are reduced by every executor, idle in the plan or not.
            cRows: rangeToWire(cRowsOf(rank, P, m)),
            ...(doneOffset ? { doneOffset } : {}),
            ...(redoChunks ? { redo: true, redoChunks: redoChunks[rank]! } : {}),
          }),
        ),
      ),
    );
    return { ranks: replies };
  }

  /** `area`: the staging area, needed when the weights come from it. */
  async placeLayers(s: StepContext, area: () => SharedArea, req: HostPlaceRequest) {
    const dtype = oneOf('dtype', req.dtype, ['q4_0', 'q8_0', 'f32'] as const);
    const n = int('n', req.n, 1, MAX_DIM);
    const k = int('k', req.k, 1, MAX_DIM);
    const problem = rowLengthProblem(dtype, k);
    if (problem) throw invalid(`k = ${k} must be ${problem}`);
    const layers = int('layers', req.layers, 1, 1 << 16);
    const count = int('count', req.count, 1, layers);
    int('seed', req.seed, 0, Number.MAX_SAFE_INTEGER);
    const placement = list<string>('placement', req.placement, this.nodes);
    if (placement.length !== this.nodes)
      throw invalid(`placement must name one mode per node (${this.nodes})`);
    placement.forEach((p) => oneOf('placement', p, ['mirror', 'shard'] as const));
    const rowsPerRank = list<number>('rowsPerRank', req.rowsPerRank, 1 << 16).map((r) =>
      int('rowsPerRank', r, 0, n),
    );
    if (rowsPerRank.reduce((a, b) => a + b, 0) !== n) throw invalid(`rowsPerRank must add up to n = ${n}`);
    const first = int('firstRank', req.firstRank, 0, Math.max(0, rowsPerRank.length - this.nodes));
    if (first + this.nodes > rowsPerRank.length) throw invalid("this host's ranks lie outside rowsPerRank");
    const fromStaging = req.fromStaging === true;
    const sourceOffset = fromStaging ? (req.sourceOffset ?? 0) : 0;
    if (fromStaging) byteRange('weights', sourceOffset, count * n * k * 4, area().bytes, 4);
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, i) => {
          const g = first + i;
          const lo = rowsPerRank.slice(0, g).reduce((a, b) => a + b, 0);
          return c.placeLayers({
            dtype,
            n,
            k,
            layers,
            seed: req.seed,
            placement: placement[i]!,
            rows: { lo, hi: lo + rowsPerRank[g]! },
            count,
            rowsPerRank,
            fresh: req.fresh,
            fromStaging,
            sourceOffset,
          });
        }),
      ),
    );
    return { ranks: replies };
  }

  /** `area`: the staging area, needed when the request collects Y. */
  async runLayers(s: StepContext, area: () => SharedArea, req: HostRunRequest) {
    const m = int('m', req.m, 1, 1 << 16);
    const iters = int('iters', req.iters, 1, 1 << 20);
    int('seed', req.seed, 0, Number.MAX_SAFE_INTEGER);
    const { first, hosts } = await s.hostRanks(req);
    // Rows follow the ranks' speed only within one host (the leaders' exchange has fixed sizes).
    const balance = req.balance === true;
    if (balance && hosts) throw invalid('balance runs on one host only');
    if (req.collect) {
      const a = area();
      int('yOffset', req.yOffset, 0, a.bytes);
      int('xOffset', req.xOffset, 0, a.bytes);
    }
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, i) =>
          c.runLayers({
            m,
            iters,
            seed: req.seed,
            yOffset: req.yOffset,
            xOffset: req.xOffset,
            collect: req.collect && first + i === 0,
            balance,
            ...(hosts ? { hosts } : {}),
          }),
        ),
      ),
    );
    return { ranks: replies };
  }

  /**
   * Each executor of the host loads its split of the model. The file is this host's: a path
   * that is not readable here fails at once, naming the host and the path, before any executor
   * starts reading. (An authenticated caller may name any file; only logits ever leave.)
   */
  async loadModel(s: StepContext, req: HostLoadModelRequest) {
    if (typeof req.path !== 'string' || req.path.length === 0 || req.path.length > 4096)
      throw invalid('path must name the GGUF file');
    const path = resolve(req.path);
    try {
      accessSync(path, fsConstants.R_OK);
    } catch (e) {
      throw new RpcError(
        grpc.status.NOT_FOUND,
        `the model ${path} is not readable on ${this.topology.hostname} (${(e as NodeJS.ErrnoException).code ?? callMessage(e)}): copy it there or give its path on the hosts with --host-model`,
      );
    }
    const ctx = int('ctx', req.ctx, 1, 1 << 24);
    const world = int('world', req.world, 1, 1 << 16);
    const first = int('firstRank', req.firstRank, 0, world - this.nodes);
    const ranks = list<HostLoadModelRequest['ranks'][number]>('ranks', req.ranks, this.nodes);
    if (ranks.length !== this.nodes) throw invalid(`ranks must give one split per node (${this.nodes})`);
    const span = (name: string, r: unknown) => {
      const x = r as Partial<{ lo: number; hi: number }> | null;
      if (!x || typeof x !== 'object') throw invalid(`${name} is missing`);
      const lo = int(`${name}.lo`, x.lo, 0, MAX_DIM);
      const hi = int(`${name}.hi`, x.hi, lo, MAX_DIM);
      return { lo, hi };
    };
    const slots = req.slots ? int('slots', req.slots, 1, MAX_SEQUENCES) : 1;
    const batchInvariant = req.batchInvariant === true;
    const invariantTokens = int('invariantTokens', req.invariantTokens ?? 0, 0, MAX_SEQUENCES);
    const mirrorEmbeddings = req.mirrorEmbeddings === true;
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, i) => {
          const r = ranks[i]!;
          const vocabPerRank = list<number>('vocabPerRank', r.vocabPerRank, world).map((v) =>
            int('vocabPerRank', v, 0, MAX_DIM),
          );
          if (vocabPerRank.length !== world) throw invalid(`vocabPerRank must list all ${world} ranks`);
          return c.loadModel({
            path,
            ctx,
            kvHeads: span('kvHeads', r.kvHeads),
            ff: span('ff', r.ff),
            vocab: span('vocab', r.vocab),
            vocabPerRank,
            rank: first + i,
            world,
            slots,
            batchInvariant,
            invariantTokens,
            mirrorEmbeddings,
          });
        }),
      ),
    );
    return { ranks: replies };
  }

  async loadProgress(s: StepContext) {
    return {
      ranks: await s.cluster.guard(Promise.all(s.cluster.clients.map((c) => c.loadProgress({}, 5000)))),
    };
  }

  /** One step of the model on every executor of the host; global rank 0 sends the logits. */
  async forward(s: StepContext, req: HostForwardRequest) {
    const { first, hosts } = await s.hostRanks(req);
    const tokens = list<number>('tokens', req.tokens, 1 << 16).map((t) => int('token', t, 0, 0x7fffffff));
    if (tokens.length === 0) throw invalid('tokens must not be empty');
    const pos = int('pos', req.pos, 0, 1 << 24);
    const logits = oneOf('logits', req.logits, ['last', 'all', 'none'] as const);
    const runs = list<SeqRunMsg>('runs', req.runs ?? [], MAX_SEQUENCES).map((r, i) => {
      if (!r || typeof r !== 'object') throw invalid(`runs[${i}] is missing`);
      return {
        slot: int(`runs[${i}].slot`, r.slot, 0, MAX_SEQUENCES - 1),
        pos: int(`runs[${i}].pos`, r.pos, 0, 1 << 24),
        count: int(`runs[${i}].count`, r.count, 1, 1 << 16),
        logits: r.logits === true,
        logitRows: int(`runs[${i}].logitRows`, r.logitRows ?? 0, 0, MAX_SEQUENCES),
        fromSlot: int(`runs[${i}].fromSlot`, r.fromSlot ?? 0, 0, MAX_SEQUENCES),
        hidden: r.hidden === true,
      };
    });
    if (runs.length && runs.reduce((a, r) => a + r.count, 0) !== tokens.length)
      throw invalid('runs must hold exactly the step’s tokens');
    // A row of logits is the vocabulary's size: a step returns at most a row a slot.
    if (runs.reduce((a, r) => a + Math.max(r.logitRows, r.logits ? 1 : 0), 0) > MAX_SEQUENCES)
      throw invalid(`a step returns at most ${MAX_SEQUENCES} rows of logits`);
    const replies = await s.cluster.guard(
      Promise.all(
        s.cluster.clients.map((c, i) =>
          c.forward({
            tokens,
            pos,
            logits,
            sendLogits: first + i === 0,
            ...(hosts ? { hosts } : {}),
            ...(runs.length ? { runs } : {}),
          }),
        ),
      ),
    );
    return { ranks: replies };
  }
}
