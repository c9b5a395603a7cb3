import { existsSync } from 'node:fs';
import { leaseFile, leaseHome } from './lease';

/**
 * Labels every Docker object amlsim creates carries (docs/architecture.md "Docker conventions").
 *
 * Labels are the only link between a container and the process that owns it: after a crash
 * nothing in memory remembers what was started, so the sweep finds orphans by label alone.
 */

/** Marks an object as created by amlsim; nothing without it is ever touched. */
export const LABEL_MANAGED = 'dev.amlsim.managed';
/** The session (one simulator process lifetime) that owns the object. */
export const LABEL_SESSION = 'dev.amlsim.session';
/**
 * Pid of the owning process, for people reading `docker ps`. The sweep does not judge by it: a
 * pid means nothing outside its PID namespace (lease.ts says what it judges by instead).
 */
export const LABEL_PID = 'dev.amlsim.pid';
/**
 * The lease home (lease.ts) of the temp dir where the owning session's lease is kept; set only
 * when the session held a lease as the object was made. A start-up sweep removes the object
 * once that lease has lapsed or is gone, and only if it sees the same lease home.
 */
export const LABEL_LEASE = 'dev.amlsim.lease';
/** Workspace the object belongs to, where one applies. */
export const LABEL_WORKSPACE = 'dev.amlsim.workspace';
/** Run (training job) the object belongs to, where one applies. */
export const LABEL_RUN = 'dev.amlsim.run';
/** Online service / endpoint the object belongs to, where one applies. */
export const LABEL_SERVICE = 'dev.amlsim.service';
/** What the object plays in the simulation: `node`, `vm`, `scoring`, `base`, … */
export const LABEL_ROLE = 'dev.amlsim.role';
/**
 * The id of the effect a container was started for (`<position>:<index>` of the fact that named
 * it, packages/core/src/aggregate/define-aggregate.ts): a retried start finds the container it
 * made instead of making a second.
 */
export const LABEL_EFFECT = 'dev.amlsim.effect';

/** Value of {@link LABEL_MANAGED} on every managed object. */
export const MANAGED_VALUE = 'true';

/** Roles a container or image can play; open-ended so a new kind needs no change here. */
export type AmlsimRole = 'node' | 'vm' | 'scoring' | 'base' | 'layer' | (string & {});

/** What {@link amlsimLabels} needs to label an object. */
export interface AmlsimLabelInput {
  /** Owning session id. Omit only for objects shared across sessions (the base image). */
  session?: string;
  /**
   * Owning process id. With it (and `session`), the object is the session's own: it is labelled
   * with the lease home if the session holds a lease, so a start-up sweep removes it once that
   * lease lapses. Omit only for shared objects.
   */
  pid?: number;
  /** Where the session's lease is looked for; default the temp dir. */
  leaseDir?: string;
  workspace?: string;
  run?: string;
  service?: string;
  role?: AmlsimRole;
}

/**
 * Builds the label map for a managed object: always `dev.amlsim.managed=true`, plus whichever
 * of session/pid/workspace/run/service/role are given.
 */
export function amlsimLabels(input: AmlsimLabelInput = {}): Record<string, string> {
  const labels: Record<string, string> = { [LABEL_MANAGED]: MANAGED_VALUE };
  if (input.session !== undefined) labels[LABEL_SESSION] = input.session;
  if (input.pid !== undefined) labels[LABEL_PID] = String(input.pid);
  // An object made while no lease was held is never judged by a start-up sweep (only a
  // session's own cleanup removes it): nothing could ever say its owner is gone.
  if (input.session !== undefined && input.pid !== undefined && existsSync(leaseFile(input.session, input.leaseDir))) {
    labels[LABEL_LEASE] = leaseHome(input.leaseDir);
  }
  if (input.workspace !== undefined) labels[LABEL_WORKSPACE] = input.workspace;
  if (input.run !== undefined) labels[LABEL_RUN] = input.run;
  if (input.service !== undefined) labels[LABEL_SERVICE] = input.service;
  if (input.role !== undefined) labels[LABEL_ROLE] = input.role;
  return labels;
}

/**
 * Labels for a container owned by this process: session + `process.pid` (+ the lease home while
 * the session holds its lease), so a later sweep removes it once the session's lease lapses.
 */
export function containerLabels(
  session: string,
  extra: Omit<AmlsimLabelInput, 'session' | 'pid'> = {},
  pid: number = process.pid,
): Record<string, string> {
  return amlsimLabels({ ...extra, session, pid });
}
