// Fuzzing what says where hosts are: hostfiles (`launch --hostfile`), --hosts lists, and the
// placement variables of Slurm (srun) and Open MPI (mpirun), host lists with their brackets
// included. Each input is read or refused with a plain Error naming the line, the flag or the
// variable; nothing else escapes, and no input expands past the stated limits or takes long.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { HOSTFILE_KEYS, parseHostfile, parseHostList, readHostfile } from '../../executor/launch/hostfile.js';
import { expandHostlist, launchPlace, tasksOnNode } from '../../executor/launch/launch-env.js';
import { attempt, fuzz, textFrom } from './harness.js';

const FILE = 'test/fuzz/hosts.test.ts';
const dir = mkdtempSync(join(tmpdir(), 'redblue-fuzz-hosts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Option values that are right for their key, so that some lines get through whole. */
const GOOD_VALUES: Record<string, string[]> = {
  user: ['alice', 'a.b-c'],
  'ssh-port': ['22', '2222'],
  identity: ['~/.ssh/id_ed25519', '/k'],
  'known-hosts': ['~/kh', '"/a b/kh"'],
  port: ['7070', '7071', '1', '65535'],
  listen: ['10.0.0.2', '0.0.0.0'],
  'virtual-nodes': ['1', '2'],
  'data-port': ['7072'],
  transport: ['ucx', 'grpc', 'auto'],
  command: ['"/opt/redblue/bin/redblue"', 'redblue', "'r b'"],
};
const option = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .constantFrom(...HOSTFILE_KEYS)
      .chain((k) => fc.constantFrom(...GOOD_VALUES[k]!).map((v) => `${k}=${v}`)),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.oneof(fc.constantFrom(...HOSTFILE_KEYS), fc.string({ maxLength: 5 })),
        fc.constantFrom('=', '', '=='),
        textFrom(['alice', '22', '7070', '0', '65536', '~/.ssh/id', '"/opt/x y"', "'q'", '"', '#', ' ']),
      )
      .map(([k, eq, v]) => `${k}${eq}${v}`),
  },
);
/** Hostfile lines: a host, then options, most right, some wrong, with comments and quotes. */
const hostfileLine = fc
  .tuple(
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('node1', 'node2', '10.0.0.2', '[::1]', 'a.b-c', 'gpu_7', '') },
      { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
    ),
    fc.array(option, { maxLength: 4 }),
    fc.constantFrom('', ' # comment', '#', '\r', '\t'),
  )
  .map(([host, opts, tail]) => [host, ...opts].join(' ') + tail);
const hostfileText = fc.oneof(
  { weight: 4, arbitrary: fc.array(hostfileLine, { maxLength: 6 }).map((lines) => lines.join('\n')) },
  { weight: 1, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
);

/** Slurm host lists: names, ranges in brackets (nested, unbalanced, wide), commas. */
const hostlist = textFrom(
  [
    'node',
    'n',
    '[',
    ']',
    '[0-3]',
    '[01-03,07]',
    '[1-2]',
    '-',
    ',',
    '0',
    '9',
    '-100000',
    '[0-99999]',
    'x',
    '[9007199254740992-9007199254740996]',
  ],
  10,
);

const SLURM = [
  'SLURM_PROCID',
  'SLURM_NTASKS',
  'SLURM_NPROCS',
  'SLURM_LOCALID',
  'SLURM_NODEID',
  'SLURM_JOB_NODELIST',
  'SLURM_NODELIST',
  'SLURM_JOB_NUM_NODES',
  'SLURM_NNODES',
  'SLURM_TASKS_PER_NODE',
];
const OMPI = [
  'OMPI_COMM_WORLD_RANK',
  'OMPI_COMM_WORLD_SIZE',
  'OMPI_COMM_WORLD_LOCAL_RANK',
  'OMPI_COMM_WORLD_LOCAL_SIZE',
  'OMPI_MCA_orte_num_nodes',
];
const envValue = fc.oneof(
  { weight: 4, arbitrary: fc.nat({ max: 9 }).map(String) },
  { weight: 2, arbitrary: fc.constantFrom('', ' 3 ', '-1', '1.5', '1e3', '99999999999999999999', 'x') },
  { weight: 2, arbitrary: textFrom(['2(x3)', '1', ',', '(x', ')', '0', '2']) },
  { weight: 2, arbitrary: hostlist },
);
/** A consistent Slurm or Open MPI place, then some variables changed, removed or added. */
const env = fc
  .record({
    slurm: fc.boolean(),
    hosts: fc.integer({ min: 1, max: 4 }),
    perHost: fc.integer({ min: 1, max: 3 }),
    rank: fc.nat(),
    edits: fc.array(fc.tuple(fc.nat(), fc.option(envValue, { freq: 4 })), { maxLength: 3 }),
    other: fc.boolean(),
  })
  .map(({ slurm, hosts, perHost, rank: r, edits, other }) => {
    const size = hosts * perHost;
    const rank = r % size;
    const vars: Record<string, string> = slurm
      ? {
          SLURM_PROCID: String(rank),
          SLURM_NTASKS: String(size),
          SLURM_LOCALID: String(rank % perHost),
          SLURM_NODEID: String(Math.floor(rank / perHost)),
          SLURM_JOB_NODELIST: `node[1-${hosts}]`,
          SLURM_JOB_NUM_NODES: String(hosts),
          SLURM_TASKS_PER_NODE: `${perHost}(x${hosts})`,
        }
      : {
          OMPI_COMM_WORLD_RANK: String(rank),
          OMPI_COMM_WORLD_SIZE: String(size),
          OMPI_COMM_WORLD_LOCAL_RANK: String(rank % perHost),
          OMPI_COMM_WORLD_LOCAL_SIZE: String(perHost),
        };
    const names = slurm !== other ? SLURM : OMPI;
    for (const [i, v] of edits) {
      const name = names[i % names.length]!;
      if (v === null) delete vars[name];
      else vars[name] = v;
    }
    return vars;
  });

const plain = { type: Error };
const namesLine = (file: string) => ({
  type: Error,
  names: (m: string) => m.startsWith(`${file}:`) || m.startsWith(`${file} `),
});

describe('fuzz: hostfiles and host lists', () => {
  it('hostfile text: entries with a host and a port each, or an error naming the line', () => {
    fuzz(
      FILE,
      fc.property(hostfileText, (text) => {
        const out = attempt(namesLine('hosts.txt'), () => parseHostfile(text, 'hosts.txt'));
        if (out.ok) {
          expect(out.value.length).toBeGreaterThan(0);
          for (const e of out.value) {
            expect(e.host).toMatch(/^[\w.:[\]-]+$/);
            expect(Number.isInteger(e.port) && e.port >= 1 && e.port <= 65535).toBe(true);
            expect(e.command.length).toBeGreaterThan(0);
          }
        }
      }),
      500,
    );
  });

  it('hostfiles read from disk', () => {
    const p = join(dir, 'hostfile');
    fuzz(
      FILE,
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        writeFileSync(p, bytes);
        attempt(namesLine(p), () => readHostfile(p));
      }),
      200,
    );
  });

  it('--hosts lists: HOST:PORT addresses or an error naming --hosts', () => {
    fuzz(
      FILE,
      fc.property(
        fc.oneof(textFrom(['h1', ':', '7070', ',', '[::1]', '[', ']', ' ', 'a.b', '99999']), fc.string()),
        (list) => {
          const out = attempt({ type: Error, names: /^--hosts/ }, () => parseHostList(list));
          if (out.ok) for (const a of out.value) expect(a).toMatch(/:\d{1,5}$/);
        },
      ),
      500,
    );
  });
});

describe('fuzz: Slurm and Open MPI placement', () => {
  it('Slurm host lists expand to at most 100000 names, or an error naming the list', () => {
    fuzz(
      FILE,
      fc.property(hostlist, (list) => {
        const out = attempt({ type: Error, names: /^host list '/ }, () => expandHostlist(list));
        if (out.ok) expect(out.value.length).toBeLessThanOrEqual(100_000);
      }),
      500,
    );
  });

  it('SLURM_TASKS_PER_NODE', () => {
    fuzz(
      FILE,
      fc.property(
        textFrom(['2(x3)', '1', ',', '(x', ')', '0', '2', '(x0)']),
        fc.nat({ max: 20 }),
        (spec, i) => {
          const out = attempt({ type: Error, names: /^SLURM_TASKS_PER_NODE/ }, () => tasksOnNode(spec, i));
          if (out.ok && out.value !== undefined) expect(Number.isSafeInteger(out.value)).toBe(true);
        },
      ),
      300,
    );
  });

  it('placement variables: a consistent place, none, or an error naming the variable or the batch system', () => {
    fuzz(
      FILE,
      fc.property(env, (vars) => {
        const out = attempt(plain, () => launchPlace(vars));
        if (out.ok && out.value !== undefined) {
          const p = out.value;
          for (const n of [p.rank, p.size, p.localRank, p.localSize, p.hostIndex, p.hostCount])
            expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
          expect(p.rank).toBeLessThan(p.size);
          expect(p.localRank).toBeLessThan(p.localSize);
          expect(p.hostIndex).toBeLessThan(p.hostCount);
        }
        if (!out.ok) expect(out.error.message).toMatch(/SLURM_|OMPI_|Slurm|Open MPI|host list/);
      }),
      500,
    );
  });
});
