import type Docker from 'dockerode';
import { hasStatus } from './containers';
import { LABEL_LEASE, LABEL_MANAGED, LABEL_SESSION, MANAGED_VALUE } from './labels';
import { type LEASE_TTL_MS, leaseHome, leaseState, type LeaseOptions } from './lease';
import { removeImagesWhereOn } from './images';
import { removeVolumeOn } from './volumes';

/** Which managed objects a sweep removes. */
export interface SweepOptions {
  /**
   * Remove everything of this session, whoever owns it and whether or not it runs (shutdown).
   * Without it, the sweep removes what belongs to sessions whose lease has lapsed (start-up).
   */
  session?: string;
  /** Where leases are kept and when they lapse (start-up); defaults: the temp dir, {@link LEASE_TTL_MS}. */
  lease?: LeaseOptions;
}

/** What a sweep removed of one session. */
export interface SweptCounts {
  containers: number;
  volumes: number;
  images: number;
}

/** How many objects a sweep removed, in all and per session. */
export interface SweepResult extends SweptCounts {
  /** Per session whose objects were removed: the counts, and why its owner was judged gone. */
  sessions: Record<string, SweptCounts & { why: SweepReason }>;
}

/** Why a session's objects were swept: its owner died (seen from its own PID namespace), its lease expired, or it was released with objects left. */
export type SweepReason = 'ownerExited' | 'leaseExpired' | 'leaseReleased' | 'sessionClosed';

/**
 * Signal 0 checks existence without delivering anything. ESRCH: no such process (dead).
 * EPERM: it exists but belongs to someone else, so it is alive. Meaningful only in the
 * caller's own PID namespace: never a reason to sweep (lease.ts).
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Why the session owning an object with these labels is gone, or `undefined` while it may live.
 * Only an object labelled with our lease home is judged (lease.ts): one whose lease lives in a
 * temp dir we cannot see, one made without a lease, and unlabelled shared ones stay.
 */
export function sessionJudge(options: LeaseOptions = {}): (labels: Record<string, string> | null | undefined) => { session: string; why: SweepReason } | undefined {
  let home: string | undefined;
  const verdicts = new Map<string, SweepReason | undefined>(); // one look per session per sweep
  return (labels) => {
    const session = labels?.[LABEL_SESSION];
    const lease = labels?.[LABEL_LEASE];
    if (!session || !lease) return undefined;
    home ??= leaseHome(options.dir);
    if (lease !== home) return undefined;
    if (!verdicts.has(session)) {
      const s = leaseState(session, options);
      verdicts.set(session, s.state === 'held' ? undefined : s.state === 'absent' ? 'leaseReleased' : s.why);
    }
    const why = verdicts.get(session);
    return why ? { session, why } : undefined;
  };
}

/**
 * Removes orphaned containers, then volumes (a volume in use cannot go before its container),
 * then images (the session images a crashed simulator built: scoring images, dependency layers).
 * Only objects labelled `dev.amlsim.managed=true` are ever considered; at start-up, only those
 * of a session whose lease has lapsed ({@link sessionJudge}).
 */
export async function sweepOn(docker: Docker, options: SweepOptions = {}): Promise<SweepResult> {
  const filter = [`${LABEL_MANAGED}=${MANAGED_VALUE}`];
  if (options.session !== undefined) filter.push(`${LABEL_SESSION}=${options.session}`);
  const judge = options.session !== undefined ? (): { session: string; why: SweepReason } => ({ session: options.session!, why: 'sessionClosed' }) : sessionJudge(options.lease);
  const result: SweepResult = { containers: 0, volumes: 0, images: 0, sessions: {} };
  const count = (verdict: { session: string; why: SweepReason }, kind: keyof SweptCounts) => {
    const s = (result.sessions[verdict.session] ??= { containers: 0, volumes: 0, images: 0, why: verdict.why });
    s[kind]++;
    result[kind]++;
  };

  for (const c of await docker.listContainers({ all: true, filters: { label: filter } })) {
    const verdict = judge(c.Labels);
    if (!verdict) continue;
    try {
      await docker.getContainer(c.Id).remove({ force: true, v: true });
      count(verdict, 'containers');
    } catch (err) {
      if (!hasStatus(err, 404, 409)) throw err; // someone else removed it first
    }
  }

  const { Volumes } = await docker.listVolumes({ filters: { label: filter } });
  for (const v of Volumes ?? []) {
    const verdict = judge(v.Labels);
    if (!verdict) continue;
    await removeVolumeOn(docker, v.Name);
    count(verdict, 'volumes');
  }

  // Children before parents (an image another is built on refuses removal).
  // The removal loop lists again after each round, so the per-session counts come from one
  // listing beforehand.
  const doomedImages = (await docker.listImages({ filters: { label: filter } })).flatMap((i) => {
    const verdict = judge(i.Labels);
    return verdict ? [verdict] : [];
  });
  if (doomedImages.length > 0) {
    await removeImagesWhereOn(docker, filter, (labels) => judge(labels) !== undefined);
    for (const verdict of doomedImages) count(verdict, 'images');
  }
  return result;
}

/** What of a session is still on the engine (an invariant after every scenario: nothing). */
export async function listSessionObjectsOn(docker: Docker, session: string): Promise<{ containers: string[]; volumes: string[] }> {
  const filter = [`${LABEL_MANAGED}=${MANAGED_VALUE}`, `${LABEL_SESSION}=${session}`];
  const containers = (await docker.listContainers({ all: true, filters: { label: filter } })).map((c) => c.Id.slice(0, 12));
  const { Volumes } = await docker.listVolumes({ filters: { label: filter } });
  return { containers, volumes: (Volumes ?? []).map((v) => v.Name) };
}
