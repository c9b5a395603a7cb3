import {
  BUILT_IN_ROLES,
  REVOCABLE_RESOURCES,
  actions,
  assignmentsOf,
  authorize,
  errors,
  isBuiltInRoleName,
  isWithinScope,
  requiredIdentityGrants,
  resourceGroupScope,
  scopeKind,
  subscriptionScope,
  validateCustomRole,
  workspaceAccepts,
  workspaceScope,
  type ActivityLogEntry,
  type ExpectedVersion,
  type PrincipalRecord,
  type RoleDefinition,
  type WorkspaceRecord,
  type WorkspaceSnapshot,
  STREAMS,
} from '@amlsim/core';
import { fingerprint } from '../crypto/sealed-box';
import { declareCommand, type CommandContext, type CommandGate, type EventToAppend } from '../runtime/command-bus';
import { streams, type PlatformRuntime, type DataPlane } from '../platform-context';
import type { DirectoryService } from '../identity/directory';
import { ResourceProvider, STORAGE_CONNECTION_SECRET, storageScopeOf, type ResourceProviderDeps } from '../workspace/resource-provider';

export type ScopeRef = { workspace: string } | { resourceGroup: string; subscription?: string } | { subscription: string };

const WORKSPACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$/;
const RESOURCE_GROUP_NAME = /^[-\w.()]{1,90}$/;

/** What ARM uses of the platform (wired by createPlatform). */
export type ArmDeps = Pick<PlatformRuntime, 'bus' | 'ids' | 'rbacMode' | 'secrets' | 'session' | 'world'> & Pick<DataPlane, 'storage' | 'vaults'> & ResourceProviderDeps;

/**
 * Azure Resource Manager and the AML control plane as one client-facing API (S1.2, S2, S8.1).
 * Every call goes through the command bus's pipeline (runtime/command-bus.ts `execute`):
 * authenticate the token -> authorize the declared action at the scope found from the
 * arguments -> let the aggregate's statechart decide -> append. A refusal changes nothing but
 * the record of it.
 */
export class ArmService {
  readonly rp: ResourceProvider;

  constructor(
    private readonly p: ArmDeps,
    private readonly directory: DirectoryService,
  ) {
    this.rp = new ResourceProvider(p, directory);
  }

  // ---- shared checks ---------------------------------------------------------------------

  private role(name: string): RoleDefinition | undefined {
    return isBuiltInRoleName(name) ? BUILT_IN_ROLES[name] : this.p.world.access.customRoles[name];
  }

  /**
   * What the command bus asks to guard every command (runtime/command-bus.ts): the directory's
   * token check, and the S2.2 decision from the role assignments and definitions of the log.
   */
  commandGate(): CommandGate {
    return {
      verify: (token) => this.directory.verifyToken(token),
      decide: (who, action, scope) => authorize(assignmentsOf(this.p.world.access, who.principalId), (n) => this.role(n), who.principalId, action, scope),
      mode: () => this.p.rbacMode,
    };
  }

  /** Default subscription: the only one, or 'sub-1'. */
  private subscriptionOf(name?: string): string {
    const subs = Object.keys(this.p.world.access.subscriptions);
    const sub = name ?? (subs.length === 1 ? subs[0]! : 'sub-1');
    if (!this.p.world.access.subscriptions[sub]) throw errors.notFound('subscription', sub, `the directory (known: ${subs.join(', ')})`);
    return sub;
  }

  /** A command's target in a workspace: the workspace, and its scope for RBAC. */
  inWorkspace(name: string): { scope: string; ws: WorkspaceRecord } {
    const ws = this.workspace(name);
    return { scope: ws.scope, ws };
  }

  workspace(name: string): WorkspaceRecord {
    const id = this.p.world.workspaces.byName[name];
    const ws = id ? this.p.world.workspaces.byId[id] : undefined;
    if (!ws) throw errors.notFound('workspace', name);
    if (ws.status !== 'Succeeded') throw errors.conflict(`Workspace '${name}' is ${ws.status}; it cannot take this call yet.`, { workspace: name });
    return ws;
  }

  /** A workspace whatever its status (creating, failed): what a read of it shows. */
  workspaceInAnyState(name: string): WorkspaceRecord {
    const id = this.p.world.workspaces.byName[name];
    const ws = id ? this.p.world.workspaces.byId[id] : undefined;
    if (!ws) throw errors.notFound('workspace', name);
    return ws;
  }

  private resolveScope(ref: ScopeRef): string {
    if ('workspace' in ref) return this.workspace(ref.workspace).scope;
    if ('resourceGroup' in ref) {
      const scope = resourceGroupScope(this.subscriptionOf(ref.subscription), ref.resourceGroup);
      if (!this.p.world.access.resourceGroups[scope.toLowerCase()]) throw errors.notFound('resource group', ref.resourceGroup);
      return scope;
    }
    return subscriptionScope(this.subscriptionOf(ref.subscription));
  }

  private identityOf(ws: WorkspaceRecord) {
    return { principalId: ws.identity!.principalId, name: ws.identity!.name };
  }

  // ---- commands ----------------------------------------------------------------------------

  /** Each command once: its name, its RBAC action, and where its scope comes from (runtime/command-bus.ts). */
  private readonly commands = {
    createWorkspace: declareCommand({
      name: 'CreateWorkspace',
      verb: 'createWorkspace',
      action: actions.createWorkspace,
      target: (args: { name: string; resourceGroup: string; subscription?: string; keyVaultResourceGroup?: string }) => {
        if (!WORKSPACE_NAME.test(args.name)) {
          throw errors.badRequest(`Workspace name '${args.name}' is invalid: 3-33 letters, digits, '-' or '_', starting with a letter or digit.`);
        }
        for (const rg of [args.resourceGroup, args.keyVaultResourceGroup ?? args.resourceGroup]) {
          if (!RESOURCE_GROUP_NAME.test(rg)) throw errors.badRequest(`Resource group name '${rg}' is invalid.`);
        }
        const subscription = this.subscriptionOf(args.subscription);
        const missingGroups = [...new Set([args.resourceGroup, args.keyVaultResourceGroup ?? args.resourceGroup])].filter(
          (rg) => !this.p.world.access.resourceGroups[resourceGroupScope(subscription, rg).toLowerCase()],
        );
        return { scope: workspaceScope(subscription, args.resourceGroup, args.name), subscription, missingGroups };
      },
      // A missing resource group is created on the way, which needs permission at subscription scope.
      requires: ({ subscription, missingGroups }) => (missingGroups.length > 0 ? [{ action: actions.createResourceGroup, scope: subscriptionScope(subscription) }] : []),
    }),
    assignRole: declareCommand({
      name: 'AssignRole',
      verb: 'assignRole',
      action: actions.shareWorkspace,
      target: (args: { principal: string; role: string; scope: ScopeRef }) => {
        const target = this.directory.principalByName(args.principal);
        const scope = this.resolveScope(args.scope);
        const role = this.role(args.role);
        if (!role) {
          const known = [...Object.keys(BUILT_IN_ROLES), ...Object.keys(this.p.world.access.customRoles)];
          throw errors.notFound('role definition', args.role, `this directory (known: ${known.join(', ')})`);
        }
        return { scope, target, role };
      },
    }),
    defineRole: declareCommand({
      name: 'DefineRole',
      verb: 'defineRole',
      // S2.3: creating a custom role needs Owner-level rights at each assignable scope.
      action: actions.defineRole,
      target: (args: { name: string; actions: string[]; notActions?: string[]; assignableScopes: ScopeRef[] | string[] }) => {
        const scopes = args.assignableScopes.map((s) => (typeof s === 'string' ? s : this.resolveScope(s)));
        const role = validateCustomRole({ ...args, assignableScopes: scopes });
        if (this.p.world.access.customRoles[role.name]) throw errors.conflict(`A custom role named '${role.name}' already exists.`, { role: role.name });
        for (const scope of scopes) {
          if (scopeKind(scope) === 'subscription' || scopeKind(scope) === 'resourceGroup' || scopeKind(scope) === 'workspace') {
            const sub = scope.split('/')[2]!;
            if (!this.p.world.access.subscriptions[sub]) throw errors.notFound('subscription', sub);
          }
        }
        return { scope: scopes, role };
      },
    }),
    upgradeWorkspace: declareCommand({
      name: 'UpgradeWorkspace',
      verb: 'upgradeWorkspace',
      action: actions.upgradeWorkspace,
      target: (args: { workspace: string }) => this.inWorkspace(args.workspace),
    }),
    revokeIdentityAccess: declareCommand({
      name: 'RevokeIdentityAccess',
      verb: 'revokeIdentityAccess',
      action: actions.revokeIdentityAccess,
      // Checked at the grant's own scope (the vault, the storage account, …).
      target: (args: { workspace: string; resource: string }) => {
        const ws = this.workspace(args.workspace);
        const target = REVOCABLE_RESOURCES[args.resource];
        if (!target) throw errors.badRequest(`'${args.resource}' is not a grant of the workspace identity; use one of ${Object.keys(REVOCABLE_RESOURCES).join(', ')}.`);
        const grant = this.grantsOf(ws).find((g) => g.target === target)!;
        return { scope: grant.scope, ws, target };
      },
    }),
    resyncKeys: declareCommand({
      name: 'ResyncKeys',
      verb: 'resyncKeys',
      action: actions.resyncKeys,
      target: (args: { workspace: string }) => this.inWorkspace(args.workspace),
    }),
    regenerateStorageKey: declareCommand({
      name: 'RegenerateStorageKey',
      verb: 'regenerateStorageKey',
      action: actions.regenerateStorageKey,
      // Checked at the storage account's scope.
      target: (args: { workspace: string }) => {
        const ws = this.workspace(args.workspace);
        return { scope: storageScopeOf(ws), ws };
      },
    }),
    attachDatastore: declareCommand({
      name: 'AttachDatastore',
      verb: 'attachDatastore',
      action: actions.attachDatastore,
      target: (args: { workspace: string }) => this.inWorkspace(args.workspace),
    }),
    readWorkspace: declareCommand({
      name: 'ReadWorkspace',
      verb: 'readWorkspace',
      action: actions.readWorkspace,
      // Any status: a client polls a workspace being created (ARM's provisioningState).
      target: (args: { workspace: string }) => {
        const ws = this.workspaceInAnyState(args.workspace);
        return { scope: ws.scope, ws };
      },
    }),
    listWorkspaces: declareCommand({
      name: 'ListWorkspaces',
      verb: 'listWorkspaces',
      action: actions.readWorkspace,
      target: (args: { subscription: string; resourceGroup?: string }) => ({
        scope: args.resourceGroup ? this.resolveScope({ subscription: args.subscription, resourceGroup: args.resourceGroup }) : this.resolveScope({ subscription: args.subscription }),
      }),
    }),
    listWorkspaceKeys: declareCommand({
      name: 'ListWorkspaceKeys',
      verb: 'listWorkspaceKeys',
      action: actions.listWorkspaceKeys,
      target: (args: { workspace: string }) => this.inWorkspace(args.workspace),
    }),
    listStorageKeys: declareCommand({
      name: 'ListStorageKeys',
      verb: 'listStorageKeys',
      action: actions.listStorageKeys,
      target: (args: { workspace: string }) => {
        const ws = this.workspace(args.workspace);
        return { scope: storageScopeOf(ws), ws };
      },
    }),
    removeRoleAssignment: declareCommand({
      name: 'RemoveRoleAssignment',
      verb: 'removeRoleAssignment',
      action: actions.deleteRoleAssignment,
      target: (args: { scope: string; assignmentId: string }) => ({ scope: args.scope }),
    }),
    listRoleAssignments: declareCommand({
      name: 'ListRoleAssignments',
      verb: 'listRoleAssignments',
      action: actions.readRoleAssignments,
      target: (args: { scope: string }) => ({ scope: args.scope }),
    }),
    listRoleDefinitions: declareCommand({
      name: 'ListRoleDefinitions',
      verb: 'listRoleDefinitions',
      action: actions.readRoleDefinitions,
      target: (args: { scope: string }) => ({ scope: args.scope }),
    }),
    queryActivityLog: declareCommand({
      name: 'QueryActivityLog',
      verb: 'queryActivityLog',
      action: actions.readActivityLog,
      target: (args: { workspace: string }) => this.inWorkspace(args.workspace),
    }),
    queryWorkspaceMetrics: declareCommand({
      name: 'QueryWorkspaceMetrics',
      verb: 'queryWorkspaceMetrics',
      action: actions.readWorkspaceMetrics,
      target: (args: { workspace: string }) => this.inWorkspace(args.workspace),
    }),
  };

  /** S8.1: create a workspace and everything that comes with it. */
  async createWorkspace(
    token: string | undefined,
    args: {
      name: string;
      resourceGroup: string;
      region: string;
      subscription?: string;
      edition?: 'basic' | 'enterprise';
      customerManagedKey?: boolean;
      keyVaultResourceGroup?: string;
    },
  ): Promise<WorkspaceRecord> {
    return this.p.bus.execute(this.commands.createWorkspace, token, args, async (ctx, { scope, subscription, missingGroups }) => {
      if (this.p.world.workspaces.byName[args.name]) {
        throw errors.conflict(`A workspace named '${args.name}' already exists; workspace names are unique in the directory (scenarios refer to them by name).`, {
          workspace: args.name,
        });
      }
      const workspaceId = this.p.ids.next('ws');
      const requested = {
        workspaceId,
        workspace: args.name,
        subscription,
        resourceGroup: args.resourceGroup,
        keyVaultResourceGroup: args.keyVaultResourceGroup ?? args.resourceGroup,
        region: args.region,
        edition: args.edition ?? 'basic',
        customerManagedKey: args.customerManagedKey ?? false,
        scope,
      } as const;
      const stream = streams.workspace(workspaceId);
      // The first fact goes in one transaction with the resource groups it needs; the runner then carries out what it names.
      const append = (facts: EventToAppend[], expectedVersion: ExpectedVersion) =>
        ctx.emitMany([
          ...(missingGroups.length
            ? [
                {
                  stream: streams.subscription(this.p.session, subscription),
                  expectedVersion: 'any' as const,
                  events: missingGroups.map((resourceGroup) => ({
                    type: 'ResourceGroupCreated' as const,
                    data: { subscription, resourceGroup, scope: resourceGroupScope(subscription, resourceGroup) },
                  })),
                },
              ]
            : []),
          { stream, expectedVersion, events: facts },
        ]).filter((e) => e.stream === stream);
      const final = await this.rp.create(ctx, workspaceId, { type: 'WorkspaceCreationRequested', data: requested }, append);
      if (final.matches('failed')) {
        const failure = final.context.failure ?? { resource: 'keyVault', reason: 'unknown' };
        throw errors.deploymentFailed(failure.resource, failure.reason);
      }
      return this.p.world.workspaces.byId[workspaceId]!;
    });
  }

  /** S2.1/S2.2: assign a role at a scope; at workspace scope this is "share workspace" (Owner only). */
  async assignRole(token: string | undefined, args: { principal: string; role: string; assignmentId?: string } & { scope: ScopeRef }): Promise<void> {
    await this.p.bus.execute(this.commands.assignRole, token, args, (ctx, { scope, target, role }) => {
      if (!role.builtIn && !role.assignableScopes.some((s) => isWithinScope(scope, s))) {
        throw errors.badRequest(`Role '${role.name}' cannot be assigned at '${scope}': its assignable scopes are ${role.assignableScopes.join(', ')} (S2.3).`, {
          scope,
        });
      }
      const exists = assignmentsOf(this.p.world.access, target.principalId).some(
        (a) => a.role === role.name && a.scope.toLowerCase() === scope.toLowerCase(),
      );
      if (exists) throw errors.conflict(`'${args.principal}' already holds '${role.name}' at '${scope}'.`, { scope });
      ctx.emit(streams.subscription(this.p.session, scope.split('/')[2]!), 'any', [
        {
          type: 'RoleAssigned',
          data: { assignmentId: args.assignmentId ?? this.p.ids.next('ra'), principal: target.principal, principalId: target.principalId, role: role.name, scope },
        },
      ]);
    });
  }

  /** S2.3: a custom role; creating one needs Owner-level rights at each assignable scope. */
  async defineRole(
    token: string | undefined,
    args: { name: string; actions: string[]; notActions?: string[]; assignableScopes: ScopeRef[] | string[]; roleDefinitionId?: string },
  ): Promise<void> {
    await this.p.bus.execute(this.commands.defineRole, token, args, (ctx, { scope: scopes, role }) => {
      ctx.emit(streams.subscription(this.p.session, scopes[0]!.split('/')[2]!), 'any', [
        {
          type: 'RoleDefined',
          data: {
            role: role.name,
            actions: [...role.actions],
            notActions: [...role.notActions],
            assignableScopes: [...role.assignableScopes],
            ...(args.roleDefinitionId ? { roleDefinitionId: args.roleDefinitionId } : {}),
          },
        },
      ]);
    });
  }

  /** S2.2: upgrade to Enterprise, Owner only; the statechart refuses a second upgrade. */
  async upgradeWorkspace(token: string | undefined, args: { workspace: string; edition: 'enterprise' }): Promise<void> {
    await this.p.bus.execute(this.commands.upgradeWorkspace, token, args, (ctx, { ws }) =>
      this.onWorkspace(ctx, ws, (snapshot) => {
        const event = { type: 'WorkspaceUpgraded' as const, data: { workspaceId: ws.workspaceId, workspace: ws.workspace, from: 'basic' as const, to: 'enterprise' as const } };
        if (!workspaceAccepts(snapshot, { type: event.type, ...event.data })) {
          throw errors.conflict(`Workspace '${ws.workspace}' is already on the ${snapshot.context.edition} edition.`, { workspace: ws.workspace });
        }
        return [event];
      }),
    );
  }

  /** S2.5: an administrator removes one of the workspace identity's grants (what needs it then fails). */
  async revokeIdentityAccess(token: string | undefined, args: { workspace: string; resource: string }): Promise<void> {
    await this.p.bus.execute(this.commands.revokeIdentityAccess, token, args, (ctx, { ws, target, scope }) =>
      this.onWorkspace(ctx, ws, (snapshot) => {
        const event = {
          type: 'IdentityAccessRevoked' as const,
          data: { workspaceId: ws.workspaceId, workspace: ws.workspace, target, scope, principalId: ws.identity!.principalId },
        };
        if (!workspaceAccepts(snapshot, { type: event.type, ...event.data })) {
          throw errors.conflict(`The identity of '${ws.workspace}' holds no ${args.resource} grant to revoke (already revoked).`, { workspace: ws.workspace });
        }
        return [event];
      }),
    );
  }

  /** S2.5: resync keys restores every grant the workspace identity lost. */
  async resyncKeys(token: string | undefined, args: { workspace: string }): Promise<{ restored: string[] }> {
    return this.p.bus.execute(this.commands.resyncKeys, token, args, async (ctx, { ws }) => {
      const regrants = this.grantsOf(ws).filter((g) => ws.revoked.includes(g.target));
      await this.onWorkspace(ctx, ws, () => [
        ...regrants.map((g) => ({
          type: 'IdentityAccessGranted' as const,
          data: { workspaceId: ws.workspaceId, workspace: ws.workspace, principalId: ws.identity!.principalId, ...g },
        })),
        { type: 'KeysResynced', data: { workspaceId: ws.workspaceId, workspace: ws.workspace, restored: regrants.map((g) => g.target) } },
      ]);
      return { restored: regrants.map((g) => g.target) };
    });
  }

  /** S4.3: regenerate a storage key; the key-vault connection string follows (needs the identity's vault grant). */
  async regenerateStorageKey(token: string | undefined, args: { workspace: string; key: 'key1' | 'key2' }): Promise<void> {
    await this.p.bus.execute(this.commands.regenerateStorageKey, token, args, (ctx, { ws }) => {
      const account = ws.storageAccount!;
      const identity = this.identityOf(ws);
      // Check the identity can update the vault *before* changing the key: a refusal must change nothing.
      this.withIdentity(ws, 'key vault', 'regenerateStorageKey', () => this.p.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET));
      const value = this.p.storage.regenerateKey(account, args.key);
      this.p.secrets.add(value, 'storage account key');
      const events: EventToAppend[] = [];
      if (args.key === 'key1') {
        const connection = this.p.storage.connectionString(account, value);
        this.p.secrets.add(connection, 'storage connection string');
        const stored = this.p.vaults.setSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET, connection);
        events.push({ type: 'SecretStored', data: { workspaceId: ws.workspaceId, workspace: ws.workspace, vault: ws.keyVault!, secret: STORAGE_CONNECTION_SECRET, ...stored } });
      }
      events.unshift({
        type: 'StorageKeyRegenerated',
        data: { workspaceId: ws.workspaceId, workspace: ws.workspace, storageAccount: account, key: args.key, fingerprint: fingerprint(value) },
      });
      ctx.emit(streams.workspace(ws.workspaceId), this.rp.load(ws.workspaceId).version, events);
    });
  }

  /** S2.2 + S6.1: attach a datastore: a blob container, its connection string kept in the workspace vault. */
  async attachDatastore(token: string | undefined, args: { workspace: string; name: string; container: string }): Promise<void> {
    await this.p.bus.execute(this.commands.attachDatastore, token, args, (ctx, { ws }) => {
      if (ws.datastores[args.name]) throw errors.conflict(`Datastore '${args.name}' is already attached to '${ws.workspace}'.`, { datastore: args.name });
      const identity = this.identityOf(ws);
      const asIdentity = { kind: 'identity' as const, ...identity };
      const secret = `datastore-${args.name}`;
      // Probe both grants first, so a refusal leaves neither a container nor a secret behind.
      this.withIdentity(ws, 'key vault', 'attachDatastore', () => this.p.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET));
      this.withIdentity(ws, 'storage account', 'attachDatastore', () => this.p.storage.listBlobs(asIdentity, ws.storageAccount!, ws.blobContainer!));
      this.p.storage.createContainer(asIdentity, ws.storageAccount!, args.container);
      const connection = `${this.p.storage.connectionString(ws.storageAccount!, this.p.storage.listKeys(ws.storageAccount!).key1)};Container=${args.container}`;
      this.p.secrets.add(connection, 'datastore connection string');
      const stored = this.p.vaults.setSecret(identity, ws.keyVault!, secret, connection);
      ctx.emit(streams.workspace(ws.workspaceId), this.rp.load(ws.workspaceId).version, [
        { type: 'SecretStored', data: { workspaceId: ws.workspaceId, workspace: ws.workspace, vault: ws.keyVault!, secret, ...stored } },
        { type: 'DatastoreAttached', data: { workspaceId: ws.workspaceId, workspace: ws.workspace, datastore: args.name, container: args.container } },
      ]);
    });
  }

  /** A workspace as a client reads it (ARM GET): any status, needs read access at its scope. */
  async readWorkspace(token: string | undefined, args: { workspace: string }): Promise<WorkspaceRecord> {
    return this.p.bus.execute(this.commands.readWorkspace, token, args, (_ctx, { ws }) => ws);
  }

  /** The workspaces of a subscription or resource group the caller may read there (live ones: creating or succeeded). */
  async listWorkspaces(token: string | undefined, args: { subscription: string; resourceGroup?: string }): Promise<WorkspaceRecord[]> {
    return this.p.bus.execute(this.commands.listWorkspaces, token, args, (_ctx, { scope }) =>
      Object.values(this.p.world.workspaces.byName)
        .map((id) => this.p.world.workspaces.byId[id]!)
        .filter((ws) => isWithinScope(ws.scope, scope)),
    );
  }

  /**
   * ARM listKeys of a workspace (S4.3, S6.1): the storage key and connection string the
   * workspace uses, read from its vault with the workspace identity; recorded by fingerprint.
   */
  async listWorkspaceKeys(token: string | undefined, args: { workspace: string }): Promise<{ storageAccount: string; userStorageKey: string; storageConnectionString: string; appInsights?: string }> {
    return this.p.bus.execute(this.commands.listWorkspaceKeys, token, args, (ctx, { ws }) => {
      const identity = this.identityOf(ws);
      const connection = this.withIdentity(ws, 'key vault', 'listKeys', () => this.p.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET));
      const key = /AccountKey=([^;]+)/.exec(connection)?.[1] ?? '';
      ctx.emit(streams.subscription(this.p.session, ws.subscription), 'any', [
        {
          type: 'KeysListed',
          data: { principal: ctx.principal ?? '', resource: ws.workspace, scope: ws.scope, keys: [{ name: 'userStorageKey', fingerprint: fingerprint(key) }] },
        },
      ]);
      return { storageAccount: ws.storageAccount!, userStorageKey: key, storageConnectionString: connection, ...(ws.appInsights ? { appInsights: ws.appInsights } : {}) };
    });
  }

  /** The storage account of a workspace by its account name (ARM addresses storage accounts by name). */
  workspaceOfStorageAccount(account: string): WorkspaceRecord {
    const ws = Object.values(this.p.world.workspaces.byId).find((w) => w.storageAccount === account && w.status === 'Succeeded');
    if (!ws) throw errors.notFound('storage account', account);
    return ws;
  }

  /** ARM listKeys of a storage account (S4.3): both keys, recorded by fingerprint. */
  async listStorageKeys(token: string | undefined, args: { workspace: string }): Promise<{ key1: string; key2: string }> {
    return this.p.bus.execute(this.commands.listStorageKeys, token, args, (ctx, { ws, scope }) => {
      const keys = this.p.storage.listKeys(ws.storageAccount!);
      ctx.emit(streams.subscription(this.p.session, ws.subscription), 'any', [
        {
          type: 'KeysListed',
          data: {
            principal: ctx.principal ?? '',
            resource: ws.storageAccount!,
            scope,
            keys: (['key1', 'key2'] as const).map((name) => ({ name, fingerprint: fingerprint(keys[name]) })),
          },
        },
      ]);
      return keys;
    });
  }

  /** The role assignments at and above a scope (what ARM's list for a scope returns), after a read check there. */
  async listRoleAssignments(token: string | undefined, args: { scope: string }) {
    return this.p.bus.execute(this.commands.listRoleAssignments, token, args, () => {
      const out: Array<{ assignmentId: string; principal: string; principalId: string; role: string; scope: string }> = [];
      for (const [principalId, list] of Object.entries(this.p.world.access.assignmentsByPrincipal)) {
        const principal = this.p.world.directory.byId[principalId]?.principal ?? principalId;
        for (const a of list) if (isWithinScope(args.scope, a.scope) || isWithinScope(a.scope, args.scope)) out.push({ ...a, principal, principalId });
      }
      return out;
    });
  }

  /** ARM DELETE of a role assignment at its scope (S2.1): the access it gave ends at once. */
  async removeRoleAssignment(token: string | undefined, args: { scope: string; assignmentId: string }): Promise<{ removed: boolean }> {
    return this.p.bus.execute(this.commands.removeRoleAssignment, token, args, (ctx) => {
      for (const [principalId, list] of Object.entries(this.p.world.access.assignmentsByPrincipal)) {
        const a = list.find((x) => x.assignmentId === args.assignmentId && x.scope.toLowerCase() === args.scope.toLowerCase());
        if (!a) continue;
        const principal = this.p.world.directory.byId[principalId]?.principal ?? principalId;
        ctx.emit(streams.subscription(this.p.session, a.scope.split('/')[2]!), 'any', [
          { type: 'RoleAssignmentRemoved', data: { assignmentId: a.assignmentId, principal, principalId, role: a.role, scope: a.scope, reason: `deleted by ${ctx.principal ?? 'a caller'}` } },
        ]);
        return { removed: true };
      }
      return { removed: false };
    });
  }

  /** Built-in and custom role definitions visible at a scope. */
  async listRoleDefinitions(token: string | undefined, args: { scope: string }): Promise<RoleDefinition[]> {
    return this.p.bus.execute(this.commands.listRoleDefinitions, token, args, () => [
      ...Object.values(BUILT_IN_ROLES),
      ...Object.values(this.p.world.access.customRoles).filter((r) => r.assignableScopes.some((s) => isWithinScope(args.scope, s) || isWithinScope(s, args.scope))),
    ]);
  }

  /** S7.2: the activity log of a workspace. */
  async queryActivityLog(token: string | undefined, args: { workspace: string }): Promise<ActivityLogEntry[]> {
    return this.p.bus.execute(this.commands.queryActivityLog, token, args, (_ctx, { ws }) => {
      return this.p.world.activityLog.entries.filter((e) => e.workspace === ws.workspace || (e.scope && isWithinScope(e.scope, ws.scope)));
    });
  }

  /** S7.1: workspace metrics (runs, deployments, registrations). */
  async queryWorkspaceMetrics(token: string | undefined, args: { workspace: string }): Promise<{ runs: number; deployments: number; registrations: number }> {
    return this.p.bus.execute(this.commands.queryWorkspaceMetrics, token, args, (_ctx, { ws }) => {
      return { ...(this.p.world.workspaceMetrics[ws.workspaceId] ?? { runs: 0, deployments: 0, registrations: 0 }) };
    });
  }

  /**
   * A decision on a workspace, on its stream's chain (runtime/effect-runner.ts): `decide` sees
   * the workspace's state; its facts are appended with the version that state is at.
   */
  private async onWorkspace(ctx: CommandContext, ws: WorkspaceRecord, decide: (snapshot: WorkspaceSnapshot) => EventToAppend[]): Promise<void> {
    await this.rp.runner.execute(
      ctx,
      streams.workspace(ws.workspaceId),
      (current) => {
        if (!current) throw errors.notFound('workspace', ws.workspaceId);
        return decide(current.snapshot);
      },
      {},
    );
  }

  /** Run a data-plane call as the workspace identity; a refusal becomes the S2.5 error that says to resync keys. */
  private withIdentity<T>(ws: WorkspaceRecord, resource: string, operation: string, call: () => T): T {
    try {
      return call();
    } catch (error) {
      throw this.rp.asIdentityError(error, ws.workspace, resource, operation);
    }
  }

  private grantsOf(ws: WorkspaceRecord) {
    return requiredIdentityGrants(ws);
  }
}

