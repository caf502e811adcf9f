// Fuzzing topology files (`plan --topology FILE`, JSON or YAML): random text, random JSON and YAML
// documents, and documents shaped like a topology with fields of every wrong type and value.
// Each must give a valid cluster or a PlanInputError that starts with the file's name.
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { PlanInputError } from '../../planner/errors.js';
import { parseTopology } from '../../planner/topology-file.js';
import { validateCluster } from '../../planner/cluster.js';
import { attempt, fuzz } from './harness.js';

const FILE = 'test/fuzz/topology.test.ts';
const NAME = 'topo.yaml';
const refusal = { type: PlanInputError, names: (m: string) => m.startsWith(`${NAME}: `) };

// The yaml package warns on stderr about unknown tags and odd aliases (the parse goes on): noise here.
beforeAll(() => void vi.spyOn(process, 'emitWarning').mockImplementation(() => {}));

function parse(text: string): void {
  const out = attempt(refusal, () => parseTopology(text, NAME));
  if (out.ok) {
    validateCluster(out.value);
    for (const h of out.value.hosts) expect(typeof h.name).toBe('string');
  }
}

/** A value of any kind, and the ones a topology field might be given by mistake. */
const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1,
    2,
    1.5,
    1e300,
    2 ** 53,
    1e9,
    '1',
    '16GiB',
    '1e400',
    '0.5',
    '',
    'x',
    null,
    true,
    [],
  ),
  fc.double(),
  fc.string({ maxLength: 6 }),
  fc.constantFrom({}, { toString: 1 }, { valueOf: 'x' }, { toString: 'x', valueOf: 1 }, ['a', 'b'], [1]),
  fc.jsonValue({ maxDepth: 2 }),
);
const field = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: good as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: oddValue });
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { freq: 3, nil: undefined });

const node = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        cores: field(fc.integer({ min: 1, max: 128 })),
        memoryBytes: field(fc.constantFrom(2 ** 30, '16GiB', '512 MiB', 68719476736)),
        flops: field(fc.double({ min: 1e9, max: 1e13, noNaN: true })),
        extra: oddValue,
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: oddValue },
);
const host = fc.record(
  {
    name: field(fc.constantFrom('a', 'b', 'c', 'node-1')),
    nodes: fc.oneof(field(fc.integer({ min: 1, max: 4 })), fc.array(node, { maxLength: 3 })),
  },
  { requiredKeys: [] },
);
const link = fc.record(
  { bandwidth: field(fc.constant(12.5e9)), latency: field(fc.constant(5e-6)) },
  { requiredKeys: [] },
);
const doc = fc.record(
  {
    hosts: fc.oneof(
      { weight: 5, arbitrary: fc.array(host, { maxLength: 4 }) },
      { weight: 1, arbitrary: oddValue },
    ),
    links: maybe(
      fc.oneof(
        fc.dictionary(fc.constantFrom('memory', 'interSocket', 'network', 'pcie'), link, { maxKeys: 3 }),
        oddValue,
      ),
    ),
    defaults: maybe(node),
    extra: maybe(oddValue),
  },
  { requiredKeys: ['hosts'] },
);

describe('fuzz: topology files', () => {
  it('random text', () => {
    fuzz(
      FILE,
      fc.property(
        fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 })),
        parse,
      ),
      300,
    );
  });

  it('random JSON documents', () => {
    fuzz(
      FILE,
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => parse(JSON.stringify(v))),
      300,
    );
  });

  it('documents shaped like a topology, fields of any type, as JSON and as YAML', () => {
    fuzz(
      FILE,
      fc.property(doc, fc.boolean(), (d, yaml) => parse(yaml ? toYaml(d) : JSON.stringify(d))),
      500,
    );
  });

  it('YAML with anchors, aliases, tags and merge keys', () => {
    const pieces = [
      'hosts:',
      '\n  - ',
      'name: a',
      'nodes: 2',
      'nodes: 1000000000',
      '&x ',
      '*x',
      '<<: *x',
      '!!str ',
      '!!binary ',
      '{cores: 4}',
      '[',
      ']',
      '\n    ',
      'memoryBytes: 1e400',
      'toString: 1',
      '__proto__: {}',
      ':',
      ' ',
      '- ',
    ];
    fuzz(
      FILE,
      fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 14 }), (parts) => parse(parts.join(''))),
      300,
    );
  });
});
