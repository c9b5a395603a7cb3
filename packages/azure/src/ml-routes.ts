import { realpathSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAbsolute, relative, sep } from 'node:path';
import { STREAMS, type ComputeRecord, type WorkspaceRecord } from '@amlsim/core';
import type { Platform } from '@amlsim/platform';
import { ArmHttpError, badRequest, notFound } from './http-errors';
import { acceptedOrRefused, type Operations } from './operations';
import { appInsightsId, keyVaultId, lastSegment, registryId, storageAccountId, workspaceId } from './resource-ids';
import type { ArmRequest, ArmResponse, ArmRoute } from './router';

const WS = '/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces/{workspace}';
const ML = 'Microsoft.MachineLearningServices' as const;
/** What an asset's name or version may be (as model names). */
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

/** Where the routes reach the platform's files: the directories a `file://` code or model URI may name. */
export type MlRouteOptions = {
  operations: Operations;
  /** The operation-status URL of an operation (absolute, with its api-version). */
  operationUrl: (subscription: string, location: string, operationId: string, apiVersion: string) => string;
  /** Directories a `file://` codeUri or modelUri may lead into (symlinks followed). */
  allowedRoots: string[];
};

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** The workspace a path names; 404 as ARM answers when it is in another resource group or subscription. */
const workspaceAt = (platform: Platform, p: Record<string, string>, anyState = false): WorkspaceRecord => {
  const ws = platform.arm.workspaceInAnyState(p['workspace']!);
  if (ws.subscription.toLowerCase() !== p['subscription']!.toLowerCase() || ws.resourceGroup.toLowerCase() !== p['resourceGroup']!.toLowerCase()) {
    throw notFound(`The Resource 'Microsoft.MachineLearningServices/workspaces/${p['workspace']}' under resource group '${p['resourceGroup']}' was not found.`);
  }
  if (!anyState && ws.status !== 'Succeeded') throw new ArmHttpError(409, 'Conflict', `Workspace '${ws.workspace}' is ${ws.status}; it cannot take this call yet.`);
  return ws;
};

const provisioningState = (ws: WorkspaceRecord) => (ws.status === 'Creating' ? 'Creating' : ws.status);

/** A workspace as ARM returns it (2022-10-01 shape). */
export const workspaceResource = (ws: WorkspaceRecord, tenantId: string) => ({
  id: workspaceId(ws),
  name: ws.workspace,
  type: 'Microsoft.MachineLearningServices/workspaces',
  location: ws.region,
  identity: ws.identity ? { type: 'SystemAssigned', principalId: ws.identity.principalId, tenantId } : { type: 'SystemAssigned' },
  sku: { name: ws.edition === 'enterprise' ? 'Enterprise' : 'Basic', tier: ws.edition === 'enterprise' ? 'Enterprise' : 'Basic' },
  properties: {
    workspaceId: ws.workspaceId,
    friendlyName: ws.workspace,
    provisioningState: provisioningState(ws),
    ...(ws.keyVault ? { keyVault: keyVaultId(ws) } : {}),
    ...(ws.storageAccount ? { storageAccount: storageAccountId(ws) } : {}),
    ...(ws.registry ? { containerRegistry: registryId(ws) } : {}),
    ...(ws.appInsights ? { applicationInsights: appInsightsId(ws) } : {}),
    hbiWorkspace: ws.customerManagedKey,
    publicNetworkAccess: 'Disabled',
  },
});

const computeResource = (ws: WorkspaceRecord, c: ComputeRecord) => ({
  id: `${workspaceId(ws)}/computes/${c.compute}`,
  name: c.compute,
  type: 'Microsoft.MachineLearningServices/workspaces/computes',
  location: c.region ?? ws.region,
  properties: {
    computeType: c.type,
    provisioningState: 'Succeeded',
    ...(c.attached ? { resourceId: `/subscriptions/${ws.subscription}/resourceGroups/${ws.resourceGroup}/providers/Microsoft.Compute/virtualMachines/${c.attached.vm}` } : {}),
    properties:
      c.type === 'AmlCompute'
        ? {
            vmSize: c.vmSize,
            scaleSettings: { minNodeCount: c.minNodes, maxNodeCount: c.maxNodes, nodeIdleTimeBeforeScaleDown: `PT${c.idleSecondsBeforeScaledown}S` },
            currentNodeCount: Object.values(c.nodes).filter((n) => (n as { state?: string }).state !== 'Deleted').length,
            allocationState: 'Steady',
          }
        : { vmSize: c.vmSize },
  },
});

/** ISO 8601 duration in seconds (PT120S, PT2M, PT1H30M), as scaleSettings gives it. */
const seconds = (d: string | undefined, field: string): number | undefined => {
  if (d === undefined) return undefined;
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/.exec(d);
  if (!m || d === 'PT') throw badRequest('InvalidRequestContent', `${field} '${d}' is not an ISO 8601 duration such as PT120S.`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
};

/** A `file://` URI (or absolute path) of a local directory or file, confined to the allowed roots. */
const localPath = (uri: string | undefined, field: string, roots: string[]): string => {
  if (!uri) throw badRequest('InvalidRequestContent', `${field} is required: a file:// URI of a local directory (the emulator reads code and models from the local disk; docs/azure.md).`);
  let path: string;
  try {
    path = uri.startsWith('file:') ? fileURLToPath(uri) : uri;
  } catch {
    throw badRequest('InvalidRequestContent', `${field} '${uri}' is not a file:// URI.`);
  }
  if (!isAbsolute(path)) throw badRequest('InvalidRequestContent', `${field} '${uri}' is not a file:// URI or an absolute path; azureml:// and https:// data URIs are not modeled (docs/azure.md).`);
  let real: string;
  try {
    real = realpathSync(path);
    statSync(real);
  } catch {
    throw badRequest('InvalidRequestContent', `${field} '${uri}' does not exist on this machine.`);
  }
  const inside = roots.some((root) => {
    const rel = relative(realpathSync(root), real);
    return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
  });
  if (!inside) throw new ArmHttpError(403, 'PathNotAllowed', `${field} '${uri}' is outside the directories this emulator may read (${roots.join(', ')}); start it with --allow-path to add one.`);
  return real;
};

/** The job statuses of the 2022-10-01 API the run statuses map onto (the same names, mostly). */
const JOB_STATUSES = new Set(['NotStarted', 'Starting', 'Provisioning', 'Preparing', 'Queued', 'Running', 'Finalizing', 'CancelRequested', 'Completed', 'Failed', 'Canceled', 'NotResponding', 'Paused', 'Unknown']);

/** `node train.js --epochs 3` (or python) -> the script and its arguments. */
const parseCommand = (command: string | undefined): { script: string; args: string[] } => {
  const words = (command ?? '').trim().split(/\s+/).filter(Boolean);
  if (words[0] === 'node' || words[0] === 'python' || words[0] === 'python3') words.shift();
  const script = words.shift();
  if (!script) throw badRequest('InvalidRequestContent', `properties.command '${command ?? ''}' names no script; write e.g. 'node train.js --epochs 3'.`);
  return { script: script.replace(/^\.\//, ''), args: words };
};

/** `azureml://datastores/<name>/paths/<path>` -> the datastore and path of a job input. */
const datastoreUri = (uri: string, input: string): { datastore: string; path: string } => {
  const m = /^azureml:\/\/datastores\/([^/]+)\/paths\/?(.*)$/.exec(uri);
  if (!m) throw badRequest('InvalidRequestContent', `inputs.${input}.uri '${uri}' is not a datastore URI such as azureml://datastores/<name>/paths/<path>.`);
  return { datastore: m[1]!, path: m[2]!.replace(/\/+$/, '') };
};

export function mlRoutes(o: MlRouteOptions): ArmRoute[] {
  const route = (method: ArmRoute['method'], path: string, type: string, handle: ArmRoute['handle']): ArmRoute => ({ method, path, provider: ML, type, handle });
  const accepted = (req: ArmRequest, location: string, operation: string, status: 201 | 202, body?: unknown): ArmResponse => {
    const url = o.operationUrl(req.params['subscription']!, location, operation, req.query['api-version']!);
    return { status, ...(body !== undefined ? { body } : {}), headers: { 'azure-asyncoperation': url, location: url, 'retry-after': '1' } };
  };

  return [
    route('GET', '/subscriptions/{subscription}/providers/Microsoft.MachineLearningServices/locations/{location}/operationsStatus/{operation}', 'locations/operationsStatus', async (req) => {
      const op = o.operations.get(req.params['operation']!);
      if (!op) throw notFound(`The operation '${req.params['operation']}' was not found (operations live as long as the emulator process).`);
      return { status: 200, body: { id: req.path, name: op.id, status: op.status, startTime: op.startTime, ...(op.endTime ? { endTime: op.endTime } : {}), ...(op.error ? { error: op.error } : {}) } };
    }),
    route('GET', '/subscriptions/{subscription}/providers/Microsoft.MachineLearningServices/workspaces', 'workspaces', async (req, platform) => {
      const list = await platform.arm.listWorkspaces(req.token, { subscription: req.params['subscription']! });
      return { status: 200, body: { value: list.map((ws) => workspaceResource(ws, platform.directory.tenantId)) } };
    }),
    route('GET', '/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.MachineLearningServices/workspaces', 'workspaces', async (req, platform) => {
      const list = await platform.arm.listWorkspaces(req.token, { subscription: req.params['subscription']!, resourceGroup: req.params['resourceGroup']! });
      return { status: 200, body: { value: list.map((ws) => workspaceResource(ws, platform.directory.tenantId)) } };
    }),
    route('PUT', WS, 'workspaces', async (req, platform) => {
      const p = req.params;
      const location = str(req.body['location']);
      if (!location) throw badRequest('LocationRequired', "The location property is required for this definition (e.g. 'eastus').");
      const existing = platform.world.workspaces.byName[p['workspace']!];
      if (existing) {
        // ARM PUT is idempotent: the same workspace again is its current state. The simulator's
        // workspace names are unique in the directory (scenarios name them alone), so the name in
        // another resource group is a conflict.
        const other = platform.world.workspaces.byId[existing]!;
        if (other.resourceGroup.toLowerCase() !== p['resourceGroup']!.toLowerCase() || other.subscription.toLowerCase() !== p['subscription']!.toLowerCase()) {
          throw new ArmHttpError(409, 'Conflict', `A workspace named '${other.workspace}' already exists (in ${other.scope.replace(/\/providers\/.*$/, '')}); workspace names are unique in the simulator's directory.`);
        }
        const ws = workspaceAt(platform, p, true);
        return { status: 200, body: workspaceResource(await platform.arm.readWorkspace(req.token, { workspace: ws.workspace }), platform.directory.tenantId) };
      }
      const sku = str(obj(req.body['sku'])['name'])?.toLowerCase();
      if (sku !== undefined && sku !== 'basic' && sku !== 'enterprise') throw badRequest('InvalidSku', `sku.name '${sku}' is not a workspace edition; use Basic or Enterprise.`);
      const work = platform.arm.createWorkspace(req.token, {
        name: p['workspace']!,
        resourceGroup: p['resourceGroup']!,
        subscription: p['subscription']!,
        region: location,
        ...(sku ? { edition: sku as 'basic' | 'enterprise' } : {}),
      });
      await acceptedOrRefused(work, () => platform.world.workspaces.byName[p['workspace']!] !== undefined);
      const ws = platform.arm.workspaceInAnyState(p['workspace']!);
      // 202 with the operation to poll: the Python SDK's generated code accepts only 200/202 here.
      return accepted(req, location, o.operations.track(work), 202, workspaceResource(ws, platform.directory.tenantId));
    }),
    route('GET', WS, 'workspaces', async (req, platform) => {
      const ws = workspaceAt(platform, req.params, true);
      return { status: 200, body: workspaceResource(await platform.arm.readWorkspace(req.token, { workspace: ws.workspace }), platform.directory.tenantId) };
    }),
    route('DELETE', WS, 'workspaces', async (req, platform) => {
      // ARM answers 204 for what is not there (a DELETE is idempotent).
      if (!platform.world.workspaces.byName[req.params['workspace']!]) return { status: 204 };
      const ws = workspaceAt(platform, req.params);
      const work = platform.ml.deleteWorkspace(req.token, { workspace: ws.workspace });
      await work;
      return accepted(req, ws.region, o.operations.track(work), 202);
    }),
    route('POST', `${WS}/listKeys`, 'workspaces', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      const keys = await platform.arm.listWorkspaceKeys(req.token, { workspace: ws.workspace });
      return {
        status: 200,
        body: {
          userStorageKey: keys.userStorageKey,
          userStorageResourceId: storageAccountId(ws),
          ...(ws.appInsights ? { appInsightsInstrumentationKey: ws.appInsights } : {}),
        },
      };
    }),
    route('POST', `${WS}/resyncKeys`, 'workspaces', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      await platform.arm.resyncKeys(req.token, { workspace: ws.workspace });
      return { status: 200 };
    }),
    // ---- computes ------------------------------------------------------------------------
    route('PUT', `${WS}/computes/{compute}`, 'workspaces/computes', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      const name = req.params['compute']!;
      // ARM PUT is idempotent: a compute that exists is answered as it is (resizing is not modeled).
      if (platform.world.computes.byKey[`${ws.workspaceId}/${name}`]) {
        return { status: 200, body: computeResource(ws, await platform.ml.getCompute(req.token, { workspace: ws.workspace, compute: name })) };
      }
      const props = obj(req.body['properties']);
      const computeType = str(props['computeType']);
      let work: Promise<unknown>;
      if (computeType === 'AmlCompute') {
        const inner = obj(props['properties']);
        const scale = obj(inner['scaleSettings']);
        const idle = seconds(str(scale['nodeIdleTimeBeforeScaleDown']), 'properties.properties.scaleSettings.nodeIdleTimeBeforeScaleDown');
        work = platform.ml.createCompute(req.token, {
          workspace: ws.workspace,
          name,
          type: 'AmlCompute',
          ...(str(inner['vmSize']) ? { vmSize: str(inner['vmSize'])! } : {}),
          ...(typeof scale['minNodeCount'] === 'number' ? { minNodes: scale['minNodeCount'] } : {}),
          ...(typeof scale['maxNodeCount'] === 'number' ? { maxNodes: scale['maxNodeCount'] } : {}),
          ...(idle !== undefined ? { idleSecondsBeforeScaledown: idle } : {}),
        });
      } else if (computeType === 'VirtualMachine') {
        const inner = obj(props['properties']);
        const admin = obj(inner['administratorAccount']);
        const resourceId = str(props['resourceId']);
        if (!resourceId) throw badRequest('InvalidRequestContent', 'properties.resourceId is required to attach a VirtualMachine: the ARM id of a VM made with createVm.');
        work = platform.vms.attachCompute(req.token, {
          workspace: ws.workspace,
          name,
          type: 'VirtualMachine',
          vm: lastSegment(resourceId),
          username: str(admin['username']) ?? '',
          password: str(admin['password']) ?? '',
        });
      } else {
        throw badRequest('InvalidRequestContent', `properties.computeType '${computeType ?? ''}' is not modeled; use AmlCompute (create) or VirtualMachine (attach).`);
      }
      await work;
      const c = await platform.ml.getCompute(req.token, { workspace: ws.workspace, compute: name });
      return accepted(req, ws.region, o.operations.track(Promise.resolve()), 201, computeResource(ws, c));
    }),
    route('DELETE', `${WS}/computes/{compute}`, 'workspaces/computes', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      if (!platform.world.computes.byKey[`${ws.workspaceId}/${req.params['compute']}`]) return { status: 204 };
      const work = platform.ml.deleteCompute(req.token, { workspace: ws.workspace, compute: req.params['compute']! });
      await work;
      return accepted(req, ws.region, o.operations.track(work), 202);
    }),
    route('GET', `${WS}/computes/{compute}`, 'workspaces/computes', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      return { status: 200, body: computeResource(ws, await platform.ml.getCompute(req.token, { workspace: ws.workspace, compute: req.params['compute']! })) };
    }),
    // ---- code assets: a snapshot of a local directory (S8.2) -----------------------------
    route('PUT', `${WS}/codes/{name}/versions/{version}`, 'workspaces/codes/versions', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      const props = obj(req.body['properties']);
      const codeUri = str(props['codeUri']);
      const source = localPath(codeUri, 'properties.codeUri', o.allowedRoots);
      const { name, version } = req.params as { name: string; version: string };
      // The path's segments are decoded: a name must not smuggle a '/' (or '..') into what it names.
      for (const [what, value] of [['code name', name], ['code version', version]] as const) {
        if (!ASSET_NAME.test(value)) throw badRequest('InvalidRequestContent', `The ${what} '${value}' is invalid: 1-255 letters, digits, '.', '_' or '-', starting with a letter or digit.`);
      }
      if (findCode(platform, ws, name, version)) throw new ArmHttpError(409, 'Conflict', `Code version '${name}:${version}' exists; code versions cannot be changed. Register a new version.`);
      const snap = await platform.ml.snapshot(req.token, { workspace: ws.workspace, experiment: name, source, asset: { name, version } });
      return { status: 201, body: codeResource(ws, name, version, codeUri!, snap.snapshotId) };
    }),
    route('GET', `${WS}/codes/{name}/versions/{version}`, 'workspaces/codes/versions', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      await platform.arm.readWorkspace(req.token, { workspace: ws.workspace });
      const { name, version } = req.params as { name: string; version: string };
      const found = findCode(platform, ws, name, version);
      if (!found) throw notFound(`Code version '${name}:${version}' was not found in workspace '${ws.workspace}'.`);
      return { status: 200, body: codeResource(ws, name, version, '', found) };
    }),
    // ---- jobs: a command job is a run on a compute target (S8.3) -------------------------
    route('PUT', `${WS}/jobs/{job}`, 'workspaces/jobs', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      const props = obj(req.body['properties']);
      if (str(props['jobType']) !== 'Command') throw badRequest('InvalidRequestContent', `properties.jobType '${str(props['jobType']) ?? ''}' is not modeled; Command is.`);
      const codeId = str(props['codeId']);
      if (!codeId) throw badRequest('InvalidRequestContent', 'properties.codeId is required: the ARM id of a code version (PUT .../codes/{name}/versions/{version}).');
      const code = /\/codes\/([^/]+)\/versions\/([^/]+)$/i.exec(codeId);
      const snapshotId = code ? findCode(platform, ws, code[1]!, code[2]!) : undefined;
      if (!snapshotId) throw notFound(`properties.codeId '${codeId}' names no code version of workspace '${ws.workspace}'.`);
      const computeId = str(props['computeId']);
      if (!computeId) throw badRequest('InvalidRequestContent', 'properties.computeId is required: the ARM id (or name) of a compute of the workspace.');
      const { script, args } = parseCommand(str(props['command']));
      const env = Object.fromEntries(Object.entries(obj(props['environmentVariables'])).map(([k, v]) => [k, String(v)]));
      const inputs = Object.fromEntries(
        Object.entries(obj(props['inputs'])).map(([name, raw]) => {
          const input = obj(raw);
          const mode = str(input['mode']) ?? 'ReadOnlyMount';
          if (mode !== 'ReadOnlyMount' && mode !== 'Download') throw badRequest('InvalidRequestContent', `inputs.${name}.mode '${mode}' is not modeled; ReadOnlyMount and Download are.`);
          return [name, { ...datastoreUri(str(input['uri']) ?? '', name), mode: mode === 'Download' ? ('download' as const) : ('mount' as const) }];
        }),
      );
      const experiment = str(props['experimentName']) ?? 'Default';
      const { runId } = await platform.ml.submitRun(req.token, {
        workspace: ws.workspace,
        runId: req.params['job']!,
        experiment,
        compute: lastSegment(computeId),
        snapshotId,
        script,
        args,
        env,
        ...(Object.keys(inputs).length > 0 ? { inputs } : {}),
      });
      return { status: 201, body: await jobResource(platform, req.token, ws, runId, props) };
    }),
    route('GET', `${WS}/jobs/{job}`, 'workspaces/jobs', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      return { status: 200, body: await jobResource(platform, req.token, ws, req.params['job']!, {}) };
    }),
    route('POST', `${WS}/jobs/{job}/cancel`, 'workspaces/jobs', async (req, platform) => {
      workspaceAt(platform, req.params);
      await platform.ml.cancelRun(req.token, { runId: req.params['job']! });
      return { status: 202, headers: { location: `${req.path}?api-version=${req.query['api-version']}`, 'retry-after': '1' } };
    }),
    // ---- models (S8.5) --------------------------------------------------------------------
    route('PUT', `${WS}/models/{name}/versions/{version}`, 'workspaces/models/versions', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      const { name, version } = req.params as { name: string; version: string };
      const props = obj(req.body['properties']);
      const modelUri = str(props['modelUri']);
      const path = localPath(modelUri, 'properties.modelUri', o.allowedRoots);
      const versions = platform.world.models[ws.workspaceId]?.[name] ?? [];
      const next = versions.length + 1;
      if (Number(version) !== next) {
        if (versions.some((v) => String(v.version) === version)) throw new ArmHttpError(409, 'Conflict', `Model version '${name}:${version}' exists; model versions cannot be changed.`);
        throw badRequest('InvalidRequestContent', `Model versions of '${name}' are numbered in order: the next is ${next}, not '${version}'.`);
      }
      const tags = Object.fromEntries(Object.entries(obj(props['tags'])).map(([k, v]) => [k, String(v)]));
      const m = await platform.models.registerModel(req.token, { workspace: ws.workspace, name, path, ...(Object.keys(tags).length ? { tags } : {}) });
      return { status: 201, body: modelResource(ws, m) };
    }),
    route('GET', `${WS}/models/{name}/versions/{version}`, 'workspaces/models/versions', async (req, platform) => {
      const ws = workspaceAt(platform, req.params);
      const version = Number(req.params['version']);
      if (!Number.isInteger(version) || version < 1) throw badRequest('InvalidRequestContent', `Model version '${req.params['version']}' is not a version number (1, 2, …).`);
      return { status: 200, body: modelResource(ws, await platform.models.getModel(req.token, { workspace: ws.workspace, name: req.params['name']!, version })) };
    }),
  ];
}

/** The snapshot a code version was registered as (its SnapshotCreated fact in the workspace's snapshot stream). */
const findCode = (platform: Platform, ws: WorkspaceRecord, name: string, version: string): string | undefined => {
  for (const e of platform.context.store.readStream(STREAMS.snapshots(ws.workspaceId))) {
    if (e.type !== 'SnapshotCreated') continue;
    const asset = (e.data as { asset?: { name: string; version: string } }).asset;
    if (asset && asset.name === name && asset.version === version) return String(e.data['snapshotId']);
  }
  return undefined;
};

const codeResource = (ws: WorkspaceRecord, name: string, version: string, codeUri: string, snapshotId: string) => ({
  id: `${workspaceId(ws)}/codes/${name}/versions/${version}`,
  name: version,
  type: 'Microsoft.MachineLearningServices/workspaces/codes/versions',
  properties: { codeUri, isAnonymous: false, isArchived: false, properties: { 'azureml.snapshotId': snapshotId }, tags: {} },
});

const modelResource = (ws: WorkspaceRecord, m: { model: string; version: number; tags: Record<string, string>; files: Array<{ path: string; bytes: number; sha256: string }> }) => ({
  id: `${workspaceId(ws)}/models/${m.model}/versions/${m.version}`,
  name: String(m.version),
  type: 'Microsoft.MachineLearningServices/workspaces/models/versions',
  properties: { modelUri: `azureml://models/${m.model}/versions/${m.version}`, tags: m.tags, properties: { 'azureml.files': String(m.files.length) }, isAnonymous: false, isArchived: false },
});

/**
 * A job as ARM returns it: its status is the run's latest (S8.4), and, since the 2022-10-01
 * API serves metrics over MLflow (not modeled), the last value of each metric the run logged
 * is in `properties.properties` as `metrics.<name>` (docs/azure.md "Parity").
 */
const jobResource = async (platform: Platform, token: string | undefined, ws: WorkspaceRecord, runId: string, given: Record<string, unknown>) => {
  const { statuses } = await platform.ml.getRunStatusHistory(token, { runId });
  const last = statuses.at(-1) ?? 'NotStarted';
  const status = JOB_STATUSES.has(last) ? last : 'Unknown';
  const metrics: Record<string, string> = {};
  if (status === 'Completed' || status === 'Failed' || status === 'Running' || status === 'Finalizing' || status === 'Canceled') {
    const got = await platform.ml.getMetrics(token, { runId }).catch(() => ({ metrics: {} as Record<string, unknown> }));
    for (const [name, value] of Object.entries(got.metrics)) metrics[`metrics.${name}`] = JSON.stringify(Array.isArray(value) ? value.at(-1) : value);
  }
  const run = platform.runs.load(runId).snapshot.context;
  return {
    id: `${workspaceId(ws)}/jobs/${runId}`,
    name: runId,
    type: 'Microsoft.MachineLearningServices/workspaces/jobs',
    properties: {
      ...given,
      jobType: 'Command',
      status,
      experimentName: run.experiment,
      computeId: `${workspaceId(ws)}/computes/${run.compute}`,
      properties: { ...obj(given['properties']), ...metrics, ...(run.reason ? { 'azureml.failureReason': String(run.reason) } : {}) },
    },
  };
};
