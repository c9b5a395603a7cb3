import { errors, type ExpectedVersion } from '@amlsim/core';

/**
 * Optimistic concurrency, shared by every store so they cannot disagree on its meaning:
 * `'any'` skips the check, `'no-stream'` means version 0, a number must equal the stream's
 * current version exactly (ahead or behind are both conflicts).
 */
export function assertExpectedVersion(stream: string, expected: ExpectedVersion, actual: number): void {
  if (expected === 'any') return;
  const wanted = expected === 'no-stream' ? 0 : expected;
  if (actual !== wanted) throw errors.wrongExpectedVersion(stream, expected, actual);
}
