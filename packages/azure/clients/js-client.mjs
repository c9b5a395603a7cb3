// Drives amlsim's ARM endpoint with the official Azure SDK for JavaScript, unchanged: what a
// platform team's automation does against Azure. Run by packages/azure/src/azure-sdk.int.test.ts
// (and usable by hand, docs/azure.md):
//   NODE_EXTRA_CA_CERTS=<data dir>/tls/ca.crt AMLSIM_ARM=https://127.0.0.1:<port> \
//   AMLSIM_TENANT=<tenant id> AMLSIM_CLIENT_ID=ci-bot AMLSIM_CLIENT_SECRET=... \
//   AMLSIM_READER_ID=reader-bot AMLSIM_READER_SECRET=... AMLSIM_CODE_DIR=<dir> AMLSIM_MODEL=<file> node js-client.mjs
// It prints one JSON object of what it observed; never a key or a token.
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { ClientSecretCredential, UsernamePasswordCredential } from '@azure/identity';
import { AzureMachineLearningWorkspaces } from '@azure/arm-machinelearning';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { StorageManagementClient } from '@azure/arm-storage';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const arm = env('AMLSIM_ARM');
const tenant = env('AMLSIM_TENANT');
const sub = process.env.AMLSIM_SUBSCRIPTION ?? 'sub-1';
const rg = 'rg-sdk';
const wsName = 'sdkws';
// The identity library asks the local authority, not the public cloud (instance discovery off).
const credential = (id, secret) => new ClientSecretCredential(tenant, id, secret, { authorityHost: arm, disableInstanceDiscovery: true });
// Without credentialScopes the scope would become `<endpoint>/.default`.
const clientOptions = { endpoint: arm, credentialScopes: ['https://management.azure.com/.default'] };
const poll = { updateIntervalInMs: 250 };
const seen = {};
const refusal = async (what, call) => {
  try {
    await call();
    return { refused: false };
  } catch (e) {
    return { refused: true, statusCode: e.statusCode, code: e.code, message: String(e.message).slice(0, 300) };
  }
};

// A user with a password (the resource-owner password grant), as @azure/identity asks for it.
if (process.env.AMLSIM_USER) {
  const user = new UsernamePasswordCredential(tenant, '04b07795-8ddb-461a-bbee-02f9e1bf7b46', process.env.AMLSIM_USER, env('AMLSIM_PASSWORD'), { authorityHost: arm, disableInstanceDiscovery: true });
  seen.userToken = (await user.getToken('https://management.azure.com/.default')).token.length > 100;
}

const owner = credential(env('AMLSIM_CLIENT_ID'), env('AMLSIM_CLIENT_SECRET'));
const ml = new AzureMachineLearningWorkspaces(owner, sub, clientOptions);

const ws = await ml.workspaces.beginCreateOrUpdateAndWait(rg, wsName, { location: 'eastus' }, poll);
seen.workspace = { name: ws.name, provisioningState: ws.provisioningState, storageAccount: ws.storageAccount, principalId: ws.identity?.principalId };
const listed = [];
for await (const w of ml.workspaces.listByResourceGroup(rg)) listed.push(w.name);
seen.listed = listed;
const keys = await ml.workspaces.listKeys(rg, wsName);
seen.keys = { hasUserStorageKey: typeof keys.userStorageKey === 'string' && keys.userStorageKey.length > 20, userStorageResourceId: keys.userStorageResourceId };
await ml.workspaces.beginResyncKeysAndWait(rg, wsName, poll);
seen.resynced = true;

const compute = await ml.computeOperations.beginCreateOrUpdateAndWait(
  rg,
  wsName,
  'cpu',
  { location: 'eastus', properties: { computeType: 'AmlCompute', properties: { vmSize: 'STANDARD_DS2_V2', scaleSettings: { minNodeCount: 0, maxNodeCount: 1, nodeIdleTimeBeforeScaleDown: 'PT120S' } } } },
  poll,
);
seen.compute = { name: compute.name, type: compute.properties?.computeType, provisioningState: compute.properties?.provisioningState };

const code = await ml.codeVersions.createOrUpdate(rg, wsName, 'train-basic', '1', { properties: { codeUri: pathToFileURL(env('AMLSIM_CODE_DIR')).href } });
const job = await ml.jobs.createOrUpdate(rg, wsName, `sdk-job-${randomUUID().slice(0, 8)}`, {
  properties: { jobType: 'Command', command: 'node train.js 3', codeId: code.id, computeId: compute.id, environmentId: 'azureml:node:1', experimentName: 'sdk' },
});
let got = job;
const deadline = Date.now() + 150_000;
while (!['Completed', 'Failed', 'Canceled'].includes(got.properties.status) && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 500));
  got = await ml.jobs.get(rg, wsName, job.name);
}
seen.job = { name: job.name, status: got.properties.status, properties: got.properties.properties };

const model = await ml.modelVersions.createOrUpdate(rg, wsName, 'sdk-model', '1', { properties: { modelUri: pathToFileURL(env('AMLSIM_MODEL')).href } });
seen.model = { id: model.id, name: model.name };
seen.modelRead = (await ml.modelVersions.get(rg, wsName, 'sdk-model', '1')).name;

// RBAC (S2.2): Reader at the workspace for another service principal, whose object id its own token names.
const readerCredential = credential(env('AMLSIM_READER_ID'), env('AMLSIM_READER_SECRET'));
const readerToken = await readerCredential.getToken('https://management.azure.com/.default');
const readerOid = JSON.parse(Buffer.from(readerToken.token.split('.')[1], 'base64url').toString('utf8')).oid;
const readerMl = new AzureMachineLearningWorkspaces(readerCredential, sub, clientOptions);
const computeBody = { location: 'eastus', properties: { computeType: 'AmlCompute', properties: { vmSize: 'STANDARD_DS2_V2', scaleSettings: { minNodeCount: 0, maxNodeCount: 1 } } } };
seen.beforeReader = await refusal('get', () => readerMl.workspaces.get(rg, wsName));
const auth = new AuthorizationManagementClient(owner, sub, clientOptions);
const scope = ws.id;
const defs = [];
for await (const d of auth.roleDefinitions.list(scope, { filter: "roleName eq 'Reader'" })) defs.push(d);
const assignment = await auth.roleAssignments.create(scope, randomUUID(), { roleDefinitionId: defs[0].id, principalId: readerOid });
seen.assignment = { roleDefinitionId: assignment.roleDefinitionId, principalId: assignment.principalId, scope: assignment.scope };
seen.readerRead = (await readerMl.workspaces.get(rg, wsName)).name;
seen.readerCreate = await refusal('create compute', () => readerMl.computeOperations.beginCreateOrUpdateAndWait(rg, wsName, 'cpu2', computeBody, poll));
seen.ownerCreate = (await ml.computeOperations.beginCreateOrUpdateAndWait(rg, wsName, 'cpu2', computeBody, poll)).name;

// S4.3: the workspace's storage account keys, listed and one regenerated.
const storage = new StorageManagementClient(owner, sub, clientOptions);
const account = ws.storageAccount.split('/').pop();
const before = await storage.storageAccounts.listKeys(rg, account);
const after = await storage.storageAccounts.regenerateKey(rg, account, { keyName: 'key1' });
const value = (list, name) => list.keys.find((k) => k.keyName === name).value;
seen.storage = {
  account,
  key1Changed: value(before, 'key1') !== value(after, 'key1'),
  key2Kept: value(before, 'key2') === value(after, 'key2'),
};
console.log(JSON.stringify(seen));
