import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlatform, ensureLocalCa, type Platform } from '@amlsim/platform';
import { createMemoryEventStore } from '@amlsim/store';
import type { EventStore, StoredEvent } from '@amlsim/core';
import { callHttps, form } from './test-https';
import { startAzureEndpoint, type AzureEndpoint } from './endpoint';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..', '..');
const CLIENTS = resolve(import.meta.dirname, '..', 'clients');
const CODE_DIR = join(REPO, 'scenarios', 'code', 'train-basic');
const MODEL = join(REPO, 'scenarios', 'models', 'sentiment.json');
const OWNER_SECRET = 'owner-secret-7f3a9c1e';
const READER_SECRET = 'reader-secret-42b8d6a0';
const PASSWORD = 'rita-password-x9';

/**
 * The official Azure SDKs as clients (docs/azure.md "Parity"): each script runs unchanged
 * against the endpoint with only its authority, endpoint and CA pointed at the simulator.
 */
describe('the Azure endpoint driven by the official SDKs', () => {
  let dir: string;
  let store: EventStore;
  let platform: Platform;
  let endpoint: AzureEndpoint;
  let caPath: string;
  let caPem: string;
  const events = (): StoredEvent[] => [...store.readAll()];
  /** What both client scripts are given: the endpoint, the tenant, the two service principals and the code to train. */
  const clientEnv = () => ({
    ...process.env,
    AMLSIM_ARM: endpoint.url,
    AMLSIM_TENANT: platform.directory.tenantId,
    AMLSIM_CLIENT_ID: '0b8f5e3c-1d2a-4c6b-9e7f-5a4b3c2d1e0f',
    AMLSIM_CLIENT_SECRET: OWNER_SECRET,
    AMLSIM_READER_ID: 'reader-bot',
    AMLSIM_READER_SECRET: READER_SECRET,
    AMLSIM_CODE_DIR: CODE_DIR,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'amlsim-azure-test-'));
    store = createMemoryEventStore();
    platform = await createPlatform({
      store,
      dataDir: dir,
      driver: 'docker',
      tenant: {
        mfa: 'optional',
        principals: {
          'ci-bot': { kind: 'servicePrincipal', clientSecret: OWNER_SECRET, appId: '0b8f5e3c-1d2a-4c6b-9e7f-5a4b3c2d1e0f' },
          'reader-bot': { kind: 'servicePrincipal', clientSecret: READER_SECRET },
          rita: { kind: 'user', password: PASSWORD },
        },
        subscriptions: { 'sub-1': { owners: ['ci-bot'] } },
      },
    });
    const ca = ensureLocalCa(join(dir, 'tls'));
    caPath = ca.caCertPath;
    caPem = readFileSync(caPath, 'utf8');
    endpoint = await startAzureEndpoint({ platform, tls: { cert: ca.serverChainPem, key: ca.serverKeyPem }, allowedRoots: [REPO] });
  });

  afterAll(async () => {
    await endpoint?.close();
    const { leftovers } = (await platform?.close()) ?? { leftovers: [] };
    expect(leftovers).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('@azure/arm-machinelearning, -authorization and -storage with @azure/identity: workspace LRO, keys, cluster, command job with metrics, Reader refused, storage key regenerated', async () => {
    const { stdout } = await run(process.execPath, [join(CLIENTS, 'js-client.mjs')], {
      cwd: CLIENTS,
      timeout: 240_000,
      env: { ...clientEnv(), NODE_EXTRA_CA_CERTS: caPath, AMLSIM_MODEL: MODEL, AMLSIM_USER: 'rita', AMLSIM_PASSWORD: PASSWORD },
    });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(seen.userToken).toBe(true);
    expect(seen.workspace).toMatchObject({ name: 'sdkws', provisioningState: 'Succeeded' });
    expect(seen.listed).toEqual(['sdkws']);
    expect(seen.keys.hasUserStorageKey).toBe(true);
    expect(seen.compute).toMatchObject({ name: 'cpu', type: 'AmlCompute', provisioningState: 'Succeeded' });
    expect(seen.job.status).toBe('Completed');
    expect(seen.job.properties['metrics.accuracy']).toBe('0.9');
    expect(seen.model.name).toBe('1');
    expect(seen.beforeReader).toMatchObject({ refused: true, statusCode: 403, code: 'AuthorizationFailed' });
    expect(seen.readerRead).toBe('sdkws');
    expect(seen.readerCreate).toMatchObject({ refused: true, statusCode: 403, code: 'AuthorizationFailed' });
    expect(seen.ownerCreate).toBe('cpu2');
    expect(seen.storage).toMatchObject({ key1Changed: true, key2Kept: true });

    // The same facts a scenario leaves: the workspace's statechart, the run, the RBAC decisions.
    const log = events();
    const types = log.map((e) => e.type);
    for (const t of ['WorkspaceCreationRequested', 'KeyVaultProvisioned', 'WorkspaceCreated', 'KeysResynced', 'ComputeCreated', 'SnapshotCreated', 'RunSubmitted', 'RunCompleted', 'ModelRegistered', 'RoleAssigned', 'StorageKeyRegenerated', 'KeysListed']) {
      expect(types, t).toContain(t);
    }
    expect(types.indexOf('WorkspaceCreationRequested')).toBeLessThan(types.indexOf('WorkspaceCreated'));
    const signIns = log.filter((e) => e.type === 'SignInSucceeded');
    expect(signIns.map((e) => [e.data['principal'], e.data['via']])).toContainEqual(['ci-bot', 'client_credentials']);
    expect(signIns.map((e) => [e.data['principal'], e.data['via']])).toContainEqual(['rita', 'password']);
    const refused = log.filter((e) => e.type === 'CommandRejected' && e.data['principal'] === 'reader-bot');
    expect(refused.map((e) => [e.data['command'], e.data['code']])).toContainEqual(['CreateCompute', 'AuthorizationFailed']);
    // No secret reaches the log: neither client secret nor a token nor a key.
    const text = JSON.stringify(log);
    expect(text).not.toContain(OWNER_SECRET);
    expect(text).not.toContain(READER_SECRET);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toMatch(/eyJ[\w-]+\.eyJ/);
  }, 300_000);

  it("Debian's python3-azure (azure-identity, azure-mgmt-machinelearningservices, -authorization, -storage): the same workflow", async () => {
    const { stdout } = await run('/usr/bin/python3', [join(CLIENTS, 'py_client.py')], {
      cwd: CLIENTS,
      timeout: 240_000,
      env: { ...clientEnv(), REQUESTS_CA_BUNDLE: caPath, AMLSIM_MODEL: MODEL },
    });
    const seen = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(seen.workspace).toEqual({ name: 'pyws', provisioningState: 'Succeeded' });
    expect(seen.hasUserStorageKey).toBe(true);
    expect(seen.compute).toEqual({ name: 'cpu-py', provisioningState: 'Succeeded' });
    expect(seen.job.status).toBe('Completed');
    expect(seen.job.properties['metrics.accuracy']).toBe('0.9');
    expect(seen.model).toEqual({ name: '1', read: '1' });
    expect(seen.readerRead).toBe('pyws');
    expect(seen.readerCreate).toMatchObject({ refused: true, statusCode: 403, code: 'AuthorizationFailed' });
    expect(seen.storage).toEqual({ key2Changed: true, key1Kept: true });
    // The events the script caused: its workspace's creation, its run, the Reader's refusal.
    const log = events();
    const pyws = log.filter((e) => e.data['workspace'] === 'pyws').map((e) => e.type);
    expect(pyws).toEqual(expect.arrayContaining(['WorkspaceCreationRequested', 'WorkspaceCreated', 'KeysResynced', 'ComputeCreated', 'RunSubmitted', 'RunCompleted', 'StorageKeyRegenerated']));
    expect(log.some((e) => e.type === 'CommandRejected' && e.data['principal'] === 'reader-bot' && String(e.data['scope']).endsWith('/workspaces/pyws'))).toBe(true);
    expect(log.some((e) => e.type === 'ModelRegistered' && e.data['workspace'] === 'pyws')).toBe(true);
    expect(JSON.stringify(log)).not.toContain(OWNER_SECRET);
    expect(JSON.stringify(log)).not.toContain(PASSWORD);
  }, 300_000);

  it('a command job input azureml://datastores/<ds>/paths/<p> is mounted read-only into the run (S4.2), named by the ARM API', async () => {
    const tokenUrl = `${endpoint.url}/${platform.directory.tenantId}/oauth2/v2.0/token`;
    const got = await callHttps(caPem, tokenUrl, 'POST', ...form({ grant_type: 'client_credentials', client_id: '0b8f5e3c-1d2a-4c6b-9e7f-5a4b3c2d1e0f', client_secret: OWNER_SECRET, scope: 'https://management.azure.com/.default' }));
    const token = got.json.access_token as string;
    // The datastore is attached and filled as a scenario does (datastores PUT is not served, docs/azure.md).
    await platform.arm.attachDatastore(token, { workspace: 'sdkws', name: 'training', container: 'training' });
    await platform.ml.uploadToDatastore(token, { workspace: 'sdkws', datastore: 'training', source: join(REPO, 'scenarios', 'datasets', 'iris'), path: 'iris' });
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const ws = `${endpoint.url}/subscriptions/sub-1/resourceGroups/rg-sdk/providers/Microsoft.MachineLearningServices/workspaces/sdkws`;
    const v = '?api-version=2022-10-01';
    const code = await callHttps(caPem, `${ws}/codes/read-data/versions/1${v}`, 'PUT', JSON.stringify({ properties: { codeUri: pathToFileURL(join(REPO, 'scenarios', 'code', 'read-data')).href } }), auth);
    expect(code.status).toBe(201);
    const job = (inputs: unknown) =>
      JSON.stringify({ properties: { jobType: 'Command', command: 'node train.js', codeId: code.json.id, computeId: `${ws}/computes/cpu`, environmentId: 'azureml:node:1', inputs } });
    const unknown = await callHttps(caPem, `${ws}/jobs/job-no-ds${v}`, 'PUT', job({ data: { jobInputType: 'uri_folder', uri: 'azureml://datastores/nope/paths/iris', mode: 'ReadOnlyMount' } }), auth);
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.message).toContain('training');
    const put = await callHttps(caPem, `${ws}/jobs/job-with-data${v}`, 'PUT', job({ data: { jobInputType: 'uri_folder', uri: 'azureml://datastores/training/paths/iris', mode: 'ReadOnlyMount' } }), auth);
    expect(put.status).toBe(201);
    let status = put.json.properties.status as string;
    let last = put;
    for (let i = 0; i < 300 && !['Completed', 'Failed', 'Canceled'].includes(status); i++) {
      await new Promise((r) => setTimeout(r, 250));
      last = await callHttps(caPem, `${ws}/jobs/job-with-data${v}`, 'GET', undefined, auth);
      status = last.json.properties.status;
    }
    expect(status, JSON.stringify(last.json)).toBe('Completed');
    expect(last.json.properties.properties['metrics.rows']).toBe('12');
    expect(last.json.properties.properties['metrics.data_in_snapshot']).toBe('0');
    expect(events().some((e) => e.type === 'RunInputMounted' && e.data['runId'] === 'job-with-data')).toBe(true);
  }, 180_000);

  it('DELETE: a role assignment (its access ends at once), a compute, then the workspace (its resources kept), each refused to a Reader first', async () => {
    const tokenOf = async (id: string, secret: string) =>
      (await callHttps(caPem, `${endpoint.url}/${platform.directory.tenantId}/oauth2/v2.0/token`, 'POST', ...form({ grant_type: 'client_credentials', client_id: id, client_secret: secret, scope: 'https://management.azure.com/.default' }))).json.access_token as string;
    const owner = { authorization: `Bearer ${await tokenOf('0b8f5e3c-1d2a-4c6b-9e7f-5a4b3c2d1e0f', OWNER_SECRET)}` };
    const reader = { authorization: `Bearer ${await tokenOf('reader-bot', READER_SECRET)}` };
    const ws = `${endpoint.url}/subscriptions/sub-1/resourceGroups/rg-sdk/providers/Microsoft.MachineLearningServices/workspaces/sdkws`;
    const v = '?api-version=2022-10-01';
    // The Reader the JS client assigned may read; deleting is refused to it.
    expect((await callHttps(caPem, `${ws}${v}`, 'GET', undefined, reader)).status).toBe(200);
    const refused = await callHttps(caPem, `${ws}/computes/cpu2${v}`, 'DELETE', undefined, reader);
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('AuthorizationFailed');
    const assignments = await callHttps(caPem, `${endpoint.url}${new URL(ws).pathname}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01`, 'GET', undefined, owner);
    const readerOid = platform.world.directory.byName['reader-bot']!.principalId;
    const readerAssignment = (assignments.json.value as Array<{ id: string; properties: { principalId: string } }>).find((a) => a.properties.principalId === readerOid)!;
    const removed = await callHttps(caPem, `${endpoint.url}${readerAssignment.id}?api-version=2022-04-01`, 'DELETE', undefined, owner);
    expect(removed.status).toBe(200);
    expect((await callHttps(caPem, `${ws}${v}`, 'GET', undefined, reader)).json.error.code).toBe('AuthorizationFailed');
    expect((await callHttps(caPem, `${endpoint.url}${readerAssignment.id}?api-version=2022-04-01`, 'DELETE', undefined, owner)).status).toBe(204);

    const compute = await callHttps(caPem, `${ws}/computes/cpu2${v}`, 'DELETE', undefined, owner);
    expect(compute.status).toBe(202);
    expect((await callHttps(caPem, `${ws}/computes/cpu2${v}`, 'GET', undefined, owner)).json.error.code).toBe('ResourceNotFound');
    const storageAccount = platform.world.workspaces.byId[platform.world.workspaces.byName['sdkws']!]!.storageAccount!;
    const del = await callHttps(caPem, `${ws}${v}`, 'DELETE', undefined, owner);
    expect(del.status).toBe(202);
    expect((await callHttps(caPem, String(del.headers['azure-asyncoperation']), 'GET', undefined, owner)).json.status).toBe('Succeeded');
    expect((await callHttps(caPem, `${ws}${v}`, 'GET', undefined, owner)).status).toBe(404);
    expect((await callHttps(caPem, `${ws}${v}`, 'DELETE', undefined, owner)).status).toBe(204);
    const deleted = events().find((e) => e.type === 'WorkspaceDeleted' && e.data['workspace'] === 'sdkws')!;
    expect(deleted.data['kept']).toContain(storageAccount);
    expect(deleted.data['computes']).toEqual(['cpu']);
    expect(events().filter((e) => e.type === 'ComputeDeleted' && e.data['workspace'] === 'sdkws').map((e) => e.data['compute'])).toEqual(['cpu2', 'cpu']);
  });

  it('a custom role definition PUT under its GUID is found by id and by name, and assigns as a built-in does (S2.3)', async () => {
    const token = (await callHttps(caPem, `${endpoint.url}/${platform.directory.tenantId}/oauth2/v2.0/token`, 'POST', ...form({ grant_type: 'client_credentials', client_id: '0b8f5e3c-1d2a-4c6b-9e7f-5a4b3c2d1e0f', client_secret: OWNER_SECRET, scope: 'https://management.azure.com/.default' }))).json.access_token;
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const sub = `${endpoint.url}/subscriptions/sub-1/providers/Microsoft.Authorization`;
    const v = '?api-version=2022-04-01';
    const guid = '3d6c1a52-7b1e-4f0c-9a8e-2f5d4c3b2a10';
    const body = { properties: { roleName: 'Run Viewer', permissions: [{ actions: ['Microsoft.MachineLearningServices/workspaces/read', 'Microsoft.MachineLearningServices/workspaces/experiments/runs/read'], notActions: [] }], assignableScopes: ['/subscriptions/sub-1'] } };
    const put = await callHttps(caPem, `${sub}/roleDefinitions/${guid}${v}`, 'PUT', JSON.stringify(body), auth);
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ name: guid, properties: { roleName: 'Run Viewer', type: 'CustomRole' } });
    expect((await callHttps(caPem, `${sub}/roleDefinitions/${guid}${v}`, 'GET', undefined, auth)).json.properties.roleName).toBe('Run Viewer');
    const byName = await callHttps(caPem, `${sub}/roleDefinitions${v}&$filter=${encodeURIComponent("roleName eq 'Run Viewer'")}`, 'GET', undefined, auth);
    expect(byName.json.value.map((d: { name: string }) => d.name)).toEqual([guid]);
    const again = await callHttps(caPem, `${sub}/roleDefinitions/${guid}${v}`, 'PUT', JSON.stringify(body), auth);
    expect(again.status).toBe(409);
    const rita = platform.world.directory.byName['rita']!.principalId;
    const assign = await callHttps(caPem, `${sub}/roleAssignments/8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d${v}`, 'PUT', JSON.stringify({ properties: { roleDefinitionId: put.json.id, principalId: rita } }), auth);
    expect(assign.status).toBe(201);
    expect(events().find((e) => e.type === 'RoleAssigned' && e.data['principal'] === 'rita')?.data['role']).toBe('Run Viewer');
    expect(events().find((e) => e.type === 'RoleDefined' && e.data['role'] === 'Run Viewer')?.data['roleDefinitionId']).toBe(guid);
  });

  it('refuses an unknown api-version as ARM does, listing the supported ones; no token is 401; a wrong secret is AADSTS7000215', async () => {
    const base = `${endpoint.url}/subscriptions/sub-1/resourceGroups/rg-sdk/providers/Microsoft.MachineLearningServices/workspaces/sdkws`;
    const bad = await callHttps(caPem, `${base}?api-version=1999-01-01`, 'GET');
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('NoRegisteredProviderFound');
    expect(bad.json.error.message).toContain("'2022-10-01'");
    const missing = await callHttps(caPem, base, 'GET');
    expect(missing.json.error.code).toBe('MissingApiVersionParameter');
    const anonymous = await callHttps(caPem, `${base}?api-version=2022-10-01`, 'GET');
    expect(anonymous.status).toBe(401);
    expect(anonymous.json.error.code).toBe('AuthenticationFailed');
        const tokenUrl = `${endpoint.url}/${platform.directory.tenantId}/oauth2/v2.0/token`;
    const wrong = await callHttps(caPem, tokenUrl, 'POST', ...form({ grant_type: 'client_credentials', client_id: 'reader-bot', client_secret: 'not-the-secret', scope: 'https://management.azure.com/.default' }));
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ error: 'invalid_client', error_codes: [7000215] });
    const user = await callHttps(caPem, tokenUrl, 'POST', ...form({ grant_type: 'password', username: 'rita', password: PASSWORD, client_id: 'cli', scope: 'https://management.azure.com/.default' }));
    expect(user.status).toBe(200);
    expect(user.json.token_type).toBe('Bearer');
    const failed = events().filter((e) => e.type === 'SignInFailed');
    expect(failed.map((e) => [e.data['principal'], e.data['code']])).toContainEqual(['reader-bot', 'AADSTS7000215']);
    expect(JSON.stringify(events())).not.toContain(PASSWORD);
  });
});
