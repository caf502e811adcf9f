// A host's staging area and the native data path that serves it: the only memory a caller can
// reach, replaced by each Stage, kept mapped while native code still writes into an old one.
import * as grpc from '@grpc/grpc-js';
import { executorAddon } from '../../native/steps.js';
import { DataServer } from '../../transport/native-data.js';
import { ucxData, type NativeUcxData, type NativeUcxRemote } from '../../native/ucx.js';
import { RpcError, type Auth } from '../../transport/grpc-data.js';
import type { SharedArea } from '../../transport/shared-area.js';
import type { HostSession } from './session.js';
import { byteRange, int, invalid, list } from './host-validate.js';
import type { LinkTransport } from '../../transport/control.js';
import { availableOnMachine } from '../../native/available-memory.js';
import { stagingShortfall } from '../../planner/model-memory.js';

/** How long a UCX read waits for a peer's answer before failing (a dead peer fails at once). */
const UCX_TIMEOUT_MS = 30_000;

export class HostStaging {
  private area: SharedArea | undefined;
  /** Areas native code is writing into, and how many calls (see pin). */
  private readonly pinned = new Map<SharedArea, number>();
  /** Read and Write of the area on the addon's gRPC C++ core, with the Host service's credentials. */
  private readonly data: DataServer;
  /**
   * With `--transport ucx`: this supervisor's UCX worker, the current area exposed to peers
   * (its descriptor goes out in the Stage reply) and the peers' areas this host pulls from.
   */
  private ucx: NativeUcxData | undefined;
  private ucxArea: Buffer | undefined;
  private readonly remotes = new Map<number, { key: string; remote: NativeUcxRemote }>();

  /**
   * `ucx`: serve areas over UCX too. The worker is made at the first Stage, not here: UCX lists
   * the network interfaces that are up when it starts, and a host's link may come up after the
   * supervisor (a worker made at start-up in the test lab knew only `lo`).
   */
  constructor(
    host: string,
    auth: Auth,
    port: number,
    private readonly ucxWanted = false,
  ) {
    this.data = new DataServer(host, auth, port);
  }

  get dataPort(): number {
    return this.data.port;
  }

  /** The current area; FAILED_PRECONDITION when there is none. */
  need(): SharedArea {
    if (!this.area) throw new RpcError(grpc.status.FAILED_PRECONDITION, 'no staging area: call Stage first');
    return this.area;
  }

  /**
   * Replaces the area (the data path maps the file itself, so ours may go at once, unless native
   * code is still writing into it: see `pin`).
   */
  replace(area: SharedArea | undefined): void {
    if (this.ucxWanted) {
      // Peers' reads of the old area end here (an answer in flight finishes first).
      this.ucx?.unexpose();
      this.ucxArea = undefined;
      // No area: the session ended, and its peers' areas with it.
      if (!area) for (const peer of [...this.remotes.keys()]) this.dropRemote(peer);
      if (area) {
        try {
          this.ucx ??= ucxData();
          this.ucxArea = this.ucx.expose(area.buffer as ArrayBuffer);
        } catch (e) {
          area.close();
          this.replace(undefined);
          const env = ['UCX_TLS', 'UCX_NET_DEVICES']
            .filter((k) => process.env[k] !== undefined)
            .map((k) => `${k}=${process.env[k]}`);
          // Not UNAVAILABLE: the host is up, its UCX is not (the coordinator would take the
          // host for lost and wait for it).
          throw new RpcError(
            grpc.status.FAILED_PRECONDITION,
            `--transport ucx: ${e instanceof Error ? e.message : String(e)}` +
              ` (${env.length ? env.join(', ') : 'no UCX_TLS or UCX_NET_DEVICES set'}; ` +
              '`ucx_info -d` lists the transports UCX sees, or start the host with --transport grpc)',
          );
        }
      }
    }
    this.data.setArea(area?.name, area?.bytes);
    const old = this.area;
    this.area = area;
    if (old && old !== area && !this.pinned.has(old)) old.close();
  }

  /**
   * A fresh area of `bytes` (at most 3/4 of the host's memory, and what it has available now),
   * every executor attached. Checked here because only the host sees its own memory: an area
   * the host cannot hold ends in the out-of-memory killer as its pages are written, not in an
   * error, and leaves the area's file behind.
   */
  async stage(
    s: HostSession,
    req: { bytes: number },
    memoryBytes: number,
  ): Promise<{ bytes: number; ucxArea?: Buffer }> {
    const bytes = int('bytes', req.bytes, 64, Math.max(64, Math.floor(memoryBytes * 0.75)));
    const have = availableOnMachine();
    // The old area goes before the new one is made: its memory counts as available.
    const short = have && stagingShortfall(bytes, have, this.area?.bytes ?? 0);
    if (short) throw new RpcError(grpc.status.RESOURCE_EXHAUSTED, short);
    this.replace(undefined);
    this.replace(await s.cluster.stage('h', bytes));
    return { bytes, ...(this.ucxArea ? { ucxArea: this.ucxArea } : {}) };
  }

  /** Seeded values (the counter-based generator every rank agrees on). */
  fill(req: { offset: number; count: number; seed: number; stream: number }): void {
    const area = this.need();
    const count = int('count', req.count, 0, area.bytes / 4);
    byteRange('fill', req.offset, count * 4, area.bytes, 4);
    int('seed', req.seed, 0, Number.MAX_SAFE_INTEGER);
    int('stream', req.stream, 0, 0xffffffff);
    executorAddon().fillUniform(area.buffer, req.offset, count, req.seed, req.stream);
  }

  /**
   * Adds peer host `peer`'s f32 values of the given rows into ours (a cross-host reduction):
   * over UCX when this host has a worker and the peer's area descriptor came with the request,
   * else over the native gRPC data path.
   */
  async pullAdd(
    s: HostSession,
    req: { peer: number; rows: { offset: number; bytes: number }[]; peerUcxArea?: Buffer },
  ): Promise<{ bytes: number; link: LinkTransport }> {
    const area = this.need();
    const peer = int('peer', req.peer, 0, s.peers.length - 1);
    if (peer === s.hostIndex) throw invalid('a host cannot pull from itself');
    const rows = list<{ offset: number; bytes: number }>('rows', req.rows, 1 << 20);
    for (const r of rows) byteRange('rows', r.offset, r.bytes, area.bytes, 4);
    const remote = this.ucx && req.peerUcxArea?.length ? this.remoteOf(peer, req.peerUcxArea) : undefined;
    let total = 0;
    await this.pin(area, async () => {
      for (const r of rows) {
        if (remote) {
          try {
            await remote.readAdd(r.offset, area.buffer as ArrayBuffer, r.offset, r.bytes);
          } catch (e) {
            this.dropRemote(peer);
            throw new RpcError(
              grpc.status.UNAVAILABLE,
              `pulling from host ${peer} over UCX: ${e instanceof Error ? e.message : String(e)}`,
            );
          }
        } else {
          await s.peers[peer]!.readAddInto(r.offset, area.buffer, r.offset, r.bytes);
        }
        total += r.bytes;
      }
    });
    return { bytes: total, link: remote ? 'ucx' : 'grpc' };
  }

  /** The peer's area over UCX, connected once per descriptor (a peer's new Stage gives a new one). */
  private remoteOf(peer: number, descriptor: Buffer): NativeUcxRemote {
    const key = descriptor.toString('base64');
    const known = this.remotes.get(peer);
    if (known?.key === key) return known.remote;
    this.dropRemote(peer);
    let remote: NativeUcxRemote;
    try {
      remote = this.ucx!.connect(descriptor, UCX_TIMEOUT_MS);
    } catch (e) {
      throw invalid(`host ${peer}'s UCX area: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.remotes.set(peer, { key, remote });
    return remote;
  }

  private dropRemote(peer: number): void {
    this.remotes.get(peer)?.remote.close();
    this.remotes.delete(peer);
  }

  /**
   * Runs `f` with `area` kept mapped until `f` settles, even if a Stage replaces it meanwhile:
   * native code (PullAdd's readAdd) writes into it from another thread.
   */
  private async pin<T>(area: SharedArea, f: () => Promise<T>): Promise<T> {
    this.pinned.set(area, (this.pinned.get(area) ?? 0) + 1);
    try {
      return await f();
    } finally {
      const left = this.pinned.get(area)! - 1;
      if (left > 0) this.pinned.set(area, left);
      else {
        this.pinned.delete(area);
        if (area !== this.area) area.close();
      }
    }
  }

  close(): void {
    this.replace(undefined);
    this.ucx?.close();
    this.data.close();
  }
}
