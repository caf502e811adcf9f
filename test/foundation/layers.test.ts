// The import graph of the TypeScript sources, read from the files themselves: no cycles, and every
// import between folders points down the declared order of layers. A layer may use those listed
// before it, never one after:
//   common → native → model → planner → transport → executor/node → executor/launch →
//   executor/host → executor/coordinator → executor (its map) → server → bench → cli
// (launch sits below host because a supervisor started by srun or mpirun reads its place from
// launch/launch-env.ts; the coordinator uses both: it launches hosts and drives them. model, the
// file formats, architectures, tokenizers and sampling, sits below planner, which plans its split).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const LAYERS = [
  'common',
  'native',
  'model',
  'planner',
  'transport',
  'executor/node',
  'executor/launch',
  'executor/host',
  'executor/coordinator',
  'executor',
  'server',
  'bench',
  'cli',
] as const;

/** The most specific layer a source path (relative to the root) belongs to. */
function layerOf(path: string): number {
  let best = -1;
  let bestLength = -1;
  LAYERS.forEach((layer, i) => {
    if (path.startsWith(layer + '/') && layer.length > bestLength) {
      best = i;
      bestLength = layer.length;
    }
  });
  return best;
}

function sources(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative imports of a file (static, re-exports, side-effect and dynamic), as source paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'(\.{1,2}\/[^']+)'/gm)) {
    const target = relative(root, resolve(dirname(file), m[1]!)).replace(/\.js$/, '.ts');
    out.push(target);
  }
  return out;
}

const files = [...new Set(LAYERS.map((l) => l.split('/')[0]!))]
  .flatMap((top) => sources(join(root, top)))
  .map((f) => relative(root, f));
const graph = new Map(files.map((f) => [f, importsOf(join(root, f))]));

/** Imports from a file to a layer listed after its own. */
function upward(g: Map<string, string[]>): string[] {
  return [...g].flatMap(([f, targets]) =>
    targets
      .filter((t) => g.has(t) && layerOf(t) > layerOf(f))
      .map((t) => `${f} (${LAYERS[layerOf(f)]}) → ${t} (${LAYERS[layerOf(t)]})`),
  );
}

/** Every cycle a depth-first walk meets, as "a → b → a". */
function cycles(g: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const found: string[] = [];
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of g.get(f) ?? []) {
      if (!g.has(t)) continue;
      if (state.get(t) === 'open') found.push([...stack.slice(stack.indexOf(t)), t].join(' → '));
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f);
  return found;
}

describe('the import graph', () => {
  it('covers the sources, and every import names a file that exists', () => {
    expect(files.length).toBeGreaterThan(100);
    const missing = [...graph].flatMap(([f, targets]) =>
      targets.filter((t) => !graph.has(t) && !existsSync(join(root, t))).map((t) => `${f} → ${t}`),
    );
    expect(missing).toEqual([]);
    expect(files.filter((f) => layerOf(f) < 0)).toEqual([]);
    // the walk reads real edges, type-only and dynamic imports included
    expect(graph.get('bench/run.ts')).toContain('executor/coordinator/gemm-run.ts');
    expect(graph.get('cli/commands/plan.ts')).toContain('executor/coordinator/reported-cluster.ts');
  });

  it('points down: no file imports a layer listed after its own', () => {
    expect(upward(graph)).toEqual([]);
  });

  it('has no cycles', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('would name an upward import and a cycle', () => {
    const bad = new Map([
      ['native/topology.ts', ['native/virtual-nodes.ts']],
      ['native/virtual-nodes.ts', ['native/topology.ts']],
      ['planner/index.ts', ['cli/main.ts']],
      ['cli/main.ts', []],
    ]);
    expect(upward(bad)).toEqual(['planner/index.ts (planner) → cli/main.ts (cli)']);
    expect(cycles(bad)).toEqual(['native/topology.ts → native/virtual-nodes.ts → native/topology.ts']);
  });
});

// The native side's domain code stays plain C++: N-API lives in native/src/bindings and the
// few core/ helpers the bindings share, so kernels, model steps, collectives and transports can
// be read, tested and reused without Node.
describe('native domain code', () => {
  const domain = ['kernels', 'model', 'executor', 'shm', 'hosts'];
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? files(p) : /\.(cc|h|inc)$/.test(f) ? [p] : [];
    });

  it('includes no N-API header', () => {
    const offenders = domain
      .flatMap((d) => files(join(root, 'native/src', d)))
      .filter((f) =>
        /#include\s+[<"](napi\.h|core\/napi_util\.h|core\/async_task\.h|core\/serial_worker\.h)[>"]/.test(
          readFileSync(f, 'utf8'),
        ),
      )
      .map((f) => relative(root, f));
    expect(offenders).toEqual([]);
    // The check reads real files: the domain folders are there and hold sources.
    expect(domain.every((d) => files(join(root, 'native/src', d)).length > 0)).toBe(true);
  });
});
