// The executors of one host as a shared-memory group: native steps run their barriers and
// all-gathers through it.
import { cpus } from 'node:os';
import { listSegments, removeStaleSegment, ShmCommunicator } from '../../transport/shm.js';
import { isAlive } from '../../transport/shared-area.js';

export interface HostGroup {
  /** Native communicator handle, passed to native steps. */
  readonly communicator: unknown;
  close(): void;
}

export async function joinHostGroup(session: string, rank: number, world: number): Promise<HostGroup> {
  const comm = await ShmCommunicator.open({
    name: session,
    rank,
    size: world,
    // A dead peer is detected quickly regardless; this bounds waits on a live but stuck one.
    timeoutMs: 120_000,
    attachTimeoutMs: 30_000,
    // Spinning only pays when every rank has a cpu of its own.
    ...(world > cpus().length ? { spinUs: 0 } : {}),
  });
  return { communicator: comm.handle, close: () => comm.close() };
}

/** Removes the host group's segment if no live process uses it (after a crash). */
export function removeStaleHostGroup(session: string): boolean {
  return removeStaleSegment(session);
}

/**
 * Removes the segments of host groups whose coordinator is gone (sessions are named `s<pid>`,
 * or `s<pid>-<n>`, after it): a run whose processes were all killed at once cannot remove its own. A segment
 * still in use by a live process is left alone.
 */
export function removeDeadSessions(): string[] {
  const removed: string[] = [];
  for (const path of listSegments()) {
    const m = /redblue-shm-(s(\d+)(?:-\d+)?)$/.exec(path);
    if (!m || isAlive(Number(m[2]))) continue;
    if (removeStaleSegment(m[1]!)) removed.push(path);
  }
  return removed;
}
