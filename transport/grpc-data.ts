// The Host service (proto/hosts.proto) over grpc-js: control calls between the coordinator and
// the hosts' supervisors, with keepalives that notice a dead link within seconds, message size
// limits, and authentication (a shared token checked on every call, and/or TLS with a cluster
// certificate and client certificates). Bulk bytes never travel here: they take the native data
// path (transport/native-data.ts) under the same credentials.
import * as grpc from '@grpc/grpc-js';
import { timingSafeEqual } from 'node:crypto';
import type { Http2Session } from 'node:http2';
import { loadService } from './proto.js';

/** Bytes per chunk of a streamed block: large enough to amortise per-message costs. */
export const CHUNK_BYTES = 1 << 20;
/** Largest message accepted: a chunk plus headroom; larger blocks are always chunked. */
export const MAX_MESSAGE_BYTES = 4 * CHUNK_BYTES + 4096;
/** HTTP/2 flow-control window per stream and per connection. */
export const WINDOW_BYTES = 32 << 20;

/**
 * How long a silent connection may stay unanswered before it counts as dead. A client (the
 * coordinator, a supervisor calling its peers) pings every 0.5 s and gives up after 1 s: a lost
 * link fails the run within ~1.5 s. A server (a supervisor) is slower to give up on its client,
 * 1 s + 2 s: a ping is answered on the client's event loop, and a coordinator busy for a second
 * (reading a large vocabulary) must not have its sessions ended. A client's own pause fails it
 * only when the pause begins within a round trip of a ping (the answer then waits unread while
 * the timer fires): well under a millisecond in 500.
 */
const CLIENT_KEEPALIVE_MS = 500;
const CLIENT_KEEPALIVE_TIMEOUT_MS = 1000;
const SERVER_KEEPALIVE_MS = 1000;
const SERVER_KEEPALIVE_TIMEOUT_MS = 2000;

export function channelOptions(extra: grpc.ChannelOptions = {}): grpc.ChannelOptions {
  return {
    'grpc-node.flow_control_window': WINDOW_BYTES,
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': CLIENT_KEEPALIVE_MS,
    'grpc.keepalive_timeout_ms': CLIENT_KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    // A lost host must fail calls quickly, not be retried for minutes.
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 1000,
    'grpc.enable_retries': 0,
    // No channelz: it keeps every channel's trace events for the life of the process (arrays
    // and strings that grew with each run in `bench soak`).
    'grpc.enable_channelz': 0,
    ...extra,
  };
}

export function serverOptions(): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': SERVER_KEEPALIVE_MS,
    'grpc.keepalive_timeout_ms': SERVER_KEEPALIVE_TIMEOUT_MS,
    'grpc.enable_channelz': 0,
  };
}

/**
 * grpc-js has no server-side window option: its HTTP/2 server advertises the default 64 KiB
 * stream window, which throttles client-to-server streams (uploads). We set the initial stream
 * window in the server's settings before it binds and grow each session's connection window.
 * Reaches into grpc-js internals; if they change, uploads only get slower.
 */
export function widenServerWindows(server: grpc.Server): void {
  const s = server as unknown as { commonServerOptions?: { settings?: Record<string, unknown> } };
  if (s.commonServerOptions) {
    s.commonServerOptions.settings = {
      ...(s.commonServerOptions.settings ?? {}),
      initialWindowSize: WINDOW_BYTES,
    };
  }
}

/** After bindAsync: grow every new session's connection-level window, and turn Nagle off. */
export function widenSessionWindows(server: grpc.Server): void {
  const s = server as unknown as {
    http2Servers?: Map<{ on(ev: string, fn: (x: never) => void): void }, unknown>;
  };
  for (const h of s.http2Servers?.keys() ?? []) {
    h.on('session', (session: Http2Session) => {
      try {
        session.setLocalWindowSize(WINDOW_BYTES);
      } catch {
        // an old Node without setLocalWindowSize: the default window stays
      }
    });
    // Nagle's algorithm would hold a reply's last small frames (trailers) back until the peer
    // acknowledges the previous ones: milliseconds per call. (grpc-js sets this on clients only.)
    h.on('connection', (socket: { setNoDelay?: (v: boolean) => void }) => socket.setNoDelay?.(true));
  }
}

// --- authentication ---------------------------------------------------------------------------

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export interface Auth {
  /** Shared secret sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** Cluster certificate: servers require client certificates signed by `ca`. */
  tls?: TlsFiles;
}

/** Name every host's certificate carries (one cluster certificate serves all hosts). */
export const TLS_SERVER_NAME = 'redblue';

export function serverCredentials(auth: Auth): grpc.ServerCredentials {
  if (!auth.tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    auth.tls.ca,
    [{ private_key: auth.tls.key, cert_chain: auth.tls.cert }],
    true,
  );
}

export function channelCredentials(auth: Auth): {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
} {
  if (!auth.tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  return {
    credentials: grpc.credentials.createSsl(auth.tls.ca, auth.tls.key, auth.tls.cert),
    options: { 'grpc.ssl_target_name_override': TLS_SERVER_NAME, 'grpc.default_authority': TLS_SERVER_NAME },
  };
}

export function authMetadata(auth: Auth): grpc.Metadata {
  const md = new grpc.Metadata();
  if (auth.token !== undefined) md.set('authorization', `Bearer ${auth.token}`);
  return md;
}

/** Throws an UNAUTHENTICATED error unless the call carries the token (constant-time compare). */
export function checkToken(metadata: grpc.Metadata, token: string | undefined): void {
  if (token === undefined) return;
  const got = metadata.get('authorization')[0];
  const want = Buffer.from(`Bearer ${token}`);
  const have = Buffer.from(typeof got === 'string' ? got : '');
  if (have.length !== want.length || !timingSafeEqual(have, want)) {
    throw new RpcError(grpc.status.UNAUTHENTICATED, 'unauthenticated: missing or wrong token');
  }
}

/** An error with a gRPC status code, so callers see e.g. UNAUTHENTICATED or INVALID_ARGUMENT. */
export class RpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

// --- the Host service ---------------------------------------------------------------------------

let hostCache: { Host: grpc.ServiceClientConstructor } | undefined;
export function hostsServices(): { Host: grpc.ServiceClientConstructor } {
  hostCache ??= {
    Host: loadService('hosts.proto', 'redblue.hosts.v1.Host', {
      longs: Number,
      enums: String,
      defaults: true,
    }),
  };
  return hostCache;
}

/** The message of a failed call, without grpc-js's "13 INTERNAL:" prefix. */
export function callMessage(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  return e.details || (err instanceof Error ? err.message : String(err));
}
