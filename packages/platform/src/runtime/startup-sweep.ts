import type { EventDataMap } from '@amlsim/core';
import { connectDocker, type DockerEngine, type LeaseOptions } from '@amlsim/docker';
import { isSimError } from '@amlsim/core';
import { sweepLapsedLeases } from './session-temp';

/** What one start-up sweep removed of one session (the `OrphansSwept` fact). */
export type OrphansSwept = EventDataMap['OrphansSwept'];

export type StartupSweepOptions = {
  /** The Docker engine's socket; default the engine's standard socket. */
  dockerSocket?: string;
  /** Where leases are kept and when they lapse (lease.ts in packages/docker). */
  lease?: LeaseOptions;
  /** How long to wait for a Docker engine to answer before sweeping without it; default 1 000 ms. */
  dockerPingTimeoutMs?: number;
};

/**
 * The start-up sweep: removes what sessions whose lease has lapsed left behind — run, VM and
 * image-check containers and scoring replicas, node volumes, session images (on the Docker
 * engine, when one answers: a machine without one sweeps the rest), registry processes, temp
 * dirs and temporary data dirs — and returns one record per session swept, for the log.
 * A live simulator's objects are never touched, whatever PID namespace it runs in: liveness is
 * its lease (packages/docker/src/lease.ts), not its pid.
 */
export async function sweepOrphans(options: StartupSweepOptions = {}): Promise<OrphansSwept[]> {
  const bySession = new Map<string, OrphansSwept>();
  const entry = (session: string, why: OrphansSwept['why']): OrphansSwept => {
    let e = bySession.get(session);
    if (!e) bySession.set(session, (e = { session, why, containers: 0, volumes: 0, images: 0, registries: 0, tempDirs: 0, dataDirs: 0 }));
    return e;
  };
  // Docker first, while the lapsed leases are still there to judge by.
  let engine: DockerEngine | undefined;
  try {
    engine = await connectDocker({ ...(options.dockerSocket ? { socketPath: options.dockerSocket } : {}), pingTimeoutMs: options.dockerPingTimeoutMs ?? 1_000 });
  } catch (error) {
    if (!(isSimError(error) && error.code === 'DockerUnavailable')) throw error;
  }
  if (engine) {
    try {
      const result = await engine.sweep(options.lease ? { lease: options.lease } : {});
      for (const [session, counts] of Object.entries(result.sessions)) {
        if (counts.why === 'sessionClosed') continue;
        Object.assign(entry(session, counts.why), { containers: counts.containers, volumes: counts.volumes, images: counts.images });
      }
    } finally {
      await engine.close();
    }
  }
  for (const t of sweepLapsedLeases(options.lease)) {
    Object.assign(entry(t.session, t.why), { registries: t.registries, tempDirs: t.tempDirs, dataDirs: t.dataDirs });
  }
  return [...bySession.values()];
}
