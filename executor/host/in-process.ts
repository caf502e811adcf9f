// The host of `redblue run`: this box driven from the coordinator's own process through the same
// step dispatch (steps.ts) and checks a supervisor applies for `redblue launch`, with the staging
// area mapped here instead of served on the data path. One host is the one-host case of many:
// the coordinator's runners see this and a supervisor's client (transport/host-client.ts) alike.
import { executorAddon } from '../../native/steps.js';
import type { CrossHost, LinkTransport } from '../../transport/control.js';
import { createSharedArea, type SharedArea } from '../../transport/shared-area.js';
import type { HostGemmRequest, HostPlaceRequest, HostRunRequest } from '../../transport/host-client.js';
import { byteRange, int, invalid, list } from './host-validate.js';
import type { LocalCluster } from './local-cluster.js';
import { HostSteps, type StepContext, type StepRanks } from './steps.js';

let areas = 0;

export class InProcessHost implements StepContext {
  private readonly steps: HostSteps;
  /** The current staging area; `owned` when this host made it (and so removes it). */
  private area: SharedArea | undefined;
  private owned = false;

  constructor(readonly cluster: LocalCluster) {
    this.steps = new HostSteps(cluster.topology);
    cluster.onStop(async () => this.release());
  }

  private need(): SharedArea {
    if (!this.area) throw new Error('no staging area: stage one first');
    return this.area;
  }

  private release(): void {
    if (this.owned) this.area?.close();
    this.area = undefined;
    this.owned = false;
  }

  /** A fresh, zeroed staging area of `bytes`, every executor attached (the last one goes). */
  async stage(bytes: number): Promise<{ ucxArea?: Buffer }> {
    this.release();
    const area = createSharedArea(`h${(areas++).toString(36)}`, Math.max(64, bytes));
    this.area = area;
    this.owned = true;
    await this.cluster.attachArea(area);
    return {};
  }

  /**
   * Takes an area that outlives this cluster as the staging area (a gemm kept across lost
   * executors: the executors left attach it, with the chunks already done).
   */
  async adopt(area: SharedArea): Promise<void> {
    this.release();
    this.area = area;
    await this.cluster.attachArea(area);
  }

  async fill(offset: number, count: number, seed: number, stream: number): Promise<void> {
    const area = this.need();
    byteRange('fill', offset, count * 4, area.bytes, 4);
    executorAddon().fillUniform(area.buffer, offset, count, seed, stream);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const area = this.need();
    byteRange('write', offset, data.byteLength, area.bytes);
    area.copyIn(offset, data);
  }

  async read(offset: number, dst: Uint8Array): Promise<void> {
    const area = this.need();
    byteRange('read', offset, dst.byteLength, area.bytes);
    area.copyOut(offset, dst);
  }

  pullAdd(): Promise<{ bytes: number; link: LinkTransport }> {
    return Promise.reject(new Error('one host has no peer to pull from'));
  }

  gemm(req: HostGemmRequest) {
    return this.steps.gemm(this, this.need(), req);
  }

  placeLayers(req: HostPlaceRequest) {
    return this.steps.placeLayers(this, () => this.need(), req);
  }

  runLayers(req: HostRunRequest) {
    return this.steps.runLayers(this, () => this.need(), req);
  }

  /** The ranks of a step: this host holds all of them. */
  async hostRanks(req: StepRanks): Promise<{ first: number; hosts?: CrossHost }> {
    const nodes = this.cluster.size;
    int('world', req.world, nodes, nodes);
    int('firstRank', req.firstRank, 0, 0);
    const firsts = list<number>('hostFirstRanks', req.hostFirstRanks, 4097);
    if (firsts.length !== 2 || firsts[0] !== 0 || firsts[1] !== nodes)
      throw invalid(`hostFirstRanks must be [0, ${nodes}] on one host`);
    return { first: 0 };
  }
}
