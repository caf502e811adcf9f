// The native fuzzers (native/fuzz/, scripts/fuzz-native.sh) on a short budget: built with
// AddressSanitizer and UndefinedBehaviorSanitizer, mutated peer messages walked by the data
// path's parser and damaged shm segment headers checked (an accepted one walked); any sanitizer
// report or crash fails. `npm run fuzz:native` runs 1,000,000.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

describe('native fuzzers', () => {
  it('10,000 mutated peer messages and shm headers each, without a sanitizer report', () => {
    const seed = '20261204'; // fixed: CI is deterministic; npm run fuzz:native takes others
    const r = spawnSync('bash', ['scripts/fuzz-native.sh', '10000', seed], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect(r.status, `seed ${seed}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(
      /shm_header_fuzz: 10000 inputs \(seed \d+\), [1-9]\d* accepted and walked, .* no sanitizer report/,
    );
    expect(r.stdout).toMatch(
      /wire_fuzz: 10000 inputs \(seed \d+\), \d+ refused as malformed, .* no sanitizer report/,
    );
  }, 200_000);
});
