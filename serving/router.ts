/**
 * Sticky routing: a user goes to the canary when the hash bucket of their id (0..99) is below the canary weight.
 * Raising the weight only moves users from stable to canary (a user once on the canary stays there), and every
 * replica routes a user the same way.
 */
import type { Variant } from './model-slot';

/** FNV-1a 32-bit hash of a string (UTF-16 code units). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The user's bucket, 0..99, under a rollout's salt (every rollout splits users afresh). */
export function bucketOf(userId: string, salt = ''): number {
  return fnv1a(salt ? `${salt}:${userId}` : userId) % 100;
}

/**
 * The variant that serves `userId`: `canary` when a canary is loaded and the user's bucket is below `canaryWeight`
 * (0..100), else `stable`.
 */
export function routeUser(userId: string, canaryWeight: number, hasCanary: boolean, salt = ''): Variant {
  return hasCanary && bucketOf(userId, salt) < canaryWeight ? 'canary' : 'stable';
}
