// Loads the compiled addon (build/Release/redblue.node) and gives it types. The only place in
// the project that touches the .node file; everything else imports from here.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface HugePageCount {
  pageBytes: number;
  total: number;
  free: number;
}

export interface RawNumaNode {
  id: number;
  package: number;
  cpus: number[];
  memoryBytes: number;
  hugePages: HugePageCount[];
}

export interface RawTopology {
  packages: { id: number; cpus: number[]; nodes: number[] }[];
  nodes: RawNumaNode[];
  cores: { id: number; package: number; cpus: number[] }[];
  distances: number[][];
  hardwareThreads: number;
  hwlocVersion: string;
}

export type Backing = 'hugetlb' | 'thp' | 'normal';
export type HugePolicy = 'auto' | 'require' | 'thp' | 'none';

export interface NodeAllocation {
  buffer: ArrayBuffer;
  bytes: number;
  mappedBytes: number;
  node: number;
  backing: Backing;
  address: bigint;
}

export interface NativeThreadPool {
  readonly size: number;
  cpus(): number[];
  workerAffinity(): { allowed: number[]; ranOn: number }[];
  close(): void;
}

export interface CpuFeatures {
  avx2: boolean;
  f16c: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  avx512vl: boolean;
  avx512vnni: boolean;
  avx512bf16: boolean;
  amxTile: boolean;
  amxBf16: boolean;
  amxInt8: boolean;
}

export interface CoreAddon {
  abiVersion: number;
  topology(): RawTopology;
  bindProcess(cpus: number[], node: number): void;
  currentAffinity(): number[];
  allThreadAffinities(): number[][];
  allocate(bytes: number, node: number, policy?: HugePolicy): NodeAllocation;
  release(buffer: ArrayBuffer): boolean;
  cpuFeatures(): CpuFeatures;
  /** Asks Linux for AMX tile state for this process: whether it was granted (false without AMX). */
  amxPermission(): boolean;
  /** Creates (bytes given) or attaches to (bytes omitted) /dev/shm/<name>, mapped shared. */
  /** bytes without attach: create (replacing); attach: the first `bytes` (or all) of an existing one. */
  mapSharedFile(name: string, bytes?: number, attach?: boolean): ArrayBuffer;
  /** mapSharedFile(name, bytes), the file made and its pages written off the JS thread. */
  mapSharedFileAsync(name: string, bytes: number): Promise<ArrayBuffer>;
  unlinkSharedFile(name: string): boolean;
  /** The whole mapping behind an area's buffer: its byteLength, or more where the buffer is a window on it. */
  mappedBytes(buffer: ArrayBuffer): number;
  /** Copies between an area (anywhere in its mapping) and `view`: into the area when `toArea`. */
  areaCopy(buffer: ArrayBuffer, offset: number, view: ArrayBufferView, toArea: boolean): void;
  ThreadPool: new (cpus: number[]) => NativeThreadPool;
}

const here = dirname(fileURLToPath(import.meta.url));

function findAddon(): string {
  const override = process.env.REDBLUE_ADDON;
  if (override) return resolve(override);
  // Works from the sources (native/) and from the compiled tree (dist/native/).
  for (const up of ['..', join('..', '..')]) {
    const p = join(here, up, 'build', 'Release', 'redblue.node');
    if (existsSync(p)) return p;
  }
  throw new Error(
    'the redblue native addon is not built (build/Release/redblue.node is missing): run `npm run build`',
  );
}

let cached: unknown;

// The addon with every module's exports; each module's TS wrapper narrows it to its own interface.
export function loadAddon<T = CoreAddon>(): T {
  if (!cached) {
    const require = createRequire(import.meta.url);
    cached = require(findAddon());
  }
  return cached as T;
}
