import type { EventStore, RunStatus } from '@amlsim/core';
import { leaseState } from '@amlsim/docker';
import { createPlatform, type Platform } from './platform';
import { isResumable } from './identity/resumable-session';
import { SessionScan } from './runtime/recovery';

export type ResumedSession = {
  session: string;
  /** Its workspaces left mid-creation: rolled back from the resource under way, or completed. */
  workspaces: Array<{ workspaceId: string; outcome: 'rolledBack' | 'completed' }>;
  /** Its live runs whose targets were gone: ended Failed PlatformRestarted before it went on. */
  lost: string[];
  /** Its runs whose containers ran on, taken back, and how each then ended. */
  reattached: Array<{ runId: string; status: RunStatus | 'timedOut' }>;
  /** Its runs whose targets had not started yet (queued, waiting for a node), driven on from their next step, and how each then ended. */
  drivenOn: Array<{ runId: string; status: RunStatus | 'timedOut' }>;
  /** Its attached VMs: taken back (their containers ran on), or lost (gone: the runs on them failed PlatformRestarted). */
  vms: { reattached: string[]; lost: string[] };
  /** Its images left being made: carried on from the step under way, and how each ended. */
  images: Array<{ imageId: string; image: string; status: string }>;
  /** Its deployments left starting replicas: carried on, and how each ended. */
  deployments: Array<{ service: string; status: 'Healthy' | 'Failed'; reason?: string }>;
  /** Its web services whose replicas all ran on: served again (until the session closes). */
  restored: string[];
};

export type ResumeOptions = {
  store: EventStore;
  dataDir: string;
  dockerSocket?: string;
  /** How long to wait for a re-attached run to end (default 30 minutes). */
  runTimeoutMs?: number;
  /** Told as each session's runs are taken back, before they are waited for. */
  onReattached?: (session: string, runs: string[]) => void;
  /**
   * What else goes on in the session once its runs are taken back, before it closes: the CLI
   * plays the rest of the scenario it was playing (packages/scenario `continueScenario`).
   */
  goOn?: (platform: Platform) => Promise<void>;
  /** The log as already read (runtime/recovery.ts): shared with the recovery that follows, so the log is read once. */
  scan?: SessionScan;
};

/**
 * The first half of crash recovery (docs/architecture.md "Crash recovery"), level-triggered like
 * a controller: each session of the log whose simulator died (it neither closed nor was
 * recovered, it saved what a resume needs, and its lease has lapsed) is gone on with by this
 * process — its read models folded from its facts, its lease taken over before any sweep can
 * take its containers — its attached VMs whose containers ran on are taken back
 * (VirtualMachineService.reattach), every run whose container (or management code on a VM) ran on is re-attached and waited for
 * until it ends, as if the simulator had never gone; its images and deployments left under way
 * are carried on, and its web services whose replicas ran on are served again; every run whose target had not started yet
 * (queued on a cluster, a node provisioning for it) is driven on from its next step, its clusters
 * folded from the log (RunManager.resume), and waited for too; every workspace it left mid-creation is
 * rolled back from the resource under way (or completed, past its last resource). Then the session closes as a session does
 * (its containers, volumes and channels go). What is left unfinished of it (runs with no
 * container left, nodes, images, services) is ended by `recoverAbandonedSessions`
 * (runtime/recovery.ts), called after this.
 *
 * Call it only while holding the data dir (runtime/data-dir-lock.ts).
 */
export async function resumeAbandonedSessions(options: ResumeOptions): Promise<ResumedSession[]> {
  const scan = (options.scan ?? new SessionScan(options.store)).catchUp();
  const closed = new Set(options.store.loadCheckpoints().map((c) => c.name.replace(/^session:/, '')));
  const candidates = [...scan.sessions]
    .filter(([s, seen]) => !seen.recovered && !closed.has(s) && isResumable(options.dataDir, s) && leaseState(s).state !== 'held')
    .map(([s]) => s);
  const out: ResumedSession[] = [];
  for (const session of candidates) {
    const platform: Platform = await createPlatform({
      store: options.store,
      dataDir: options.dataDir,
      resume: session,
      ...(options.dockerSocket ? { dockerSocket: options.dockerSocket } : {}),
    });
    try {
      const workspaces = await platform.reconcileWorkspaces();
      const { reattached: runs, drivenOn: driven, lost, vms } = await platform.reattachRuns();
      if (runs.length > 0) options.onReattached?.(session, runs);
      // Inference under way goes on whether or not a scenario does: an image half-pushed is
      // pushed and created, a deployment half-started is started, rather than failed by
      // recovery only because nothing continues the session that asked for it.
      const images = await platform.resumeImages();
      const deployments = await platform.resumeDeployments();
      const restored = await platform.restoreWebservices();
      await options.goOn?.(platform);
      const ended = (ids: string[]) =>
        Promise.all(
          ids.map(async (runId) => ({
            runId,
            status: await platform.runs.waitFor(runId, options.runTimeoutMs ?? 30 * 60_000).catch(() => 'timedOut' as const),
          })),
        );
      const [reattached, drivenOn] = await Promise.all([ended(runs), ended(driven)]);
      out.push({ session, workspaces, lost, reattached, drivenOn, vms, images, deployments, restored });
    } finally {
      await platform.close();
    }
  }
  return out;
}
