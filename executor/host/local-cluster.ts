// The coordinator's view of one host: starts one executor per (virtual) NUMA node, connects to
// each over a unix-domain gRPC socket, and tears everything down on success, failure or Ctrl-C.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MachineTopology } from '../../native/topology.js';
import {
  connectExecutor,
  waitForReady,
  type ExecutorClient,
  type HelloReply,
} from '../../transport/control.js';
import { createSharedAreaAsync, removeStaleAreas, type SharedArea } from '../../transport/shared-area.js';
import { removeDeadSessions, removeStaleHostGroup } from '../node/host-group.js';
import { ProcessGroup } from './process-group.js';
import { withDeadline } from '../../common/wait.js';

export interface LocalClusterOptions {
  topology: MachineTopology;
  /** How long executors may take to come up. */
  startTimeoutMs?: number;
  /**
   * The coordinator's own preparation, run once the executors are spawned and before waiting for
   * them (they start in their own processes: ~0.4 s here). A throw stops them and fails start().
   */
  whileStarting?: () => void;
}

/** Prefixes every failed call's message with the executor's rank. */
function namedErrors(client: ExecutorClient, rank: number): ExecutorClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function' || prop === 'close') return v;
      return (...args: unknown[]) =>
        (v as (...a: unknown[]) => Promise<unknown>).apply(target, args).catch((e: unknown) => {
          const named = new Error(`executor rank ${rank}: ${e instanceof Error ? e.message : String(e)}`);
          // Keep gRPC's status code: ProcessGroup.guard waits longer for the exit behind a lost connection.
          const code = (e as { code?: unknown } | null)?.code;
          if (code !== undefined) Object.assign(named, { code });
          throw named;
        });
    },
  });
}

export class LocalCluster {
  readonly clients: ExecutorClient[] = [];
  readonly hellos: HelloReply[] = [];
  readonly session: string;
  private readonly dir: string;
  private readonly group = new ProcessGroup();
  private areas: SharedArea[] = [];
  private readonly stopHooks: (() => Promise<void>)[] = [];
  private stopped = false;
  private static readonly live = new Set<LocalCluster>();
  private static named = 0;

  private constructor(readonly topology: MachineTopology) {
    this.dir = mkdtempSync(join(tmpdir(), 'redblue-'));
    // Named after the coordinator (removeDeadSessions finds a dead one's by the pid); a second
    // cluster alive beside it (a draft model's executors) gets a suffix.
    this.session = LocalCluster.live.size ? `s${process.pid}-${++LocalCluster.named}` : `s${process.pid}`;
    LocalCluster.live.add(this);
  }

  get size(): number {
    return this.topology.nodes.length;
  }

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    removeStaleAreas();
    removeDeadSessions();
    const c = new LocalCluster(options.topology);
    removeStaleHostGroup(c.session);
    try {
      const world = c.topology.nodes.length;
      c.topology.nodes.forEach((node, rank) => {
        c.group.start({
          rank,
          world,
          cpus: node.cpus,
          memoryNode: node.physicalNode,
          address: `unix:${join(c.dir, `rank-${rank}.sock`)}`,
        });
      });
      for (let rank = 0; rank < world; rank++) {
        c.clients.push(namedErrors(connectExecutor(`unix:${join(c.dir, `rank-${rank}.sock`)}`), rank));
      }
      options.whileStarting?.();
      const deadline = options.startTimeoutMs ?? 30_000;
      const started = Date.now();
      await c.group.guard(
        withDeadline(
          Promise.all(c.topology.nodes.map((_, rank) => c.group.listening(rank))),
          deadline,
          `the executors did not start within ${deadline / 1000} s`,
        ),
      );
      const left = Math.max(1000, deadline - (Date.now() - started));
      await c.group.guard(Promise.all(c.clients.map((cl) => waitForReady(cl, left))));
      c.hellos.push(...(await c.group.guard(Promise.all(c.clients.map((cl) => cl.hello({}))))));
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  /** Whether stop() has begun: its staging areas are about to be unmapped, so nothing may start on them. */
  get stopping(): boolean {
    return this.stopped;
  }

  /** The executors' process ids, in rank order (a soak test watches their resources). */
  executorPids(): number[] {
    return this.group.pids();
  }

  /** Runs `work` but fails fast, naming the rank, if an executor dies meanwhile. */
  guard<T>(work: Promise<T>): Promise<T> {
    return this.group.guard(work);
  }

  /** A new staging area for one workload, attached by every executor (and closed with the cluster). */
  async stage(tag: string, bytes: number): Promise<SharedArea> {
    const area = await createSharedAreaAsync(`${tag}-${this.areas.length}`, bytes);
    // Stopped while the pages were written: nobody else will remove it.
    if (this.stopped) {
      area.close();
      throw new Error('the cluster stopped while its staging area was made');
    }
    this.areas.push(area);
    await this.attachArea(area);
    return area;
  }

  /**
   * Has every executor attach an area that outlives the cluster (a gemm that goes on after a lost
   * executor keeps its staging area, with the chunks already done, for the executors left).
   */
  async attachArea(area: SharedArea): Promise<void> {
    await this.guard(
      Promise.all(
        this.clients.map((c) =>
          c.attach({ session: this.session, staging: area.name, stagingBytes: area.bytes }),
        ),
      ),
    );
  }

  pids(): number[] {
    return this.group.pids();
  }

  /**
   * Runs `hook` first when the cluster stops, before its areas are unmapped: native work still
   * reading an area (a step's doorbell wait) must end before the memory goes.
   */
  onStop(hook: () => Promise<void>): void {
    this.stopHooks.push(hook);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.allSettled(this.stopHooks.map((h) => h()));
    await Promise.allSettled(this.clients.map((c) => c.shutdown({}, 2000)));
    for (const c of this.clients) c.close();
    await this.group.stop();
    for (const a of this.areas) a.close();
    // Executors that were killed could not leave the group: remove its segment for them.
    removeStaleHostGroup(this.session);
    rmSync(this.dir, { recursive: true, force: true });
    LocalCluster.live.delete(this);
  }
}
