// The private link between a host's leader executor and its supervisor: one unix socket in the
// supervisor's own 0700 directory, length-prefixed frames. It carries one all-gather block per
// layer each way, so its round trip is on the critical path of every layer of a multi-host pass;
// a raw socket answers in tens of microseconds where a gRPC call costs about a millisecond here.
//
//   request:  u32 frameBytes | u32 tagBytes | tag | u32 hosts | f64 hostBytes × hosts | data
//   reply:    u32 frameBytes | u32 status (0 ok, 1 error) | data, or the error message (UTF-8)
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface LeaderRequest {
  tag: string;
  data: Buffer;
  hostBytes: number[];
}

/** Largest frame accepted (the socket is private; this only bounds a corrupt length). */
const MAX_FRAME = 2 ** 31;

/** Splits a byte stream into frames (u32 length prefix, length excluded). */
function framer(onFrame: (f: Buffer) => void, onError: (e: Error) => void): (chunk: Buffer) => void {
  let pending: Buffer[] = [];
  let have = 0;
  let need = -1;
  return (chunk) => {
    pending.push(chunk);
    have += chunk.length;
    for (;;) {
      if (need < 0) {
        if (have < 4) return;
        const head = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        pending = [head];
        need = head.readUInt32LE(0);
        if (need > MAX_FRAME) return onError(new Error(`leader link: frame of ${need} bytes`));
        pending = [head.subarray(4)];
        have -= 4;
      }
      if (have < need) return;
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      const frame = all.subarray(0, need);
      pending = [all.subarray(need)];
      have -= need;
      need = -1;
      onFrame(frame);
    }
  };
}

function frame(parts: Buffer[]): Buffer[] {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(parts.reduce((a, p) => a + p.length, 0));
  return [len, ...parts];
}

function writeAll(s: Socket, parts: Buffer[]): void {
  for (const p of parts) s.write(p);
}

export function encodeRequest(r: LeaderRequest): Buffer[] {
  const tag = Buffer.from(r.tag, 'utf8');
  const head = Buffer.alloc(4 + tag.length + 4 + 8 * r.hostBytes.length);
  let o = head.writeUInt32LE(tag.length, 0);
  o += tag.copy(head, o);
  o = head.writeUInt32LE(r.hostBytes.length, o);
  for (const b of r.hostBytes) o = head.writeDoubleLE(b, o);
  return frame([head, r.data]);
}

export function decodeRequest(f: Buffer): LeaderRequest {
  const tagLen = f.readUInt32LE(0);
  const tag = f.subarray(4, 4 + tagLen).toString('utf8');
  let o = 4 + tagLen;
  const n = f.readUInt32LE(o);
  o += 4;
  if (n > 4096 || o + 8 * n > f.length) throw new Error('leader link: malformed request');
  const hostBytes: number[] = [];
  for (let i = 0; i < n; i++, o += 8) hostBytes.push(f.readDoubleLE(o));
  return { tag, hostBytes, data: f.subarray(o) };
}

/** Serves `handle` on a unix socket; one request at a time per connection. */
export function serveLeaderLink(
  path: string,
  handle: (r: LeaderRequest) => Promise<Buffer>,
): Promise<Server> {
  const server = createServer((s) => {
    const reply = (status: number, body: Buffer) => {
      const st = Buffer.alloc(4);
      st.writeUInt32LE(status);
      writeAll(s, frame([st, body]));
    };
    s.on(
      'data',
      framer(
        (f) => {
          let req: LeaderRequest;
          try {
            req = decodeRequest(f);
          } catch (e) {
            reply(1, Buffer.from((e as Error).message));
            return;
          }
          handle(req).then(
            (data) => reply(0, data),
            (e: unknown) => reply(1, Buffer.from(e instanceof Error ? e.message : String(e))),
          );
        },
        () => s.destroy(),
      ),
    );
    s.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

/** The leader's end: exchanges run one after another, as the collective calls them. */
export class LeaderLink {
  private readonly sock: Socket;
  private waiting: ((err: Error | null, data?: Buffer) => void) | undefined;
  private broken: Error | undefined;

  constructor(path: string) {
    this.sock = connect(path);
    this.sock.on(
      'data',
      framer(
        (f) => {
          const w = this.waiting;
          this.waiting = undefined;
          if (!w) return;
          if (f.readUInt32LE(0) === 0) w(null, f.subarray(4));
          else w(new Error(f.subarray(4).toString('utf8')));
        },
        (e) => this.fail(e),
      ),
    );
    this.sock.on('error', (e) => this.fail(new Error(`the host's supervisor is unreachable (${e.message})`)));
    this.sock.on('close', () => this.fail(new Error("the host's supervisor closed the link")));
  }

  private fail(e: Error): void {
    this.broken ??= e;
    const w = this.waiting;
    this.waiting = undefined;
    w?.(e);
  }

  exchange(r: LeaderRequest, done: (err: Error | null, data?: Buffer) => void): void {
    if (this.broken) return done(this.broken);
    if (this.waiting) return done(new Error('leader link: an exchange is already in flight'));
    this.waiting = done;
    writeAll(this.sock, encodeRequest(r));
  }

  close(): void {
    this.broken ??= new Error('leader link closed');
    this.sock.destroy();
  }
}
