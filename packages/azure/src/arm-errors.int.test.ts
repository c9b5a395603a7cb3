import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlatform, ensureLocalCa, virtualClock, type Platform } from '@amlsim/platform';
import { createMemoryEventStore } from '@amlsim/store';
import { startAzureEndpoint, type AzureEndpoint } from './endpoint';
import { callHttps, form } from './test-https';

const SECRET = 'ci-secret-5e1d2c3b';

/** The error shapes an ARM client sees, on a virtual clock (so a token can be let expire). */
describe('ARM errors over HTTPS: the scenario runner codes', () => {
  let dir: string;
  let platform: Platform;
  let endpoint: AzureEndpoint;
  let ca: string;
  const arm = (path: string) => `${endpoint.url}/subscriptions/sub-1/resourceGroups${path}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'amlsim-arm-errors-'));
    platform = await createPlatform({
      store: createMemoryEventStore(),
      dataDir: dir,
      driver: 'process',
      clock: virtualClock(),
      tenant: { mfa: 'optional', principals: { ci: { kind: 'servicePrincipal', clientSecret: SECRET } }, subscriptions: { 'sub-1': { owners: ['ci'] } } },
    });
    const tls = ensureLocalCa(join(dir, 'tls'));
    ca = readFileSync(tls.caCertPath, 'utf8');
    endpoint = await startAzureEndpoint({ platform, tls: { cert: tls.serverChainPem, key: tls.serverKeyPem }, allowedRoots: [dir] });
  });
  afterAll(async () => {
    await endpoint?.close();
    await platform?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tokenNow = async () =>
    (await callHttps(ca, `${endpoint.url}/${platform.directory.tenantId}/oauth2/v2.0/token`, 'POST', ...form({ grant_type: 'client_credentials', client_id: 'ci', client_secret: SECRET, scope: 'https://management.azure.com/.default' }))).json;

  it('Conflict for a workspace name taken in another resource group, ResourceNotFound across groups, PathNotAllowed outside --allow-path, ExpiredAuthenticationToken once the token lapsed', async () => {
    const got = await tokenNow();
    expect(got.expires_in).toBeGreaterThan(60);
    const auth = { authorization: `Bearer ${got.access_token}`, 'content-type': 'application/json' };
    const v = '?api-version=2022-10-01';
    const ws = '/providers/Microsoft.MachineLearningServices/workspaces/ws1';
    const put = await callHttps(ca, arm(`/rg1${ws}${v}`), 'PUT', JSON.stringify({ location: 'eastus' }), auth);
    expect(put.status).toBe(202);
    for (let i = 0; i < 100 && (await callHttps(ca, String(put.headers['azure-asyncoperation']), 'GET', undefined, auth)).json.status === 'InProgress'; i++) await new Promise((r) => setTimeout(r, 20));
    // The same PUT again is the workspace as it is (idempotent); in another resource group it is not found, and cannot be made (names are unique in the directory).
    expect((await callHttps(ca, arm(`/rg1${ws}${v}`), 'PUT', JSON.stringify({ location: 'eastus' }), auth)).status).toBe(200);
    const other = await callHttps(ca, arm(`/rg2${ws}${v}`), 'GET', undefined, auth);
    expect([other.status, other.json.error.code]).toEqual([404, 'ResourceNotFound']);
    const clash = await callHttps(ca, arm(`/rg2${ws}${v}`), 'PUT', JSON.stringify({ location: 'eastus' }), auth);
    expect([clash.status, clash.json.error.code]).toEqual([409, 'Conflict']);
    expect(clash.json.error.message).toContain('/resourceGroups/rg1');
    const noLocation = await callHttps(ca, arm(`/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws2${v}`), 'PUT', JSON.stringify({}), auth);
    expect([noLocation.status, noLocation.json.error.code]).toEqual([400, 'LocationRequired']);
    const outside = await callHttps(ca, arm(`/rg1${ws}/codes/c/versions/1${v}`), 'PUT', JSON.stringify({ properties: { codeUri: 'file:///etc' } }), auth);
    expect([outside.status, outside.json.error.code]).toEqual([403, 'PathNotAllowed']);
    // A compute PUT again is the compute as it is (200), not a second cluster.
    const cluster = JSON.stringify({ properties: { computeType: 'AmlCompute', properties: { vmSize: 'STANDARD_DS2_V2', scaleSettings: { minNodeCount: 0, maxNodeCount: 1 } } } });
    expect((await callHttps(ca, arm(`/rg1${ws}/computes/cpu${v}`), 'PUT', cluster, auth)).status).toBe(201);
    const twice = await callHttps(ca, arm(`/rg1${ws}/computes/cpu${v}`), 'PUT', cluster, auth);
    expect([twice.status, twice.json.properties.properties.scaleSettings.maxNodeCount]).toEqual([200, 1]);
    const badType = await callHttps(ca, arm(`/rg1${ws}/computes/gpu${v}`), 'PUT', JSON.stringify({ properties: { computeType: 'Databricks' } }), auth);
    expect([badType.status, badType.json.error.code]).toEqual([400, 'InvalidRequestContent']);
    expect(badType.json.error.message).toContain('AmlCompute');
    // Decoded path segments cannot smuggle a path into a name.
    const smuggled = await callHttps(ca, arm(`/rg1${ws}/codes/a%2F..%2Fb/versions/1${v}`), 'PUT', JSON.stringify({ properties: { codeUri: `file://${dir}` } }), auth);
    expect([smuggled.status, smuggled.json.error.code]).toEqual([400, 'InvalidRequestContent']);
    const notGuid = await callHttps(ca, `${endpoint.url}/subscriptions/sub-1/providers/Microsoft.Authorization/roleDefinitions/my-role?api-version=2022-04-01`, 'PUT', JSON.stringify({ properties: { roleName: 'x', permissions: [{ actions: [] }] } }), auth);
    expect([notGuid.status, notGuid.json.error.code]).toEqual([400, 'InvalidRoleDefinitionId']);
    const wrongMethod = await callHttps(ca, arm(`/rg1${ws}/listKeys${v}`), 'GET', undefined, auth);
    expect(wrongMethod.status).toBe(405);

    await platform.advanceClock((got.expires_in + 60) * 1000);
    const expired = await callHttps(ca, arm(`/rg1${ws}${v}`), 'GET', undefined, auth);
    expect([expired.status, expired.json.error.code]).toEqual([401, 'ExpiredAuthenticationToken']);
    // A new token works again.
    const again = await tokenNow();
    expect((await callHttps(ca, arm(`/rg1${ws}${v}`), 'GET', undefined, { authorization: `Bearer ${again.access_token}` })).json.properties.provisioningState).toBe('Succeeded');
  });
});
