import { STREAMS, type EventStore, type IdGenerator, type WorldState } from '@amlsim/core';
import type { BlobStorageService } from './workspace/blob-storage';
import type { KeyVaultService } from './workspace/key-vault';
import type { SimClock } from './runtime/clock';
import type { CommandBus, RbacMode } from './runtime/command-bus';
import type { Faults } from './runtime/faults';
import type { SecretRegistry } from './runtime/secret-registry';

/**
 * The runtime every service may depend on: the log, the live read models folded from it, the
 * clock, ids, the command bus, the secret registry and the fault switches. It holds no
 * service. Each service names the parts it uses in its own deps type (a `Pick` of this and,
 * where it reaches into blob storage or key vaults, of `DataPlane`), so its constructor says
 * what it depends on; `createPlatform` (the composition root) wires them.
 */
export type PlatformRuntime = {
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
  rbacMode: RbacMode;
};

/** The data-plane services (S4.1 blob storage, S6.2 key vaults), given only to the services that use them. */
export type DataPlane = {
  vaults: KeyVaultService;
  storage: BlobStorageService;
};

/** What `createPlatform` builds once and hands out, each service taking its own part of it. */
export type PlatformContext = PlatformRuntime & DataPlane;

/**
 * The simulator's own infrastructure principal (the AML resource provider and the storage
 * service's key access). It may use the vaults and accounts it creates, as Azure's resource
 * provider may; no user or workspace identity shares it.
 */
export const PLATFORM_PRINCIPAL = { principalId: 'platform', name: 'AzureML resource provider' } as const;

/** The log's streams (packages/core/src/streams/catalog.ts). */
export const streams = STREAMS;
