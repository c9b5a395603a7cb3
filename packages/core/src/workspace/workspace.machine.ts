import { assign, setup } from 'xstate';
import type { EventDataMap, IdentityGrantTarget, ProvisionedResource, MachineEvent } from '../events/catalog';

/**
 * The workspace aggregate's statechart (S8.1, S2.5, S4.3, S6.1).
 *
 * Its events are the facts of the workspace stream; it never runs anything. Entry actions
 * *name* effects (`provisionResource`, `grantIdentityAccess`, `rollBack`, …) that the
 * platform's effect runner carries out, each outcome returning as the next event. Folding
 * the stream through the machine with XState's pure `transition` rebuilds the state on
 * replay without doing any effect again.
 */
type Ev<K extends keyof EventDataMap> = MachineEvent<K>;

export type WorkspaceMachineEvent =
  | Ev<'KeyVaultProvisioned'>
  | Ev<'StorageAccountProvisioned'>
  | Ev<'ContainerRegistryProvisioned'>
  | Ev<'AppInsightsProvisioned'>
  | Ev<'ManagedIdentityCreated'>
  | Ev<'IdentityAccessGranted'>
  | Ev<'SecretStored'>
  | Ev<'ProvisioningFailed'>
  | Ev<'ResourceDeprovisioned'>
  | Ev<'WorkspaceCreationFailed'>
  | Ev<'WorkspaceCreated'>
  | Ev<'WorkspaceUpgraded'>
  | Ev<'IdentityAccessRevoked'>
  | Ev<'KeysResynced'>
  | Ev<'DatastoreAttached'>
  | Ev<'StorageKeyRegenerated'>
  | Ev<'WorkspaceDeleted'>;

export type WorkspaceContext = EventDataMap['WorkspaceCreationRequested'] & {
  /** Resources created so far, in order: what a rollback must remove. */
  created: Array<{ resource: ProvisionedResource; name: string }>;
  keyVault?: string;
  storageAccount?: string;
  registry?: string;
  appInsights?: string;
  identityPrincipalId?: string;
  grants: IdentityGrantTarget[];
  revoked: IdentityGrantTarget[];
  /** How many grants S2.5 requires for this workspace (5, or 6 with a separate key-vault group). */
  requiredGrantCount: number;
  datastores: string[];
  secretVersions: Record<string, number>;
  failure?: { resource: ProvisionedResource; reason: string };
};

export const workspaceMachine = setup({
  types: {
    context: {} as WorkspaceContext,
    events: {} as WorkspaceMachineEvent,
    input: {} as EventDataMap['WorkspaceCreationRequested'],
  },
  actions: {
    // Effects: named here, carried out by the platform (never in this package).
    provisionResource: (_: unknown, _params: { resource: ProvisionedResource }) => {},
    grantIdentityAccess: (_: unknown, _params: { principalId: string }) => {},
    completeCreation: () => {},
    rollBack: (_: unknown, _params: { resources: Array<{ resource: ProvisionedResource; name: string }> }) => {},
    recordSecret: assign({
      secretVersions: ({ context, event }) =>
        event.type === 'SecretStored' ? { ...context.secretVersions, [event.secret]: event.version } : context.secretVersions,
    }),
  },
  guards: {
    allGrantsGiven: ({ context, event }) =>
      event.type === 'IdentityAccessGranted' && !context.grants.includes(event.target) && context.grants.length + 1 >= context.requiredGrantCount,
    newGrant: ({ context, event }) => event.type === 'IdentityAccessGranted' && !context.grants.includes(event.target),
    isBasic: ({ context }) => context.edition === 'basic',
    grantHeld: ({ context, event }) =>
      event.type === 'IdentityAccessRevoked' && context.grants.includes(event.target) && !context.revoked.includes(event.target),
    datastoreNameFree: ({ context, event }) => event.type === 'DatastoreAttached' && !context.datastores.includes(event.datastore),
  },
}).createMachine({
  id: 'workspace',
  context: ({ input }) => ({
    ...input,
    created: [],
    grants: [],
    revoked: [],
    requiredGrantCount: input.keyVaultResourceGroup.toLowerCase() === input.resourceGroup.toLowerCase() ? 5 : 6,
    datastores: [],
    secretVersions: {},
  }),
  initial: 'provisioning',
  states: {
    provisioning: {
      initial: 'keyVault',
      on: {
        ProvisioningFailed: {
          target: 'rollingBack',
          actions: assign({ failure: ({ event }) => ({ resource: event.resource, reason: event.reason }) }),
        },
      },
      states: {
        keyVault: {
          entry: { type: 'provisionResource', params: { resource: 'keyVault' } },
          on: {
            KeyVaultProvisioned: {
              target: 'storage',
              actions: assign(({ context, event }) => ({ keyVault: event.keyVault, created: [...context.created, { resource: 'keyVault' as const, name: event.keyVault }] })),
            },
          },
        },
        storage: {
          entry: { type: 'provisionResource', params: { resource: 'storage' } },
          on: {
            // S6.1: the storage connection string goes to the key vault as the account is made.
            SecretStored: { actions: 'recordSecret' },
            StorageAccountProvisioned: {
              target: 'registry',
              actions: assign(({ context, event }) => ({ storageAccount: event.storageAccount, created: [...context.created, { resource: 'storage' as const, name: event.storageAccount }] })),
            },
          },
        },
        registry: {
          entry: { type: 'provisionResource', params: { resource: 'registry' } },
          on: {
            ContainerRegistryProvisioned: {
              target: 'appInsights',
              actions: assign(({ context, event }) => ({ registry: event.registry, created: [...context.created, { resource: 'registry' as const, name: event.registry }] })),
            },
          },
        },
        appInsights: {
          entry: { type: 'provisionResource', params: { resource: 'appInsights' } },
          on: {
            AppInsightsProvisioned: {
              target: 'identity',
              actions: assign(({ context, event }) => ({ appInsights: event.appInsights, created: [...context.created, { resource: 'appInsights' as const, name: event.appInsights }] })),
            },
          },
        },
        identity: {
          entry: { type: 'provisionResource', params: { resource: 'identity' } },
          on: {
            ManagedIdentityCreated: {
              target: 'grants',
              actions: assign(({ context, event }) => ({ identityPrincipalId: event.principalId, created: [...context.created, { resource: 'identity' as const, name: event.identity }] })),
            },
          },
        },
        grants: {
          entry: { type: 'grantIdentityAccess', params: ({ context }) => ({ principalId: context.identityPrincipalId ?? '' }) },
          on: {
            IdentityAccessGranted: [
              { guard: 'allGrantsGiven', target: 'finishing', actions: assign({ grants: ({ context, event }) => [...context.grants, event.target] }) },
              { guard: 'newGrant', actions: assign({ grants: ({ context, event }) => [...context.grants, event.target] }) },
            ],
          },
        },
        finishing: {
          entry: 'completeCreation',
          on: { WorkspaceCreated: { target: '#workspace.active' } },
        },
      },
    },
    rollingBack: {
      entry: { type: 'rollBack', params: ({ context }) => ({ resources: [...context.created].reverse() }) },
      on: {
        ResourceDeprovisioned: {
          actions: assign({ created: ({ context, event }) => context.created.filter((c) => c.resource !== event.resource) }),
        },
        WorkspaceCreationFailed: { target: 'failed' },
      },
    },
    failed: { type: 'final' },
    active: {
      on: {
        WorkspaceUpgraded: { guard: 'isBasic', actions: assign({ edition: () => 'enterprise' as const }) },
        IdentityAccessRevoked: {
          guard: 'grantHeld',
          actions: assign({ revoked: ({ context, event }) => [...context.revoked, event.target] }),
        },
        // resyncKeys (S2.5) re-grants each revoked access, then records that it ran.
        IdentityAccessGranted: { actions: assign({ revoked: ({ context, event }) => context.revoked.filter((t) => t !== event.target) }) },
        KeysResynced: {},
        DatastoreAttached: {
          guard: 'datastoreNameFree',
          actions: assign({ datastores: ({ context, event }) => [...context.datastores, event.datastore] }),
        },
        SecretStored: { actions: 'recordSecret' },
        StorageKeyRegenerated: {},
        WorkspaceDeleted: { target: 'deleted' },
      },
    },
    deleted: { type: 'final' },
  },
});
