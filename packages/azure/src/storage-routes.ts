import type { Platform } from '@amlsim/platform';
import { ArmHttpError, badRequest } from './http-errors';
import type { ArmRoute } from './router';

const ACCOUNT = '/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/Microsoft.Storage/storageAccounts/{account}';

/** The account a path names: a workspace's storage account (S4.1), in that resource group. */
const workspaceOfAccount = (platform: Platform, p: Record<string, string>) => {
  const ws = platform.arm.workspaceOfStorageAccount(p['account']!);
  if (ws.resourceGroup.toLowerCase() !== p['resourceGroup']!.toLowerCase() || ws.subscription.toLowerCase() !== p['subscription']!.toLowerCase()) {
    throw new ArmHttpError(404, 'ResourceNotFound', `The Resource 'Microsoft.Storage/storageAccounts/${p['account']}' under resource group '${p['resourceGroup']}' was not found.`);
  }
  return ws;
};

const keysBody = (keys: { key1: string; key2: string }) => ({
  keys: (['key1', 'key2'] as const).map((keyName) => ({ keyName, value: keys[keyName], permissions: 'FULL' })),
});

/** Microsoft.Storage: a workspace storage account's keys, listed and regenerated (S4.3). */
export function storageRoutes(): ArmRoute[] {
  return [
    {
      method: 'POST',
      path: `${ACCOUNT}/listKeys`,
      provider: 'Microsoft.Storage',
      type: 'storageAccounts',
      handle: async (req, platform) => {
        const ws = workspaceOfAccount(platform, req.params);
        return { status: 200, body: keysBody(await platform.arm.listStorageKeys(req.token, { workspace: ws.workspace })) };
      },
    },
    {
      method: 'POST',
      path: `${ACCOUNT}/regenerateKey`,
      provider: 'Microsoft.Storage',
      type: 'storageAccounts',
      handle: async (req, platform) => {
        const ws = workspaceOfAccount(platform, req.params);
        const keyName = req.body['keyName'];
        if (keyName !== 'key1' && keyName !== 'key2') throw badRequest('InvalidValuesForRequestParameters', `keyName '${String(keyName ?? '')}' is not a key of the account; use key1 or key2.`);
        await platform.arm.regenerateStorageKey(req.token, { workspace: ws.workspace, key: keyName });
        return { status: 200, body: keysBody(await platform.arm.listStorageKeys(req.token, { workspace: ws.workspace })) };
      },
    },
  ];
}
