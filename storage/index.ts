/** Where bytes live: the one storage contract, its neutral errors, shared helpers and the embedded backend. */
export * from './backend.ts';
export * from './errors.ts';
export { checkConditions, checkWriteConditions, etagMatches, normalizeEtag, type ConditionMode, type ConditionTarget } from './conditions.ts';
export { partRange, resolveRange, type ResolvedRange } from './range.ts';
export { DataDirInUseError, LOCK_FILE, lockDataDir, lockWorkers, WORKERS_LOCK_FILE, type DataDirLock, type DataDirLockMode } from './data-dir-lock.ts';
export { EmbeddedStore, openEmbeddedStore, reapWorker, type EmbeddedStoreOptions } from './embedded/embedded-store.ts';
export { DEFAULT_RESERVE_BYTES, RESERVE_FILE, SpaceReserve, type SpaceReserveOptions } from './space-reserve.ts';
export { decodeWord, encodeWord } from './encoded-words.ts';
export { compareUtf8 } from './utf8-order.ts';
