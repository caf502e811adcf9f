// A run's shared staging area: one /dev/shm file that the coordinator creates and every executor
// of the host maps, holding inputs, outputs and partial results. Names carry the creator's pid so
// that a file left by a killed run can be recognised and removed.
import { readdirSync } from 'node:fs';
import { loadAddon } from '../native/addon.js';

export const AREA_PREFIX = 'redblue-run-';

export interface SharedArea {
  readonly name: string;
  readonly buffer: ArrayBuffer;
  /** Unmaps; the creator also removes the file. Idempotent. */
  close(): void;
}

export function createSharedArea(tag: string, bytes: number): SharedArea {
  const name = `${AREA_PREFIX}${process.pid}-${tag}`;
  const addon = loadAddon();
  const buffer = addon.mapSharedFile(name, bytes);
  let open = true;
  return {
    name,
    buffer,
    close() {
      if (!open) return;
      open = false;
      addon.release(buffer);
      addon.unlinkSharedFile(name);
    },
  };
}

export function attachSharedArea(name: string): SharedArea {
  const addon = loadAddon();
  const buffer = addon.mapSharedFile(name);
  let open = true;
  return {
    name,
    buffer,
    close() {
      if (open) addon.release(buffer);
      open = false;
    },
  };
}

/** Removes staging files whose creating process is gone (left by a killed run). */
export function removeStaleAreas(): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync('/dev/shm');
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(AREA_PREFIX)) continue;
    const pid = Number(n.slice(AREA_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    if (loadAddon().unlinkSharedFile(n)) removed.push(n);
  }
  return removed;
}

/** Whether a process with this pid exists (ours or not). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
