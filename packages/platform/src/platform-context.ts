import { STREAMS, type EventStore, type IdGenerator, type WorldState } from '@amlsim/core';
import type { BlobStorageService } from './workspace/blob-storage';
import type { KeyVaultService } from './workspace/key-vault';
import type { SimClock } from './runtime/clock';
import type { CommandBus, RbacMode } from './runtime/command-bus';
import type { Faults } from './runtime/faults';
import type { SecretRegistry } from './runtime/secret-registry';

/**
 * What the simulated services share: the log, the live read models folded from it, the
 * clock, and the data-plane stores. Built once by `createPlatform` (the composition root of
 * the runtime); services receive it rather than reaching for globals. It sits beside
 * `createPlatform`, not in runtime/, because it carries services (vaults, storage).
 */
export type PlatformContext = {
  session: string;
  dataDir: string;
  store: EventStore;
  /** Read models of this session, kept current by a subscription to the store. */
  world: WorldState;
  clock: SimClock;
  ids: IdGenerator;
  bus: CommandBus;
  secrets: SecretRegistry;
  faults: Faults;
  vaults: KeyVaultService;
  storage: BlobStorageService;
  rbacMode: RbacMode;
};

/**
 * The simulator's own infrastructure principal (the AML resource provider and the storage
 * service's key access). It may use the vaults and accounts it creates, as Azure's resource
 * provider may; no user or workspace identity shares it.
 */
export const PLATFORM_PRINCIPAL = { principalId: 'platform', name: 'AzureML resource provider' } as const;

/** The log's streams (packages/core/src/streams/catalog.ts). */
export const streams = STREAMS;
