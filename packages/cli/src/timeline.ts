import { laneOf, type StoredEvent } from '@amlsim/core';
import pc from 'picocolors';

/** Fields that are joins for machines, not facts for a reader of the timeline. */
const HIDDEN = new Set(['tenantId', 'workspaceId', 'principalId', 'assignmentId', 'tokenId', 'issuer', 'reason']);
const FAILURES = new Set(['CommandRejected', 'RunCallRefused', 'SignInFailed', 'ProvisioningFailed', 'WorkspaceCreationFailed', 'AuthorizationViolationRecorded']);

const LANE_COLOURS: Record<string, (s: string) => string> = {
  AAD: pc.blue,
  ARM: pc.magenta,
  RP: pc.cyan,
  KeyVault: pc.yellow,
  Storage: pc.green,
  Registry: pc.cyan,
  AppInsights: pc.blue,
  Platform: pc.gray,
};

const show = (v: unknown): string => {
  if (Array.isArray(v)) return v.some((x) => typeof x === 'object' && x !== null) ? `[${v.length} items]` : v.join(',');
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
};

/** The key fields of an event, as `key=value` pairs, in payload order. */
export const keyFields = (e: StoredEvent): string => {
  const parts = Object.entries(e.data)
    .filter(([k, v]) => !HIDDEN.has(k) && v !== undefined && !(k === 'principal' && v === e.meta.principal))
    .map(([k, v]) => `${k}=${show(v)}`);
  // A fact a compute target reported: the channel its call came in on (docs/control-plane.md).
  if (e.meta.channel) parts.push(`via=${e.meta.channel}`);
  if (typeof e.data.reason === 'string') parts.push(`— ${e.data.reason}`);
  return parts.join(' ');
};

/**
 * One timeline line: time since the session began, the service lane, the event, who acted,
 * and its key fields. Refusals and failures stand out in red with a cross.
 */
export const formatEvent = (e: StoredEvent, startMs: number, colour = true): string => {
  const t = `+${((Date.parse(e.meta.at) - startMs) / 1000).toFixed(3)}s`.padStart(10);
  const lane = laneOf(e.type);
  const failed = FAILURES.has(e.type);
  const paint = (f: (s: string) => string, s: string) => (colour ? f(s) : s);
  const mark = failed ? paint(pc.red, '✗') : ' ';
  const type = paint(failed ? pc.red : pc.bold, e.type.padEnd(30));
  const who = (e.meta.principal ?? '').padEnd(8);
  return `${paint(pc.dim, t)}  ${paint(LANE_COLOURS[lane] ?? ((s) => s), lane.padEnd(11))}${mark} ${type} ${who} ${keyFields(e)}`;
};
