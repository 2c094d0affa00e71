/** Exit codes of `npx recflow`: 0 success, 1 failure, 2 bad usage or input, 3 a gate or reviewer said no. */
export const EXIT = { ok: 0, failure: 1, usage: 2, refused: 3 } as const;
