// `redblue launch layer`: the weight-stationary layer stack across hosts. Rows of every W are
// split over all ranks of all hosts; each host places its ranks' weights natively, and the
// all-gather after every layer runs hierarchically (shared memory in the host, gRPC between host
// leaders, shared memory again), inside the native pass loop.
import { randomBytes } from 'node:crypto';
import { stackPlacement } from './local-plan.js';
import { allHosts, type RemoteCluster } from './remote-cluster.js';
import {
  passFigures,
  rowBytes,
  splitRows,
  type LayerDType,
  type LayerRunOptions,
  type LayerRunResult,
  type PlacementMode,
} from './layer-run.js';

/** Mirror or shard per rank across the hosts, counting every layer (see `stackPlacement`). */
export function remotePlacement(
  rc: RemoteCluster,
  o: { placement: string; dtype: LayerDType; n: number; k: number; m: number; layers: number },
): PlacementMode[] {
  return stackPlacement(rc.plannerCluster(), rc.size, o);
}

export async function runRemoteLayers(
  rc: RemoteCluster,
  o: Omit<LayerRunOptions, 'placement'> & { placement: PlacementMode[] },
): Promise<LayerRunResult & { hosts: number }> {
  const P = rc.size;
  const first = rc.hostFirstRanks;
  rowBytes(o.dtype, o.k); // fails early when k is not a whole number of blocks
  const rows = splitRows(o.n, P);
  const rowsPerRank = rows.map(([lo, hi]) => hi - lo);
  const yOffset = 0;
  const xOffset = Math.ceil((o.layers * o.m * o.n * 4) / 64) * 64;
  const collectBytes = xOffset + o.m * o.k * 4;
  await rc.guard(Promise.all(rc.hosts.map((c, h) => c.stage(o.collect && h === 0 ? collectBytes : 64))));

  const placeStart = process.hrtime.bigint();
  const perCall = Math.max(1, Math.ceil(o.layers / 20));
  let made = 0;
  let placed: { weightBytes: number; backing: string }[] = [];
  while (made < o.layers) {
    const count = Math.min(perCall, o.layers - made);
    const replies = await rc.guard(
      Promise.all(
        rc.hosts.map((c, h) =>
          c.placeLayers({
            dtype: o.dtype,
            n: o.n,
            k: o.k,
            layers: o.layers,
            seed: o.seed,
            placement: o.placement.slice(first[h]!, first[h + 1]!),
            firstRank: first[h]!,
            rowsPerRank,
            count,
            fresh: made === 0,
          }),
        ),
      ),
    );
    placed = replies.flatMap((r) => r.ranks);
    made += count;
    o.onProgress?.(made, o.layers);
  }
  const placeSeconds = Number(process.hrtime.bigint() - placeStart) / 1e9;

  const run = `r${randomBytes(4).toString('hex')}`;
  const replies = await rc.guard(
    allHosts(
      rc.hosts.map((c, h) =>
        c.runLayers({
          m: o.m,
          iters: o.iters,
          seed: o.seed + 1,
          collect: !!o.collect && h === 0,
          yOffset,
          xOffset,
          firstRank: first[h]!,
          world: P,
          run,
          hostFirstRanks: first,
        }),
      ),
    ),
  );
  const perRankTimes = replies.flatMap((r) => r.ranks);
  let y: Float32Array | undefined;
  let x: Float32Array | undefined;
  if (o.collect) {
    y = new Float32Array(o.layers * o.m * o.n);
    x = new Float32Array(o.m * o.k);
    await rc.guard(rc.hosts[0]!.read(yOffset, new Uint8Array(y.buffer)));
    await rc.guard(rc.hosts[0]!.read(xOffset, new Uint8Array(x.buffer)));
  }
  return {
    hosts: rc.hosts.length,
    ...passFigures(o, rows, placed, perRankTimes),
    placeSeconds,
    ...(y ? { y } : {}),
    ...(x ? { x } : {}),
  };
}
