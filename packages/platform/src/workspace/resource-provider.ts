import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  errors,
  isSimError,
  requiredIdentityGrants,
  resourceGroupScope,
  workspaceAggregate,
  type ExpectedVersion,
  type ProvisionedResource,
  type StoredEvent,
  type WorkspaceContext,
  type WorkspaceSnapshot,
} from '@amlsim/core';
import type { CommandContext, EventToAppend } from '../runtime/command-bus';
import { EffectRunner, type FactOf, type Held } from '../runtime/effect-runner';
import { PLATFORM_PRINCIPAL, streams, type PlatformRuntime, type DataPlane } from '../platform-context';
import type { DirectoryService } from '../identity/directory';

type WorkspaceOutcome = FactOf<typeof workspaceAggregate>;

/** Azure-style resource names: lower-case alphanumerics from the workspace name plus a stable suffix. */
const resourceName = (ws: WorkspaceContext, kind: string, max: number): string => {
  const base = ws.workspace.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 10) || 'ws';
  const suffix = ws.workspaceId.replace(/[^a-z0-9]/g, '').slice(-8);
  return `${base}${kind}${suffix}`.slice(0, max);
};

export const storageScopeOf = (ws: { subscription: string; resourceGroup: string; storageAccount?: string }) =>
  `${resourceGroupScope(ws.subscription, ws.resourceGroup)}/providers/Microsoft.Storage/storageAccounts/${ws.storageAccount}`;

export const vaultScopeOf = (ws: { subscription: string; keyVaultResourceGroup: string; keyVault?: string }) =>
  `${resourceGroupScope(ws.subscription, ws.keyVaultResourceGroup)}/providers/Microsoft.KeyVault/vaults/${ws.keyVault}`;

/** The names a resource under way gets (`resourceName`): what to remove of one a crash left half-made. */
const HALF_MADE: Partial<Record<ProvisionedResource, { kind: string; max: number }>> = {
  keyVault: { kind: 'kv', max: 24 },
  storage: { kind: 'st', max: 24 },
  registry: { kind: 'acr', max: 50 },
  appInsights: { kind: 'ai', max: 50 },
};

export const STORAGE_CONNECTION_SECRET = 'workspace-storage-connection-string';
export const CUSTOMER_KEY_NAME = 'workspace-cmk';

/** What the resource provider uses of the platform (wired by createPlatform). */
export type ResourceProviderDeps = Pick<PlatformRuntime, 'dataDir' | 'faults' | 'ids' | 'secrets' | 'session' | 'store' | 'world'> & Pick<DataPlane, 'storage' | 'vaults'>;

/**
 * The AML resource provider (S8.1): the handlers of the effects the workspace statechart names.
 * The platform's effect runner (runtime/effect-runner.ts) appends each outcome as the next fact
 * of the workspace stream and feeds it back to the machine.
 */
export class ResourceProvider {
  /** Every command on a workspace stream that carries out effects goes through it, one at a time per workspace. */
  readonly runner: EffectRunner<typeof workspaceAggregate>;

  constructor(
    private readonly p: ResourceProviderDeps,
    private readonly directory: DirectoryService,
  ) {
    this.runner = new EffectRunner<typeof workspaceAggregate>({
      store: p.store,
      aggregate: workspaceAggregate,
      // What makes or removes vaults, accounts, directories and principals: a crash can leave it half-done.
      recordsStart: ['provisionResource', 'rollBack'],
      handlers: {
        provisionResource: ({ params: { resource } }, { ctx, effectId, snapshot: { context: ws } }) => {
          // An injected fault or a real failure of the step both end in ProvisioningFailed: the machine rolls back.
          if (this.p.faults.take('failProvisioning', resource)) {
            return [this.failed(ws, resource, 'injected fault (fault: failProvisioning)')];
          }
          try {
            return this.provision(ctx, resource, ws, effectId);
          } catch (error) {
            return [this.failed(ws, resource, error instanceof Error ? error.message : String(error))];
          }
        },
        // Only the grants not given yet: carried out again (a resumed session), it gives the rest.
        grantIdentityAccess: (_effect, { snapshot: { context: ws } }) =>
          requiredIdentityGrants(ws).filter((g) => !ws.grants.includes(g.target)).map((g) => ({
            type: 'IdentityAccessGranted' as const,
            data: { workspaceId: ws.workspaceId, workspace: ws.workspace, principalId: ws.identityPrincipalId!, ...g },
          })),
        completeCreation: (_effect, { ctx, snapshot: { context: ws } }) => {
          this.ensureSupportApplication(ctx, ws.subscription, ws.region);
          return [
            {
              type: 'WorkspaceCreated',
              data: {
                workspaceId: ws.workspaceId,
                workspace: ws.workspace,
                subscription: ws.subscription,
                resourceGroup: ws.resourceGroup,
                region: ws.region,
                edition: ws.edition,
                scope: ws.scope,
              },
            },
          ];
        },
        rollBack: ({ params: { resources } }, { snapshot: { context: ws } }) => {
          const removed: WorkspaceOutcome[] = resources.map(({ resource, name }) => {
            this.remove(resource, name);
            return { type: 'ResourceDeprovisioned' as const, data: { workspaceId: ws.workspaceId, workspace: ws.workspace, resource, name } };
          });
          const failure = ws.failure ?? { resource: 'keyVault' as const, reason: 'unknown' };
          return [...removed, { type: 'WorkspaceCreationFailed', data: { workspaceId: ws.workspaceId, workspace: ws.workspace, ...failure } }];
        },
      },
    });
  }

  /**
   * A workspace whose simulator died while it was being created (a resumed session,
   * packages/platform/src/resume.ts), reconciled the way its statechart allows (S8.1): a
   * resource whose provisioning was under way fails with `reason` — what was made of it goes
   * first, by its name — and the machine rolls back what had been made; identity grants and
   * the last step, which are idempotent, are carried out again, so the workspace is created.
   * Returns what was done, or undefined when it had nothing left unfinished (or was rolling back:
   * a rollback's start is recorded, and it is never carried out twice).
   */
  async recoverCreation(ctx: CommandContext, workspaceId: string, reason: string): Promise<'rolledBack' | 'completed' | undefined> {
    const stream = streams.workspace(workspaceId);
    const held = this.runner.load(stream);
    const value = held?.snapshot.value as unknown;
    if (!held || typeof value !== 'object' || value === null || !('provisioning' in value)) return undefined;
    const ws = held.snapshot.context;
    const step = String((value as { provisioning: string }).provisioning);
    if (step === 'grants' || step === 'finishing') {
      const type = step === 'grants' ? 'grantIdentityAccess' : 'completeCreation';
      const pending = workspaceAggregate.history(this.p.store.readStream(stream))!.effects.filter((e) => e.type === type).at(-1)!;
      await this.runner.carryOut(ctx, stream, [pending], {});
      return 'completed';
    }
    const resource = step as ProvisionedResource;
    const half = HALF_MADE[resource];
    if (half) this.remove(resource, resourceName(ws, half.kind, half.max));
    await this.runner.execute(ctx, stream, () => [this.failed(ws, resource, reason)], {});
    return 'rolledBack';
  }

  /** Current state of a workspace: held by the runner, advanced by the facts appended since (the log is the truth). */
  load(workspaceId: string): Held<typeof workspaceAggregate> {
    const held = this.runner.load(streams.workspace(workspaceId));
    if (!held) throw errors.notFound('workspace', workspaceId);
    return held;
  }

  /**
   * Create a workspace: `append` writes its first fact (with what must be written in the same
   * transaction); the effects it names are carried out until the machine names no more.
   */
  create(
    ctx: CommandContext,
    workspaceId: string,
    requested: Extract<EventToAppend, { type: 'WorkspaceCreationRequested' }>,
    append: (facts: EventToAppend[], expectedVersion: ExpectedVersion) => StoredEvent[],
  ): Promise<WorkspaceSnapshot> {
    return this.runner.execute(ctx, streams.workspace(workspaceId), () => [requested], {}, { append });
  }

  /**
   * Make one resource. Idempotent by effect id: the vault and the account carry the id of the
   * effect that made them, and the same effect carried out again reuses them; the registry's and
   * App Insights' directories are made only if missing.
   */
  private provision(ctx: CommandContext, resource: ProvisionedResource, ws: WorkspaceContext, effectId: string): WorkspaceOutcome[] {
    const ref = { workspaceId: ws.workspaceId, workspace: ws.workspace };
    switch (resource) {
      case 'keyVault': {
        const keyVault = resourceName(ws, 'kv', 24);
        this.p.vaults.create(keyVault, vaultScopeOf({ ...ws, keyVault }), effectId);
        if (ws.customerManagedKey && !this.p.vaults.hasKey(keyVault, CUSTOMER_KEY_NAME)) this.p.vaults.createKey(PLATFORM_PRINCIPAL, keyVault, CUSTOMER_KEY_NAME);
        return [{ type: 'KeyVaultProvisioned', data: { ...ref, keyVault } }];
      }
      case 'storage': {
        const storageAccount = resourceName(ws, 'st', 24);
        const keys = this.p.storage.createAccount(
          storageAccount,
          storageScopeOf({ ...ws, storageAccount }),
          ws.customerManagedKey ? this.customerKey(ws.keyVault!) : undefined,
          effectId,
        );
        this.p.secrets.add(keys.key1, 'storage account key');
        this.p.secrets.add(keys.key2, 'storage account key');
        const suffix = ws.workspaceId.replace(/[^a-z0-9]/g, '').slice(-8);
        const blobContainer = `azureml-blobstore-${suffix}`;
        const fileShare = `azureml-filestore-${suffix}`;
        const credential = { kind: 'accountKey' as const, key: keys.key1 };
        this.p.storage.createContainer(credential, storageAccount, blobContainer);
        this.p.storage.createFileShare(credential, storageAccount, fileShare);
        // S6.1: the storage connection string lives in the workspace key vault, nowhere else.
        const connection = this.p.storage.connectionString(storageAccount, keys.key1);
        this.p.secrets.add(connection, 'storage connection string');
        const stored = this.p.vaults.setSecret(PLATFORM_PRINCIPAL, ws.keyVault!, STORAGE_CONNECTION_SECRET, connection);
        return [
          { type: 'SecretStored', data: { ...ref, vault: ws.keyVault!, secret: STORAGE_CONNECTION_SECRET, ...stored } },
          {
            type: 'StorageAccountProvisioned',
            data: {
              ...ref,
              storageAccount,
              blobContainer,
              fileShare,
              encryption: ws.customerManagedKey ? 'customer-managed' : 'platform-managed',
            },
          },
        ];
      }
      case 'registry': {
        const registry = resourceName(ws, 'acr', 50);
        mkdirSync(join(this.p.dataDir, 'registries', registry), { recursive: true, mode: 0o700 });
        return [{ type: 'ContainerRegistryProvisioned', data: { ...ref, registry } }];
      }
      case 'appInsights': {
        const appInsights = resourceName(ws, 'ai', 50);
        mkdirSync(join(this.p.dataDir, 'appinsights', appInsights), { recursive: true, mode: 0o700 });
        return [{ type: 'AppInsightsProvisioned', data: { ...ref, appInsights } }];
      }
      case 'identity': {
        // S2.5: a system-assigned managed identity with the workspace's name.
        const rec = this.directory.registerPrincipal(ctx, ws.workspace, 'managedIdentity');
        return [{ type: 'ManagedIdentityCreated', data: { ...ref, identity: ws.workspace, principalId: rec.principalId } }];
      }
    }
  }

  private remove(resource: ProvisionedResource, name: string): void {
    if (resource === 'keyVault') this.p.vaults.delete(name);
    if (resource === 'storage') this.p.storage.deleteAccount(name);
    if (resource === 'registry') rmSync(join(this.p.dataDir, 'registries', name), { recursive: true, force: true });
    if (resource === 'appInsights') rmSync(join(this.p.dataDir, 'appinsights', name), { recursive: true, force: true });
    // identity: the principal stays in the directory's history; nothing on disk to remove.
  }

  private failed(ws: WorkspaceContext, resource: ProvisionedResource, reason: string): WorkspaceOutcome {
    return { type: 'ProvisioningFailed', data: { workspaceId: ws.workspaceId, workspace: ws.workspace, resource, reason } };
  }

  /** S4.1: the storage account's data key wrapped by a customer-managed key in the workspace vault. */
  customerKey(keyVault: string) {
    return {
      keyRef: { vault: keyVault, key: CUSTOMER_KEY_NAME },
      wrap: (dataKey: Buffer) => this.p.vaults.wrapKey(PLATFORM_PRINCIPAL, keyVault, CUSTOMER_KEY_NAME, dataKey),
      unwrap: (wrapped: Buffer) => this.p.vaults.unwrapKey(PLATFORM_PRINCIPAL, keyVault, CUSTOMER_KEY_NAME, wrapped),
    };
  }

  /** S2.6: one support application per subscription and region, Contributor on the subscription. */
  private ensureSupportApplication(ctx: CommandContext, subscription: string, region: string): void {
    if (this.p.world.access.supportApplications[`${subscription}/${region}`]) return;
    const application = `Microsoft-AzureML-Support-App-${region}`;
    const rec = this.directory.registerPrincipal(ctx, `aml-${subscription}-${region}`, 'application');
    const scope = `/subscriptions/${subscription}`;
    ctx.emitAsPlatform(streams.subscription(this.p.session, subscription), 'any', [
      { type: 'SupportApplicationCreated', data: { subscription, region, application, principalId: rec.principalId } },
      {
        type: 'RoleAssigned',
        data: { assignmentId: this.p.ids.next('ra'), principal: rec.principal, principalId: rec.principalId, role: 'Contributor', scope },
      },
    ]);
  }

  /** Map a data-plane refusal of the workspace identity to the error that says what to do (S2.5). */
  asIdentityError(error: unknown, workspace: string, resource: string, operation: string): unknown {
    if (isSimError(error) && error.code === 'Forbidden') return errors.managedIdentityAccessDenied(workspace, resource, operation);
    return error;
  }
}
