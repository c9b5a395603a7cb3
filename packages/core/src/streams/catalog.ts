/**
 * Every stream of the log and its key function, in one place (docs/events.md "Streams"). An
 * aggregate's facts go to its own stream; a stream id is `<kind>-<key>`. No other module
 * spells a stream id: a new kind of stream is added here, and `test/stream-catalog.test.ts`
 * keeps literals out of the rest of the code.
 */
export const STREAMS = {
  /** A tenant's directory: principals, sign-ins, MFA (S1.1). */
  tenant: (tenantId: string) => `tenant-${tenantId}`,
  /** A subscription of one session: its owners and role assignments at its scope (S2). */
  subscription: (session: string, subscription: string) => `subscription-${session}-${subscription}`,
  /** A workspace and its resources (S8.1). */
  workspace: (workspaceId: string) => `workspace-${workspaceId}`,
  /** A training run (S8.3, S8.4). */
  run: (runId: string) => `run-${runId}`,
  /** A compute target: a cluster's nodes, an attached VM (S8.3, S4.6). */
  compute: (computeId: string) => `compute-${computeId}`,
  /** A user's VM (S8.3 unmanaged). */
  vm: (vmId: string) => `vm-${vmId}`,
  /** A virtual network of one session, by name (S3.1). */
  vnet: (session: string, vnet: string) => `vnet-${session}-${vnet}`,
  /** A workspace's code snapshots (S8.2). */
  snapshots: (workspaceId: string) => `snapshots-${workspaceId}`,
  /** What was put in a workspace's datastores (S4.2). */
  datastores: (workspaceId: string) => `datastores-${workspaceId}`,
  /** A workspace's model registry (S8.5). */
  models: (workspaceId: string) => `models-${workspaceId}`,
  /** An inference image (S8.5). */
  image: (imageId: string) => `image-${imageId}`,
  /** A web service (S8.5). */
  service: (serviceId: string) => `service-${serviceId}`,
  /** A workspace's App Insights records (S7.3). */
  appInsights: (workspaceId: string) => `appinsights-${workspaceId}`,
  /** Refused commands of one session (CommandRejected). */
  rejections: (session: string) => `rejections-${session}`,
  /** The platform's own resources of one session (its key vault, S6.2). */
  platform: (session: string) => `platform-${session}`,
  /** Scoring telemetry the platform keeps in its own subscription (S8.5). */
  platformTelemetry: (session: string) => `platform-telemetry-${session}`,
  /** Facts of one session as a whole: the clock, faults, its start and end. */
  session: (session: string) => `session-${session}`,
} as const;

export type StreamKind = keyof typeof STREAMS;

/** Each kind's prefix (what its key function writes before the first key), longest first. */
const PREFIXES: ReadonlyArray<readonly [StreamKind, string]> = (Object.keys(STREAMS) as StreamKind[])
  .map((kind) => {
    const id = (STREAMS[kind] as (...keys: string[]) => string)('\u0000', '\u0000');
    return [kind, id.slice(0, id.indexOf('\u0000'))] as const;
  })
  .sort((a, b) => b[1].length - a[1].length);

/**
 * The kind of a stream id (`run-abc` → `run`), or undefined for one the catalog does not know.
 * The longest matching prefix wins (`platform-telemetry-…` is not `platform-…`).
 */
export const streamKindOf = (stream: string): StreamKind | undefined => PREFIXES.find(([, prefix]) => stream.startsWith(prefix))?.[0];

/**
 * A stream id taken apart by the catalog: its kind and what its key function wrote after the
 * kind's prefix (`run-abc` → `{ kind: 'run', key: 'abc' }`), or undefined for one it does not know.
 */
export const parseStream = (stream: string): { kind: StreamKind; key: string } | undefined => {
  const found = PREFIXES.find(([, prefix]) => stream.startsWith(prefix));
  return found ? { kind: found[0], key: stream.slice(found[1].length) } : undefined;
};
