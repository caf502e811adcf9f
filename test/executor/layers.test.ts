// Weight-stationary layer stacks: every split and placement computes the same Y, and Y matches
// a reference built from the same seeded weights through the real quantize/dequantize kernels.
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../native/addon.js';
import { readTopology } from '../../native/topology.js';
import { LocalCluster } from '../../executor/host/local-cluster.js';
import { runLayers, type LayerDType, type PlacementMode } from '../../executor/coordinator/layer-run.js';
import { executorAddon } from '../../native/steps.js';

interface QuantAddon {
  quantize(type: string, x: Float32Array, rows: number, k: number): Uint8Array;
  dequantize(type: string, w: Uint8Array, rows: number, k: number): Float32Array;
}

const WEIGHT_STREAM = 2 ** 40;
const INPUT_STREAM = 2 ** 41;

function reference(
  dtype: LayerDType,
  n: number,
  k: number,
  m: number,
  layers: number,
  seed: number,
  iters: number,
) {
  const q = loadAddon<QuantAddon>();
  const x = new Float32Array(m * k);
  executorAddon().fillUniform(x.buffer, 0, m * k, seed + 1, INPUT_STREAM + iters - 1);
  const y = new Float64Array(layers * m * n);
  const bound = new Float64Array(layers * m * n);
  for (let l = 0; l < layers; l++) {
    let w = new Float32Array(n * k);
    executorAddon().fillUniform(w.buffer, 0, n * k, seed, WEIGHT_STREAM + l);
    if (dtype !== 'f32') w = new Float32Array(q.dequantize(dtype, q.quantize(dtype, w, n, k), n, k));
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        let a = 0;
        for (let p = 0; p < k; p++) {
          s += x[i * k + p]! * w[j * k + p]!;
          a += Math.abs(x[i * k + p]! * w[j * k + p]!);
        }
        y[(l * m + i) * n + j] = s;
        bound[(l * m + i) * n + j] = a;
      }
  }
  return { x, y, bound };
}

const CASES: { dtype: LayerDType; n: number; k: number; m: number }[] = [
  { dtype: 'q4_0', n: 97, k: 64, m: 1 },
  { dtype: 'q8_0', n: 31, k: 96, m: 3 },
  { dtype: 'f32', n: 13, k: 7, m: 2 },
];

describe('layer stacks', () => {
  for (const c of CASES) {
    it(`${c.dtype} ${c.n}×${c.k} m=${c.m}: same Y on 1, 2 and 3 nodes, mirror and shard, and matches the reference`, async () => {
      const layers = 3;
      const iters = 2;
      const seed = 5;
      const ref = reference(c.dtype, c.n, c.k, c.m, layers, seed, iters);
      const outputs: Float32Array[] = [];
      for (const nodes of [1, 2, 3]) {
        const topo = readTopology({ virtualNodes: nodes });
        const cluster = await LocalCluster.start({ topology: topo });
        try {
          for (const mode of ['shard', 'mirror'] as PlacementMode[]) {
            const r = await runLayers(cluster, {
              ...c,
              layers,
              iters,
              seed,
              placement: topo.nodes.map(() => mode),
              collect: true,
            });
            expect(r.passes).toBe(iters);
            expect(r.x).toEqual(ref.x);
            outputs.push(r.y!);
            // shards hold only their rows; mirrors hold the whole matrix
            const held = r.perRank.map((p) => p.weightBytes);
            if (mode === 'mirror' && nodes > 1) expect(Math.min(...held)).toBe(Math.max(...held));
            expect(r.perRank.map((p) => p.rows[1] - p.rows[0]).reduce((a, b) => a + b)).toBe(c.n);
            // mirrors on several nodes move rows by speed: still every row once, none starved
            if (mode === 'mirror' && nodes > 1) {
              expect(r.balancedRows).toHaveLength(nodes);
              expect(r.balancedRows!.reduce((a, b) => a + b)).toBe(c.n);
              for (const rows of r.balancedRows!)
                expect(rows).toBeGreaterThanOrEqual(Math.floor(c.n / (4 * nodes)));
            } else {
              expect(r.balancedRows).toBeUndefined();
            }
          }
        } finally {
          await cluster.stop();
        }
      }
      for (const y of outputs.slice(1)) expect(y).toEqual(outputs[0]);
      // int8 activations (Q8_0) cost up to ~1/127 of each |x·w| term; f32 only rounding
      const rel = c.dtype === 'f32' ? 1e-5 : 2e-2;
      for (let i = 0; i < ref.y.length; i++) {
        expect(Math.abs(outputs[0]![i]! - ref.y[i]!)).toBeLessThanOrEqual(rel * ref.bound[i]! + 1e-6);
      }
    });
  }
});

describe('layer stacks from given weights', () => {
  it('quantize the given matrices on each node and compute Y = X·Wᵀ from them', async () => {
    const [layers, n, k, m] = [2, 40, 64, 2];
    const weights = new Float32Array(layers * n * k);
    executorAddon().fillUniform(weights.buffer, 0, weights.length, 99, 7);
    const topo = readTopology({ virtualNodes: 2 });
    const cluster = await LocalCluster.start({ topology: topo });
    try {
      const r = await runLayers(cluster, {
        dtype: 'q8_0',
        n,
        k,
        m,
        layers,
        iters: 1,
        seed: 3,
        placement: ['shard', 'shard'],
        collect: true,
        weights,
      });
      const q = loadAddon<QuantAddon>();
      for (let l = 0; l < layers; l++) {
        const w = q.dequantize(
          'q8_0',
          q.quantize('q8_0', weights.subarray(l * n * k, (l + 1) * n * k), n, k),
          n,
          k,
        );
        for (let i = 0; i < m; i++)
          for (let j = 0; j < n; j++) {
            let s = 0;
            let a = 0;
            for (let p = 0; p < k; p++) {
              s += r.x![i * k + p]! * w[j * k + p]!;
              a += Math.abs(r.x![i * k + p]! * w[j * k + p]!);
            }
            expect(Math.abs(r.y![(l * m + i) * n + j]! - s)).toBeLessThanOrEqual(2e-2 * a + 1e-6);
          }
      }
    } finally {
      await cluster.stop();
    }
  });
});
