// The private leader ↔ supervisor link: frames survive any chunking, errors come back as errors,
// and a supervisor that goes away fails the waiting exchange instead of hanging it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { LeaderLink, serveLeaderLink, type LeaderRequest } from '../../transport/leader-link.js';

const dir = mkdtempSync(join(tmpdir(), 'redblue-leader-'));
const exchange = (link: LeaderLink, r: LeaderRequest) =>
  new Promise<Buffer>((resolve, reject) => link.exchange(r, (e, d) => (e ? reject(e) : resolve(d!))));

describe('leader link', () => {
  it('carries blocks of any size, one exchange after another, and reports handler errors', async () => {
    const path = join(dir, 'a.sock');
    const seen: LeaderRequest[] = [];
    const server = await serveLeaderLink(path, async (r) => {
      seen.push({ ...r, data: Buffer.from(r.data) });
      if (r.tag === 'bad') throw new Error('block bad never came');
      return Buffer.concat([r.data, r.data]);
    });
    const link = new LeaderLink(path);
    try {
      for (const size of [0, 5, 3 << 20]) {
        const data = Buffer.alloc(size);
        for (let i = 0; i < size; i++) data[i] = (i * 7) & 255;
        const back = await exchange(link, { tag: `r:${size}`, data, hostBytes: [size, size] });
        expect(back.equals(Buffer.concat([data, data]))).toBe(true);
      }
      expect(seen.map((s) => [s.tag, s.hostBytes])).toEqual([
        ['r:0', [0, 0]],
        ['r:5', [5, 5]],
        [`r:${3 << 20}`, [3 << 20, 3 << 20]],
      ]);
      await expect(exchange(link, { tag: 'bad', data: Buffer.alloc(1), hostBytes: [1] })).rejects.toThrow(
        /block bad never came/,
      );
    } finally {
      link.close();
      server.close();
    }
  });

  it('fails a waiting exchange when the supervisor goes away', async () => {
    const path = join(dir, 'b.sock');
    // A supervisor that dies once the request arrived: its end of the socket closes.
    const server = createServer((s) => s.once('data', () => s.destroy()));
    await new Promise<void>((r) => server.listen(path, r));
    const link = new LeaderLink(path);
    try {
      const pending = exchange(link, { tag: 'x:1', data: Buffer.alloc(8), hostBytes: [8, 8] });
      await expect(pending).rejects.toThrow(/supervisor closed the link/);
      // Later exchanges fail at once rather than wait.
      await expect(exchange(link, { tag: 'x:2', data: Buffer.alloc(8), hostBytes: [8, 8] })).rejects.toThrow(
        /supervisor closed the link/,
      );
    } finally {
      link.close();
      server.close();
    }
  });
});
