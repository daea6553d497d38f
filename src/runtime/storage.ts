// What a store's commit failure means, and the "storage full" mode a host enters on one.
// Measured with lmdb 3.5.6 on a tmpfs (size=4m) filled by a stream of 40 KB commits:
//  - the failing commit rejects with Error('Commit failed (see commitError for details)') whose
//    `commitError` promise rejects with the OS error: code 5 (EIO) when the last write was short
//    (LMDB turns a short pwrite into EIO), 28 (ENOSPC) when nothing could be written;
//  - the environment stays usable: the failed transaction is rolled back, and a smaller commit
//    right after it can succeed (free pages inside the map are reused);
//  - lmdb-js never reports MDB_MAP_FULL (-30792): its mdb.c grows the map (doubling) when a
//    transaction reaches the map's end. So the map size cannot be a bound by itself; the store
//    enforces it (see PartitionStore.usage) and reports 'map' itself.
import { statfsSync } from 'node:fs';
import { RuntimeError } from './errors.js';

/** How often a host in storage-full mode checks whether writes can resume. */
export const storage_probe_interval_ms_default = 1000;
/** The probe writes (then deletes) this much, and needs this much free on the filesystem
 *  first: writes resume only when a commit of this size fits. */
export const storage_probe_bytes = 1024 * 1024;

export type StorageReason = 'disk' | 'map';
export const storage_reasons: readonly StorageReason[] = ['disk', 'map'];

/** Linux errno values (os.constants.errno) and the LMDB code that mean "no room to write". */
const errno_names: Readonly<Record<number, string>> = { 5: 'EIO', 28: 'ENOSPC', 122: 'EDQUOT', [-30792]: 'MDB_MAP_FULL' };
const disk_codes = new Set(['EIO', 'ENOSPC', 'EDQUOT', 'MDB_MAP_FULL']);

/** A write refused because a store's filesystem or map has no room: retry once space returns. */
export class StorageFullError extends RuntimeError {
  override readonly name = 'StorageFullError';
}

/** A commit the store refused, with the OS / LMDB error underneath (lmdb-js wraps it). */
export class StoreCommitError extends RuntimeError {
  override readonly name = 'StoreCommitError';
  constructor(readonly code: string, readonly env_path: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Unwraps lmdb-js's commit failure into the OS error's code ('EIO', 'ENOSPC', ...). */
export async function commit_error_code(error: unknown): Promise<string> {
  let inner: unknown = error;
  const wrapped = (error as { commitError?: Promise<unknown> } | null)?.commitError;
  if (wrapped !== undefined && typeof wrapped.then === 'function') {
    try {
      await wrapped;
    } catch (cause) {
      inner = cause;
    }
  }
  const code = (inner as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return errno_names[code] ?? `errno ${code}`;
  if (typeof code === 'string') return code;
  return 'unknown';
}

/** Does this commit failure mean the storage has no room (so: refuse writes, keep serving)? */
export function is_storage_full(error: unknown): error is StoreCommitError {
  return error instanceof StoreCommitError && disk_codes.has(error.code);
}

/** Bytes available on the filesystem holding `path` (to unprivileged writers). */
export function free_bytes(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

/** The operator's sentence for a store in storage-full mode. */
export function storage_message(reason: StorageReason, data_dir: string, detail: string): string {
  return reason === 'disk'
    ? `writes refused: the disk holding the data directory ${data_dir} has no space left (${detail}); reads are served; writes resume by themselves once space is freed`
    : `writes refused: a store in the data directory ${data_dir} reached --store-map-bytes (${detail}); reads are served; writes resume once the outbox drains, or restart with a larger --store-map-bytes`;
}
