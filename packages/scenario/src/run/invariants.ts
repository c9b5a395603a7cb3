import type { StoredEvent } from '@amlsim/core';
import type { SecretRegistry } from '@amlsim/platform';

export type InvariantViolation = { invariant: string; message: string; events: StoredEvent[] };

/**
 * Global invariants, checked after every scenario (ARCHITECTURE.md "Tests"). Each returns
 * the violations it found; none means it held.
 */
export const INVARIANTS: ReadonlyArray<{
  name: string;
  check: (events: readonly StoredEvent[], ctx: { secrets: SecretRegistry }) => InvariantViolation[];
}> = [
  {
    // No secret value (token, key, connection string, password) is ever written to an event.
    name: 'no-secret-in-log',
    check: (events, { secrets }) =>
      events.flatMap((e) => {
        const kinds = secrets.findIn(JSON.stringify(e));
        return kinds.length
          ? [{ invariant: 'no-secret-in-log', message: `event #${e.position} ${e.type} contains a ${kinds.join(', ')} value`, events: [e] }]
          : [];
      }),
  },
  {
    // A refused command appends its CommandRejected and nothing else.
    name: 'rejection-changes-nothing',
    check: (events) => {
      const byCorrelation = new Map<string, StoredEvent[]>();
      for (const e of events) {
        const list = byCorrelation.get(e.meta.correlationId) ?? [];
        list.push(e);
        byCorrelation.set(e.meta.correlationId, list);
      }
      const out: InvariantViolation[] = [];
      for (const group of byCorrelation.values()) {
        const rejection = group.find((e) => e.type === 'CommandRejected');
        if (rejection && group.length > 1) {
          out.push({
            invariant: 'rejection-changes-nothing',
            message: `command ${String(rejection.data.command)} was rejected but also appended ${group
              .filter((e) => e !== rejection)
              .map((e) => e.type)
              .join(', ')}`,
            events: group,
          });
        }
      }
      return out;
    },
  },
];

export const checkInvariants = (events: readonly StoredEvent[], ctx: { secrets: SecretRegistry }): InvariantViolation[] =>
  INVARIANTS.flatMap((inv) => inv.check(events, ctx));
