// `redblue synth` as a user runs it: the file it writes (read back by the GGUF reader), a bad
// type, and Ctrl-C midway (nothing left under the name, no partial file).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../model/gguf/read.js';
import { cliPath, repoRoot, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-synth-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('redblue synth', () => {
  it("writes llama.cpp's IQ4_XS mix: iq4_xs, q5_k for attn_v, q6_k for the output", () => {
    const out = join(dir, 'iq4.gguf');
    const r = runCli(['synth', '-o', out, '--size', 'tiny', '--type', 'iq4_xs_mix']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*iq4\.gguf: llama tiny, iq4_xs_mix, [\d.]+ MiB\n$/);
    const f = readGguf(out);
    const typeOf = (name: string) => f.tensors.find((t) => t.name === name)?.typeName;
    expect(['blk.0.attn_q.weight', 'blk.1.attn_v.weight', 'output.weight'].map(typeOf)).toEqual([
      'iq4_xs',
      'q5_k',
      'q6_k',
    ]);
    expect(readdirSync(dir).filter((n) => n.includes('.partial-'))).toEqual([]);
  });

  it("--layers N writes the preset's first N layers: the full model's tensors, fewer of them", () => {
    const full = join(dir, 'full.gguf');
    const first = join(dir, 'first.gguf');
    expect(runCli(['synth', '-o', full, '--size', 'tiny', '--seed', '4']).code).toBe(0);
    const r = runCli(['synth', '-o', first, '--size', 'tiny', '--seed', '4', '--layers', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/: llama tiny \(its first 1 layer\), q4_0, /);
    const a = readGguf(full);
    const b = readGguf(first);
    expect(b.metadata.get('llama.block_count')?.value).toBe(1);
    expect(b.tensors.some((t) => t.name.startsWith('blk.1.'))).toBe(false);
    const bytes = (path: string, t: { offset: number; bytes: number }) => {
      const buf = Buffer.alloc(t.bytes);
      const fd = openSync(path, 'r');
      try {
        readSync(fd, buf, 0, t.bytes, t.offset);
      } finally {
        closeSync(fd);
      }
      return buf;
    };
    for (const t of b.tensors) {
      const same = a.tensors.find((x) => x.name === t.name)!;
      expect(bytes(first, t).equals(bytes(full, same)), t.name).toBe(true);
    }
    const bad = runCli(['synth', '-o', join(dir, 'y.gguf'), '--size', 'tiny', '--layers', '3']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--layers must be a whole number from 1 to 2 \(tiny's layers\), got 3/);
  });

  it('names the weight types and mixes when --type is not one', () => {
    const r = runCli(['synth', '-o', join(dir, 'x.gguf'), '--type', 'iq2_xxs']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--type 'iq2_xxs' is not a weight type: use .*q2_k.*iq4_xs.*q2_k_mix/);
    expect(existsSync(join(dir, 'x.gguf'))).toBe(false);
  });

  it('Ctrl-C midway stops it: exit 130, no file under the name and no partial file', async () => {
    const out = join(dir, 'big.gguf');
    // TinyLlama's shape takes tens of seconds to write here: the signal lands midway.
    const p = spawn(process.execPath, [cliPath, 'synth', '-o', out, '--size', 'tinyllama'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
    // Midway: once its partial file is there (it writes under another name, renamed at the end).
    for (let i = 0; i < 100 && !readdirSync(dir).some((n) => n.startsWith('big.gguf')); i++)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    p.kill('SIGINT');
    const killer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(killer);
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted; .*big\.gguf was not written/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.startsWith('big.gguf'))).toEqual([]);
  }, 60_000);
});
