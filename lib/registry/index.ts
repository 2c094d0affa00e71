/** The model registry: domain types ({@link ModelRegistry}) and the embedded directory implementation. */
export * from './types';
export { FileModelRegistry, registrationKey } from './file-registry';
export { withLock, type LockOptions } from './lock';
