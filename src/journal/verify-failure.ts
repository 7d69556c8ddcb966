/** How verification reports its first failure (verify.ts and its entry pass, verify-entries.ts). */

export type VerifyFailureAt = 'seq' | 'checkpoint' | 'trusted' | 'manifest' | 'key' | 'file';

export interface VerifyFailure {
  at: VerifyFailureAt;
  seq?: number;
  checkpoint?: number;
  message: string;
}

/** Thrown by a check with the failure to report; verifyExport turns it into its result. */
export class Failed {
  constructor(readonly failure: VerifyFailure) {}
}

export function fail(failure: VerifyFailure): never {
  throw new Failed(failure);
}

export function describeError(err: unknown): string {
  // Not `instanceof Error`: errors from node core can come from another realm (jest's vm).
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}
