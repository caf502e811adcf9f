// A run's shared staging area: one file that the coordinator creates and every executor of the
// host maps, holding inputs, outputs and partial results; on the hugetlbfs mount when its free
// huge pages hold it, else in /dev/shm (native/src/core/huge_pages.h says why). Names carry the
// creator's pid so that a file left by a killed run can be recognised and removed.
import { constants } from 'node:buffer';
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { loadAddon } from '../native/addon.js';
import { segmentDirs } from './shm.js';

export const AREA_PREFIX = 'redblue-run-';

/**
 * The most of an area JavaScript sees as one buffer (Buffer's kMaxLength: 4 GiB before Node 22).
 * A larger area's `buffer` is a window on its first bytes: native code that takes the buffer
 * reaches the whole area, and JavaScript reads and writes past the window with copyIn/copyOut.
 */
export const AREA_WINDOW_BYTES = constants.MAX_LENGTH;

export interface SharedArea {
  readonly name: string;
  /** The area, or past AREA_WINDOW_BYTES a window on its first bytes (native code reaches all). */
  readonly buffer: ArrayBuffer;
  /** The whole area's size. */
  readonly bytes: number;
  /** Copies `src` into the area at `offset` (anywhere in it). */
  copyIn(offset: number, src: ArrayBufferView): void;
  /** Copies the area's bytes at `offset` into `dst`. */
  copyOut(offset: number, dst: ArrayBufferView): void;
  /** Unmaps; the creator also removes the file. Idempotent. */
  close(): void;
}

function area(name: string, buffer: ArrayBuffer, close: () => void): SharedArea {
  const addon = loadAddon();
  return {
    name,
    buffer,
    bytes: addon.mappedBytes(buffer),
    copyIn: (offset, src) => addon.areaCopy(buffer, offset, src, true),
    copyOut: (offset, dst) => addon.areaCopy(buffer, offset, dst, false),
    close,
  };
}

const areaName = (tag: string) => `${AREA_PREFIX}${process.pid}-${tag}`;

/** A new area's handle: closing it unmaps it and removes the file. */
function created(name: string, buffer: ArrayBuffer): SharedArea {
  const addon = loadAddon();
  let open = true;
  return area(name, buffer, () => {
    if (!open) return;
    open = false;
    addon.release(buffer);
    addon.unlinkSharedFile(name);
  });
}

export function createSharedArea(tag: string, bytes: number): SharedArea {
  const name = areaName(tag);
  return created(name, loadAddon().mapSharedFile(name, bytes));
}

/**
 * createSharedArea with the file made and its pages written on a worker thread: a host's
 * supervisor stays responsive (keepalives, Ctrl-C) while an area of several GB faults in.
 */
export async function createSharedAreaAsync(tag: string, bytes: number): Promise<SharedArea> {
  const name = areaName(tag);
  return created(name, await loadAddon().mapSharedFileAsync(name, bytes));
}

/** Maps an existing area: its first `bytes` (the size it was created with), or all of the file. */
export function attachSharedArea(name: string, bytes?: number): SharedArea {
  const addon = loadAddon();
  const buffer = addon.mapSharedFile(name, bytes, true);
  let open = true;
  return area(name, buffer, () => {
    if (open) addon.release(buffer);
    open = false;
  });
}

/** Removes staging files whose creating process is gone (left by a killed run). */
/** Paths of the staging areas present, in /dev/shm and on hugetlbfs mounts. */
export function listAreas(): string[] {
  return segmentDirs().flatMap((d) => {
    try {
      return readdirSync(d)
        .filter((n) => n.startsWith(AREA_PREFIX))
        .map((n) => `${d}/${n}`);
    } catch {
      return [];
    }
  });
}

export function removeStaleAreas(): string[] {
  const removed: string[] = [];
  for (const n of listAreas().map((p) => basename(p))) {
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
