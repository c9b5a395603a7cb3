import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyToWorld, assignmentsOf, emptyWorld, type EventStore, type IdGenerator, type StoredEvent, type WorldState } from '@amlsim/core';
import { ArmService } from './services/arm';
import { BlobStorageService } from './services/blob-storage';
import { DirectoryService, type TenantConfig } from './services/directory';
import { KeyVaultService } from './services/key-vault';
import { realClock, type SimClock } from './runtime/clock';
import { CommandBus } from './runtime/command-bus';
import { Faults } from './runtime/faults';
import { nanoIds } from './runtime/ids';
import { PLATFORM_PRINCIPAL, type PlatformContext, type RbacMode } from './runtime/platform-context';
import { SecretRegistry } from './runtime/secret-registry';
import { takeCheckpoint } from './checkpoints';

export type PlatformOptions = {
  store: EventStore;
  /** Where vaults, blob storage, registries and the platform root key live. */
  dataDir: string;
  tenant: TenantConfig;
  clock?: SimClock;
  ids?: IdGenerator;
  rbacMode?: RbacMode;
};

export type Platform = {
  readonly session: string;
  readonly context: PlatformContext;
  readonly directory: DirectoryService;
  readonly arm: ArmService;
  /** Read models of this session, current after every append. */
  readonly world: WorldState;
  /** Move the virtual clock (a fact in the log, so a replay shows why tokens expired). */
  advanceClock(ms: number): Promise<void>;
  /** Arm a fault for the next matching operation (SCENARIOS.md "Time and faults"). */
  injectFault(kind: 'failProvisioning', target: string): Promise<void>;
  /** Save the read models and aggregate states for `amlsim replay` to compare against. */
  checkpoint(): void;
  close(): void;
};

/**
 * The platform's root key: the "platform-managed key" of S4.1/S6.1 that wraps every vault's
 * and storage account's data key. It is the one key kept as a file (mode 0600) — standing in
 * for the platform's HSM — and it protects only data keys, never user data directly.
 */
const loadRootKey = (dataDir: string): Buffer => {
  const dir = join(dataDir, 'platform');
  const file = join(dir, 'root.key');
  if (existsSync(file)) return readFileSync(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, key, { mode: 0o600 });
  return key;
};

/** The runtime's composition root: wires the log, the read models and the simulated services. */
export const createPlatform = async (options: PlatformOptions): Promise<Platform> => {
  const ids = options.ids ?? nanoIds();
  const clock = options.clock ?? realClock();
  const session = ids.next('s');
  const world = emptyWorld();
  const rootKey = loadRootKey(options.dataDir);
  // The data plane asks the log (via the read model) who holds a grant: revocations act at once.
  const holdsGrant = (principalId: string, scope: string) =>
    principalId === PLATFORM_PRINCIPAL.principalId ||
    assignmentsOf(world.access, principalId).some((a) => a.scope.toLowerCase() === scope.toLowerCase());
  const context: PlatformContext = {
    session,
    dataDir: options.dataDir,
    store: options.store,
    world,
    clock,
    ids,
    bus: new CommandBus(options.store, clock, session, ids),
    secrets: new SecretRegistry(),
    faults: new Faults(),
    vaults: new KeyVaultService(join(options.dataDir, 'keyvaults'), rootKey, holdsGrant),
    storage: new BlobStorageService(join(options.dataDir, 'storage'), rootKey, holdsGrant),
    rbacMode: options.rbacMode ?? 'enforce',
  };
  const unsubscribe = options.store.subscribe((events: StoredEvent[]) => {
    for (const e of events) if (e.meta.session === session) applyToWorld(world, e);
  });
  const directory = new DirectoryService(context);
  const arm = new ArmService(context, directory);
  await directory.bootstrap(options.tenant);
  return {
    session,
    context,
    directory,
    arm,
    world,
    advanceClock: async (ms) => {
      clock.advance(ms);
      await context.bus.run('AdvanceClock', (ctx) =>
        ctx.emitAsPlatform(`session-${session}`, 'any', [{ type: 'ClockAdvanced', data: { byMs: ms, to: new Date(clock.now()).toISOString() } }]),
      );
    },
    injectFault: async (kind, target) => {
      context.faults.arm(kind, target);
      await context.bus.run('InjectFault', (ctx) =>
        ctx.emitAsPlatform(`session-${session}`, 'any', [{ type: 'FaultInjected', data: { fault: kind, target } }]),
      );
    },
    checkpoint: () => takeCheckpoint(options.store, session, world),
    close: () => unsubscribe(),
  };
};
