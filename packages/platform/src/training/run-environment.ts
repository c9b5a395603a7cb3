import { isSimError, type EventDataMap, type RunContext, type WorldState } from '@amlsim/core';
import type { ComputeDriver } from '../compute/compute-driver';
import { RUN_BUILD_LOG } from '../compute/environments';
import type { DataPlane } from '../platform-context';

type Prepared = { type: 'RunImagePrepared'; data: EventDataMap['RunImagePrepared'] } | { type: 'RunFailed'; data: EventDataMap['RunFailed'] };

/** The blob of a run's environment build log in the workspace storage, beside `logs/` and `outputs/` (S4.1). */
export const runBuildLogBlob = (runId: string): string => `ExperimentRun/dcid.${runId}/${RUN_BUILD_LOG}`;

/**
 * S8.3 managed step 1, "AML builds the Docker image if needed": the run's environment
 * dependencies are installed with npm on the host into the image (compute/environments.ts),
 * npm's output is kept with the run — encrypted in the workspace storage as the workspace
 * identity, at `azureml-logs/20_image_build_log.txt` — and the fact names it by path. A package
 * npm cannot install fails the run with the reason naming it (a user error: no image is left).
 */
export async function prepareRunImage(
  driver: ComputeDriver,
  p: { session: string; world: WorldState; storage: DataPlane['storage'] },
  run: RunContext,
): Promise<Prepared[]> {
  const ref = { runId: run.runId, workspaceId: run.workspaceId, workspace: run.workspace };
  let logged = false;
  const onBuildLog = (log: string) => {
    const ws = p.world.workspaces.byId[run.workspaceId];
    if (!ws?.identity || !ws.storageAccount || !ws.blobContainer) return;
    const identity = { kind: 'identity' as const, principalId: ws.identity.principalId, name: ws.workspace };
    p.storage.putBlob(identity, ws.storageAccount, ws.blobContainer, runBuildLogBlob(run.runId), Buffer.from(log));
    logged = true;
  };
  try {
    const image = await driver.prepareImage({ session: p.session, dependencies: run.dependencies, onBuildLog });
    const environment = image.environment && logged ? { environment: { ...image.environment, buildLog: runBuildLogBlob(run.runId) } } : {};
    return [{ type: 'RunImagePrepared', data: { ...ref, image: image.image, reused: image.reused, dependencies: run.dependencies, ...environment } }];
  } catch (error) {
    if (!isSimError(error) || (error.code !== 'EnvironmentBuildFailed' && error.code !== 'BadRequest')) throw error;
    return [{ type: 'RunFailed', data: { ...ref, reason: `${error.message}${logged ? ` (build log: ${RUN_BUILD_LOG})` : ''}` } }];
  }
}
