// The node executor's part of running a model: read the GGUF header (never the weights: the
// native shard maps the file and copies its own slices into node-local memory), build the
// native configuration for this rank's split, load it, and run tokens through it, one native
// step per call (every layer, every all-reduce).
import type { NativeThreadPool } from '../../native/addon.js';
import { modelAddon, type ModelShardConfig, type NativeModelShard } from '../../native/model.js';
import { readGguf } from '../../model/gguf/read.js';
import { describeModel } from '../../model/arch.js';
import type {
  ForwardReply,
  ForwardRequest,
  LoadModelReply,
  LoadModelRequest,
  LoadProgressReply,
} from '../../transport/control.js';

/** The native configuration of one rank's shard, from the file's header and the split. */
export function shardConfig(
  req: LoadModelRequest,
  rank: number,
  ranks: number,
  node: number,
): ModelShardConfig {
  // The tokenizer's strings are the coordinator's business: only their count is needed here.
  const gguf = readGguf(req.path, { strings: 'count' });
  const info = describeModel(gguf);
  if (req.ctx < 1) throw new Error(`the context must hold at least one position, got ${req.ctx}`);
  if (req.ctx > info.nCtxTrain) {
    throw new Error(
      `a context of ${req.ctx} positions exceeds what ${req.path} was trained for (${info.nCtxTrain}); use --ctx ${info.nCtxTrain} or less`,
    );
  }
  return {
    path: req.path,
    node,
    arch: info.arch,
    nLayer: info.nLayer,
    nEmbd: info.nEmbd,
    nHead: info.nHead,
    nHeadKv: info.nHeadKv,
    headDim: info.headDim,
    nFf: info.nFf,
    nVocab: info.nVocab,
    nCtx: req.ctx,
    normEps: info.rmsEps,
    ropeBase: info.ropeFreqBase,
    ropeScale: info.ropeScaling.factor,
    ropeNeox: info.ropeOrdering === 'neox',
    tensors: gguf.tensors.map((t) => ({ name: t.name, type: t.type.id, dims: [...t.ne], offset: t.offset })),
    split: {
      rank,
      ranks,
      kvHeads: [req.kvHeads.lo, req.kvHeads.hi],
      ff: [req.ff.lo, req.ff.hi],
      vocab: [req.vocab.lo, req.vocab.hi],
      vocabPerRank: req.vocabPerRank,
    },
    slots: req.slots || 1,
    batchInvariant: req.batchInvariant ?? false,
    invariantTokens: req.invariantTokens ?? 0,
    mirrorEmbeddings: req.mirrorEmbeddings ?? false,
  };
}

export class ModelSteps {
  private shard: NativeModelShard | undefined;
  private nVocab = 0;
  private progress: LoadProgressReply = { done: 0, total: 0 };

  constructor(
    private readonly rank: number,
    private readonly ranks: number,
    private readonly node: number,
  ) {}

  async load(req: LoadModelRequest, pool: NativeThreadPool): Promise<LoadModelReply> {
    this.release();
    // Across hosts the supervisor names the global rank; on one host it is ours.
    const cfg = req.world
      ? shardConfig(req, req.rank ?? 0, req.world, this.node)
      : shardConfig(req, this.rank, this.ranks, this.node);
    this.progress = { done: 0, total: 0 }; // bytes copied of the shard's total, as load reports
    const shard = new (modelAddon().ModelShard)(cfg);
    try {
      const r = await shard.load(pool, (done, total) => {
        this.progress = { done, total };
      });
      this.shard = shard;
      this.nVocab = cfg.nVocab;
      return r;
    } catch (e) {
      shard.release();
      throw e;
    }
  }

  /** Runs the steps posted in the staging area's doorbell, on this rank's pool, until stopped. */
  startLoop(pool: NativeThreadPool, peers: unknown, staging: ArrayBuffer): void {
    if (!this.shard) throw new Error(`executor rank ${this.rank}: loadModel first`);
    this.shard.startStepLoop(pool, peers, staging, this.rank);
  }

  /** Before the staging area goes: the loop reads it. */
  stopLoop(): void {
    this.shard?.stopStepLoop();
  }

  loadProgress(): LoadProgressReply {
    return this.progress;
  }

  /** `staging`: the host's staging area, where logits go when the request says so. */
  async forward(
    req: ForwardRequest,
    pool: NativeThreadPool,
    peers: unknown,
    staging?: ArrayBuffer,
  ): Promise<ForwardReply> {
    if (!this.shard) throw new Error(`executor rank ${this.rank}: loadModel first`);
    if (req.runs?.length) {
      const runs = req.runs.map(({ fromSlot, logitRows, ...r }) => ({
        ...r,
        logits: logitRows || r.logits,
        ...(fromSlot ? { from: fromSlot - 1 } : {}),
      }));
      const r = await this.shard.forwardRuns(pool, peers, Int32Array.from(req.tokens), runs);
      return {
        logits:
          req.sendLogits && r.logits
            ? new Uint8Array(r.logits.buffer, r.logits.byteOffset, r.logits.byteLength)
            : new Uint8Array(),
        computeSeconds: r.computeSeconds,
        exchangeSeconds: r.exchangeSeconds,
        allReduces: r.allReduces,
        seconds: r.seconds,
      };
    }
    const toStaging = req.sendLogits && req.logitsToStaging && req.logits === 'last';
    if (toStaging && (!staging || staging.byteLength < modelAddon().doorbellBytes + this.nVocab * 4))
      throw new Error(
        `executor rank ${this.rank}: the staging area (${staging?.byteLength ?? 0} bytes) cannot take ${this.nVocab * 4} bytes of logits`,
      );
    const r = await this.shard.forward(
      pool,
      peers,
      Int32Array.from(req.tokens),
      req.pos,
      req.logits,
      toStaging ? new Float32Array(staging!, modelAddon().doorbellBytes, this.nVocab) : undefined,
    );
    let logits: Uint8Array = new Uint8Array();
    if (req.sendLogits && r.logits && !toStaging)
      logits = new Uint8Array(r.logits.buffer, r.logits.byteOffset, r.logits.byteLength);
    return {
      logits,
      computeSeconds: r.computeSeconds,
      exchangeSeconds: r.exchangeSeconds,
      allReduces: r.allReduces,
      seconds: r.seconds,
    };
  }

  release(): void {
    this.shard?.release();
    this.shard = undefined;
  }
}
