// An executor: one process per NUMA node. It binds itself to its node before allocating
// anything, serves the control plane (gRPC), and runs whole steps natively on its pinned pool
// with node-local memory, exchanging with its peers through the host's shared memory.
import { hostname } from 'node:os';
import { fstatSync, readFileSync } from 'node:fs';
import type { Server } from '@grpc/grpc-js';
import { loadAddon, type NativeThreadPool } from '../../native/addon.js';
import { serveExecutor, type ExecutorHandlers } from '../../transport/control.js';
import { attachSharedArea, type SharedArea } from '../../transport/shared-area.js';
import { LISTENING, parseExecutorArgs, type ExecutorArgs } from './args.js';
import { executorAddon, ucxAbortExchanges, ucxBytesSent, type NativeLayerStack } from '../../native/steps.js';
import { stepBricks } from './gemm-layout.js';
import { checkedBrick, checkedRange } from '../../transport/bricks.js';
import { joinHostGroup, type HostGroup } from './host-group.js';
import { closeHostLink, crossHostPeers, leaderLink, openHostLink } from './cross-host.js';
import { ModelSteps } from './model-steps.js';
import { measureReadBandwidth } from '../../native/read-speed.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

class Executor {
  private area: SharedArea | undefined;
  private group: HostGroup | undefined;
  private stack: NativeLayerStack | undefined;
  private rowsPerRank: number[] = [];
  private readonly model: ModelSteps;
  server: Server | undefined;

  constructor(
    readonly args: ExecutorArgs,
    readonly pool: NativeThreadPool,
  ) {
    this.model = new ModelSteps(args.rank, args.world, args.memoryNode);
  }

  private measuredGbps: number | undefined;
  /** Measured once, at the first hello (while the cluster starts, every node at once). */
  private readGbps(): number {
    this.measuredGbps ??= measureReadBandwidth(this.pool, this.args.memoryNode);
    return this.measuredGbps;
  }

  private need<T>(v: T | undefined, what: string): T {
    if (v === undefined) throw new Error(`executor rank ${this.args.rank}: ${what} first`);
    return v;
  }

  handlers(): ExecutorHandlers {
    const a = this.args;
    return {
      hello: () => ({
        rank: a.rank,
        world: a.world,
        pid: process.pid,
        cpus: a.cpus,
        memoryNode: a.memoryNode,
        hostname: hostname(),
        version: pkg.version,
        readGbps: this.readGbps(),
      }),
      attach: async (req) => {
        this.model.stopLoop(); // it reads the area that goes now
        this.area?.close();
        this.area = attachSharedArea(req.staging, req.stagingBytes);
        if (this.area.bytes < req.stagingBytes) {
          throw new Error(
            `staging area ${req.staging} is ${this.area.bytes} bytes, expected ${req.stagingBytes}`,
          );
        }
        this.group ??= await joinHostGroup(req.session, a.rank, a.world);
        return {};
      },
      gemm: async (req) => {
        const area = this.need(this.area, 'attach');
        const group = this.need(this.group, 'attach');
        const cRows = checkedRange('cRows', req.cRows);
        const { all, mine } = stepBricks(
          req.allBricks.map((rb, i) => ({
            rank: rb.rank,
            bricks: rb.bricks.map((b, j) => checkedBrick(`allBricks[${i}].bricks[${j}]`, b)),
          })),
          req.partialOffset,
          req.k,
          a.rank,
          req.redo ? (req.redoChunks ?? []) : undefined,
        );
        const doneCount = req.doneOffset ? all.length : 0;
        const t = await executorAddon().gemmStep(this.pool, group.communicator, area.buffer, {
          m: req.m,
          n: req.n,
          k: req.k,
          aOffset: req.aOffset,
          bOffset: req.bOffset,
          cOffset: req.cOffset,
          mine,
          all,
          cRow0: cRows.lo,
          cRow1: cRows.hi,
          node: a.memoryNode,
          ...(doneCount ? { doneOffset: req.doneOffset!, doneCount } : {}),
        });
        return t;
      },
      placeLayers: async (req) => {
        const started = process.hrtime.bigint();
        if (req.fresh) {
          // first call of a placement: a new stack (any older one is freed)
          this.stack?.release();
          this.stack = undefined;
        }
        if (!this.stack) {
          const rows = checkedRange('rows', req.rows);
          this.stack = new (executorAddon().LayerStack)({
            dtype: req.dtype,
            n: req.n,
            k: req.k,
            layers: req.layers,
            seed: req.seed,
            mirror: req.placement === 'mirror',
            rowLo: rows.lo,
            rowHi: rows.hi,
            node: a.memoryNode,
          });
        }
        const count = Math.max(0, Math.min(req.count, req.layers - this.stack.layersMade));
        if (req.fromStaging) {
          const area = this.need(this.area, 'attach');
          await this.stack.addLayers(this.pool, count, area.buffer, req.sourceOffset);
        } else {
          await this.stack.addLayers(this.pool, count);
        }
        this.rowsPerRank = req.rowsPerRank;
        return {
          weightBytes: this.stack.weightBytes,
          backing: this.stack.backing,
          seconds: Number(process.hrtime.bigint() - started) / 1e9,
          layersMade: this.stack.layersMade,
        };
      },
      runLayers: async (req) => {
        const stack = this.need(this.stack, 'placeLayers');
        const group = this.need(this.group, 'attach');
        const area = this.need(this.area, 'attach');
        const peers = req.hosts ? crossHostPeers(group.communicator, req.hosts) : group.communicator;
        const link = req.hosts ? leaderLink(req.hosts) : undefined;
        const sentBefore = link === 'ucx' ? ucxBytesSent() : 0;
        const r = await stack.run(this.pool, peers, {
          m: req.m,
          iters: req.iters,
          seed: req.seed,
          rowsPerRank: this.rowsPerRank,
          balance: req.balance === true && !req.hosts,
          ...(req.collect ? { out: area.buffer, yOffset: req.yOffset, xOffset: req.xOffset } : {}),
        });
        return link ? { ...r, link, linkBytesSent: link === 'ucx' ? ucxBytesSent() - sentBefore : 0 } : r;
      },
      loadModel: (req) => this.model.load(req, this.pool),
      loadProgress: () => this.model.loadProgress(),
      forward: (req) => {
        const group = this.need(this.group, 'attach');
        // Across hosts every all-reduce and all-gather of every layer goes through the hosts'
        // collective, exactly as runLayers' all-gathers do.
        const peers = req.hosts ? crossHostPeers(group.communicator, req.hosts) : group.communicator;
        return this.model.forward(req, this.pool, peers, this.area?.buffer);
      },
      startModelLoop: () => {
        const group = this.need(this.group, 'attach');
        const area = this.need(this.area, 'attach');
        this.model.startLoop(this.pool, group.communicator, area.buffer);
        return {};
      },
      openHostLink: (req) => openHostLink(req),
      shutdown: () => {
        setImmediate(() => this.exit(0));
        return {};
      },
    };
  }

  exit(code: number): never {
    // A step blocked in a UCX exchange with an unreachable peer would hold the exit up until its
    // timeout (minutes): end it first.
    ucxAbortExchanges();
    this.stack?.release();
    this.model.release();
    closeHostLink();
    this.group?.close();
    this.area?.close();
    this.pool.close();
    this.server?.forceShutdown();
    process.exit(code);
  }
}

/** Whether fd is a pipe: Node's child_process makes stdio pipes of socket pairs, not FIFOs. */
function piped(fd: number): boolean {
  const s = fstatSync(fd);
  return s.isFIFO() || s.isSocket();
}

async function main(): Promise<void> {
  const args = parseExecutorArgs(process.argv.slice(2));
  const addon = loadAddon();
  // Bind first: every later allocation and thread then lands on this node.
  addon.bindProcess(args.cpus, args.memoryNode);
  const pool = new addon.ThreadPool(args.cpus);
  const ex = new Executor(args, pool);
  // A closed terminal (SIGHUP) too: leaving the host group properly is what removes its segment.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => ex.exit(0));
  // The coordinator owns us: if it goes away, so do we. Its end of our stdin closes when it dies,
  // even by SIGKILL; the parent check also covers a stdin that was not a pipe.
  if (piped(0)) {
    process.stdin.on('end', () => ex.exit(1));
    process.stdin.on('error', () => ex.exit(1));
    process.stdin.resume();
  }
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) ex.exit(1);
  }, 500).unref();
  ex.server = await serveExecutor(args.listen, ex.handlers());
  // The coordinator connects on this line rather than polling for the socket (process-group.ts).
  if (piped(1)) process.stdout.write(`${LISTENING}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`executor: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
