import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STREAMS, type StoredEvent } from '@amlsim/core';
import { connectDocker } from '@amlsim/docker';
import { createPlatform, fingerprint, nanoIds, recoverAbandonedSessions, resumeAbandonedSessions, REGISTRY_PASSWORD_SECRET, SERVICE_TOKEN_REFRESH_MS, STORAGE_CONNECTION_SECRET, type Platform } from '@amlsim/platform';
import { secretShapesIn } from '@amlsim/scenario';
import { openEventStore } from '@amlsim/store';
import { aliceScenarioYaml, privateLeaseHome, REPO, runCliAndKill, tempDir } from './helpers';

/**
 * Inference work under way when the simulator was SIGKILLed goes on in the session that resumes
 * it (docs/architecture.md "Crash recovery", "Inference after a restart"): an image whose push
 * had started is pushed and created, and deployable; a deployment killed with one of its two
 * replicas started keeps that one, starts the other with the same keys and ends Healthy; a
 * restored service's token whose refreshBy fell due while no simulator ran has its refresh
 * recorded on resume. An image killed during its build is built on resume, and one whose
 * sources are gone from the workspace storage fails PlatformRestarted saying which; a plain-HTTP
 * (`tls: false`) deployment comes back over plain HTTP, resumed or restored, with no key,
 * password or connection string in the log or the simulator's output.
 */

/** A scenario in `dir` (its models and scoring scripts copied beside it) playing `steps` after alice's workspace. */
const scenarioIn = (dir: string, name: string, steps: string[]): string => {
  cpSync(join(REPO, 'scenarios', 'models'), join(dir, 'models'), { recursive: true });
  cpSync(join(REPO, 'scenarios', 'scoring'), join(dir, 'scoring'), { recursive: true });
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, aliceScenarioYaml(name, '{ driver: docker }', steps));
  return file;
};

const IMAGE_STEPS = [
  '  - id: m1',
  '    registerModel: { workspace: ws1, name: sentiment, path: models/sentiment.json }',
  '  - id: img',
  '    createImage: { workspace: ws1, name: sentiment-img, models: [m1], scoringScript: scoring/score.js }',
];

/**
 * A simulator in a child process — alice's ws1, the sentiment model registered and image
 * `sentiment-img` created from it, then `steps` (TypeScript with `platform`, `token` and `image`
 * in scope) — that SIGKILLs itself once the first fact `killAt` names is committed. The kill
 * lands exactly there (a build reused from an earlier test can end within a millisecond of
 * starting, faster than a parent reading the output could kill it), and the scenario language
 * has no `tls` for the deployments that need one.
 */
const selfKillingSimulator = (dataDir: string, killAt: { type: string; effect?: string }, steps: string): string => `
import { createPlatform } from '@amlsim/platform';
import { openEventStore } from '@amlsim/store';
const store = openEventStore('sqlite', ${JSON.stringify(dataDir)});
store.subscribe((events) => {
  for (const e of events) {
    if (e.type === ${JSON.stringify(killAt.type)} && ${killAt.effect ? `e.data.effect === ${JSON.stringify(killAt.effect)}` : 'true'}) process.kill(process.pid, 'SIGKILL');
  }
});
const platform = await createPlatform({ store, dataDir: ${JSON.stringify(dataDir)}, driver: 'docker',
  tenant: { mfa: 'optional', principals: { alice: { kind: 'user' } }, subscriptions: { 'sub-1': { owners: ['alice'] } } } });
const token = await platform.directory.signIn('alice', { mfa: false });
await platform.arm.createWorkspace(token, { name: 'ws1', resourceGroup: 'rg1', region: 'eastus' });
const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'sentiment', path: ${JSON.stringify(join(REPO, 'scenarios', 'models', 'sentiment.json'))} });
const image = await platform.images.createImage(token, { workspace: 'ws1', name: 'sentiment-img', models: [model.modelId], scoringScript: ${JSON.stringify(join(REPO, 'scenarios', 'scoring', 'score.js'))} });
${steps}
console.log('the kill point was never reached');
process.exit(3);
`;

/** Each secret, and anything JWT- or key-shaped, found in the log's events, its SQLite bytes or `output`. */
const secretsFoundIn = (store: { readAll(): Iterable<StoredEvent> }, dataDir: string, output: string, secrets: Array<{ what: string; value: string }>): string[] => {
  const places = [
    { where: 'the events', text: JSON.stringify([...store.readAll()]) },
    ...['events.sqlite', 'events.sqlite-wal'].map((f) => join(dataDir, f)).filter(existsSync).map((path) => ({ where: path, text: readFileSync(path).toString('latin1') })),
    { where: "the simulator's output", text: output },
  ];
  const found: string[] = [];
  for (const { where, text } of places) {
    for (const { what, value } of secrets) if (text.includes(value)) found.push(`${what} in ${where}`);
    for (const shape of secretShapesIn(text)) found.push(`${shape.kind} string in ${where}: ${shape.value.slice(0, 12)}…`);
  }
  return found;
};

/** The events of the log, read apart from any platform (what the dead simulator left). */
const logOf = (dataDir: string): StoredEvent[] => {
  const store = openEventStore('sqlite', dataDir);
  try {
    return [...store.readAll()];
  } finally {
    store.close();
  }
};

describe('inference under way when the simulator was killed goes on when it resumes', () => {
  const tmp = tempDir();
  const home = privateLeaseHome(tmp.dir);
  const previousTmp = process.env.TMPDIR;
  const sessions: string[] = [];

  beforeAll(() => {
    // The resumed sessions below run in this process: they find the killed ones' doors and leases where those kept them.
    process.env.TMPDIR = home;
  });
  afterAll(async () => {
    vi.useRealTimers();
    if (previousTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previousTmp;
    const engine = await connectDocker();
    for (const session of sessions) await engine.sweep({ session });
    await engine.close();
    tmp[Symbol.dispose]();
  });

  /** Run `scenario` with the CLI and SIGKILL it at the first event `killAt` says; the dead session's id. */
  const kill = async (scenario: string, dataDir: string, killAt: (e: StoredEvent) => boolean): Promise<StoredEvent> => {
    const killed = await runCliAndKill(scenario, dataDir, killAt, { ...process.env, TMPDIR: home });
    expect(killed.killedAt, 'the scenario never reached the kill point').toBeDefined();
    sessions.push(killed.killedAt!.meta.session);
    return killed.killedAt!;
  };

  let children = 0;
  /** Run {@link selfKillingSimulator} to its kill; the fact it was killed at, and what it wrote to stdout and stderr. */
  const killSimulatorAt = async (dataDir: string, killAt: { type: string; effect?: string }, steps = ''): Promise<{ killedAt: StoredEvent; output: string }> => {
    const script = join(REPO, 'test', `.resume-inference-child-${process.pid}-${++children}.mts`);
    writeFileSync(script, selfKillingSimulator(dataDir, killAt, steps));
    let output = '';
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: home } });
      child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
      const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, s) => resolve(s)));
      expect(signal, `the simulator was not killed at ${killAt.type}: ${output}`).toBe('SIGKILL');
    } finally {
      rmSync(script, { force: true });
    }
    const killedAt = logOf(dataDir).find((e) => e.type === killAt.type && (killAt.effect === undefined || e.data.effect === killAt.effect))!;
    sessions.push(killedAt.meta.session);
    return { killedAt, output };
  };

  /** The docker images labelled with `session` (what its simulators built). */
  const imagesOf = (session: string): string[] => execFileSync('docker', ['image', 'ls', '-q', '--filter', `label=dev.amlsim.session=${session}`], { encoding: 'utf8' }).split('\n').filter(Boolean);

  it('an image whose push had started is pushed and created on resume, and can be deployed', async () => {
    const dataDir = join(tmp.dir, 'image');
    const scenario = scenarioIn(join(tmp.dir), 'image-push', [...IMAGE_STEPS, '  - sleep: 60s']);
    const killedAt = await kill(scenario, dataDir, (e) => e.type === 'EffectStarted' && e.data.effect === 'pushImage');
    const session = killedAt.meta.session;
    const before = logOf(dataDir).filter((e) => e.stream === killedAt.stream);
    // The push had started and had no outcome: recovery alone would fail this image.
    expect(before.at(-1)!.type).toBe('EffectStarted');
    expect(before.map((e) => e.type)).not.toContain('ImagePushed');

    const store = openEventStore('sqlite', dataDir);
    const platform = await createPlatform({ store, dataDir, resume: session });
    try {
      const imageId = String(before[0]!.data.imageId);
      expect(await platform.resumeImages()).toEqual([{ imageId, image: 'sentiment-img', status: 'Succeeded' }]);
      const stream = store.readStream(STREAMS.image(imageId));
      const after = stream.slice(before.length).map((e) => e.type);
      // The push carried out again under a new effect id, then the facts of a build without a crash.
      expect(after).toEqual(['ImageCreationResumed', 'EffectStarted', 'ImagePushed', 'ImageCreated']);
      expect(stream[before.length]!.data).toMatchObject({ effect: 'pushImage' });
      expect(stream.every((e) => e.meta.session === session)).toBe(true);
      // Resuming again finds nothing under way (level-triggered).
      expect(await platform.resumeImages()).toEqual([]);

      const token = await platform.directory.signIn('alice', { mfa: false });
      const deployed = await platform.webservices.deploy(token, { workspace: 'ws1', name: 'after-push', imageId, target: 'ACI' });
      expect(deployed.status).toBe('Healthy');
      expect(await platform.callWebservice('after-push', { data: { features: [1, 0, 1] } })).toEqual({ httpStatus: 200, body: { score: 2.6, label: 'positive' } });
    } finally {
      await platform.close();
      store.close();
    }
  }, 300_000);

  it('a deployment killed with one of two replicas started keeps it, starts the other with the same keys, and scores', async () => {
    const dataDir = join(tmp.dir, 'deploy');
    const scenario = scenarioIn(join(tmp.dir), 'two-replicas', [
      '  - createCompute: { workspace: ws1, name: aks1, type: AKS, agentCount: 1 }',
      ...IMAGE_STEPS,
      '  - deployWebservice: { workspace: ws1, name: two-svc, image: img, target: AKS, compute: aks1, replicas: 2 }',
      '  - sleep: 60s',
    ]);
    const killedAt = await kill(scenario, dataDir, (e) => e.type === 'ReplicaStarted');
    const session = killedAt.meta.session;
    const before = logOf(dataDir).filter((e) => e.stream === killedAt.stream);
    expect(before.filter((e) => e.type === 'ReplicaStarted')).toHaveLength(1);
    expect(before.map((e) => e.type)).not.toContain('WebserviceHealthy');
    const generated = before.find((e) => e.type === 'ServiceKeysGenerated')!;

    const store = openEventStore('sqlite', dataDir);
    const platform = await createPlatform({ store, dataDir, resume: session });
    try {
      expect(await platform.resumeDeployments()).toEqual([{ service: 'two-svc', status: 'Healthy' }]);
      // restoreWebservices (called after it on resume) leaves the service it went on with alone.
      expect(await platform.restoreWebservices()).toEqual([]);
      const stream = store.readStream(killedAt.stream);
      const after = stream.slice(before.length);
      expect(after.map((e) => e.type)).toEqual(['WebserviceDeploymentResumed', 'ReplicaStarted', 'WebserviceHealthy']);
      expect(after[0]!.data).toMatchObject({ kept: ['replica-0@agent-0'], restarting: ['replica-1@agent-0'] });
      expect(after[1]!.data).toMatchObject({ replica: 'replica-1@agent-0' });
      expect(platform.world.webservices['two-svc']!.status).toBe('Healthy');

      // The kept replica is the one the dead simulator started: two replica containers, one of them that one.
      const engine = await connectDocker();
      const replicas = await engine.findContainers({ 'dev.amlsim.session': session, 'dev.amlsim.service': 'two-svc', 'dev.amlsim.role': 'scoring' });
      await engine.close();
      expect(replicas).toHaveLength(2);
      expect(replicas.some((c) => c.id.startsWith(String(killedAt.data.container)))).toBe(true);

      // The same keys as generated before the crash; both replicas answer through the gateway.
      const token = await platform.directory.signIn('alice', { mfa: false });
      const keys = await platform.webservices.getKeys(token, { service: 'two-svc' });
      expect(fingerprint(keys.primaryKey)).toBe(generated.data.primary);
      for (let i = 0; i < 4; i++) {
        expect(await platform.callWebservice('two-svc', { data: { features: [1, 0, 1] }, authorization: `Bearer ${keys.primaryKey}` })).toEqual({ httpStatus: 200, body: { score: 2.6, label: 'positive' } });
      }
      expect((await platform.callWebservice('two-svc', { data: { features: [1, 0, 1] } })).httpStatus).toBe(401);
    } finally {
      await platform.close();
      store.close();
    }
  }, 300_000);

  it("a restored service's token whose refreshBy fell due while no simulator ran has its refresh recorded on resume", async () => {
    const dataDir = join(tmp.dir, 'token');
    const scenario = scenarioIn(join(tmp.dir), 'token-service', [
      '  - createCompute: { workspace: ws1, name: aks1, type: AKS, agentCount: 1 }',
      ...IMAGE_STEPS,
      '  - id: tok',
      '    deployWebservice: { workspace: ws1, name: tok-svc, image: img, target: AKS, compute: aks1, tokenAuthEnabled: true }',
      '  - getToken: { service: tok }',
      '  - sleep: 60s',
    ]);
    const killedAt = await kill(scenario, dataDir, (e) => e.type === 'ServiceTokenIssued');
    const session = killedAt.meta.session;
    const refreshBy = Date.parse(String(killedAt.data.refreshBy));

    const store = openEventStore('sqlite', dataDir);
    const platform = await createPlatform({ store, dataDir, resume: session });
    // The simulator stayed down past the token's refreshBy: the wall clock of this process (the
    // resumed session's real clock) is moved on by the refresh time and a minute — once the
    // session holds its lease, which the start-up sweep judges by the file system's time; timers stay real.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + SERVICE_TOKEN_REFRESH_MS + 60_000, shouldAdvanceTime: true });
    try {
      expect(platform.context.clock.now()).toBeGreaterThan(refreshBy);
      expect(await platform.restoreWebservices()).toEqual(['tok-svc']);
      const stream = store.readStream(killedAt.stream);
      const types = stream.map((e) => e.type);
      // Fired as soon as the service is restored, before anything else happens to it.
      expect(types.slice(-2)).toEqual(['WebserviceRestored', 'ServiceTokenRefreshDue']);
      expect(stream.at(-1)!.data).toMatchObject({ service: 'tok-svc', tokenId: killedAt.data.tokenId, refreshBy: killedAt.data.refreshBy, expiresAt: killedAt.data.expiresAt });
      expect(stream.at(-1)!.meta.session).toBe(session);
      // Once: a second restore finds nothing to restore, and the timer is not armed again.
      expect(await platform.restoreWebservices()).toEqual([]);
      expect(store.readStream(killedAt.stream).filter((e) => e.type === 'ServiceTokenRefreshDue')).toHaveLength(1);
    } finally {
      await platform.close();
      store.close();
      vi.useRealTimers();
    }
  }, 300_000);
  it('an image whose build had started is built, checked, pushed and created on resume', async () => {
    const dataDir = join(tmp.dir, 'build');
    const { killedAt } = await killSimulatorAt(dataDir, { type: 'EffectStarted', effect: 'buildImage' });
    const session = killedAt.meta.session;
    const before = logOf(dataDir).filter((e) => e.stream === killedAt.stream);
    // The build had started and had no outcome.
    expect(before.at(-1)!.type).toBe('EffectStarted');
    expect(before.map((e) => e.type)).not.toContain('ImageBuilt');

    const store = openEventStore('sqlite', dataDir);
    const platform = await createPlatform({ store, dataDir, resume: session });
    try {
      const imageId = String(before[0]!.data.imageId);
      expect(await platform.resumeImages()).toEqual([{ imageId, image: 'sentiment-img', status: 'Succeeded' }]);
      const stream = store.readStream(STREAMS.image(imageId));
      expect(stream.slice(before.length).map((e) => e.type)).toEqual([
        'ImageCreationResumed',
        'EffectStarted',
        'ImageBuilt',
        'EffectStarted',
        'ImageScoringScriptChecked',
        'EffectStarted',
        'ImagePushed',
        'ImageCreated',
      ]);
      expect(stream[before.length]!.data).toMatchObject({ effect: 'buildImage' });
      expect(stream.filter((e) => e.type === 'ImageScoringScriptChecked').map((e) => e.data.ok)).toEqual([true]);
      expect(platform.images.load(imageId).context.location).toBeDefined();
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
      store.close();
    }
  }, 300_000);

  it('with no scenario to go on with, resuming the data dir still pushes and creates an image whose push had started, and recovery then fails nothing', async () => {
    const dataDir = join(tmp.dir, 'push-no-scenario');
    const { killedAt } = await killSimulatorAt(dataDir, { type: 'EffectStarted', effect: 'pushImage' });
    const imageId = String(logOf(dataDir).find((e) => e.stream === killedAt.stream)!.data.imageId);
    const store = openEventStore('sqlite', dataDir);
    try {
      // What `amlsim resume` (and the start of `run` or `serve`) does, with nothing to continue.
      const resumed = await resumeAbandonedSessions({ store, dataDir });
      expect(resumed.map((r) => ({ session: r.session, images: r.images }))).toEqual([
        { session: killedAt.meta.session, images: [{ imageId, image: 'sentiment-img', status: 'Succeeded' }] },
      ]);
      const recovered = recoverAbandonedSessions(store, { by: 'test', ids: nanoIds(), now: Date.now });
      expect(recovered.flatMap((r) => r.images)).toEqual([]);
      const types = store.readStream(STREAMS.image(imageId)).map((e) => e.type);
      expect(types).toContain('ImageCreated');
      expect(types).not.toContain('ImageCreationFailed');
    } finally {
      store.close();
    }
  }, 300_000);

  it.each([
    { gone: 'the scoring script', blobs: 'images/sentiment-img/1/source/', says: /cannot go on: the scoring script score\.js cannot be read from the workspace storage/ },
    { gone: 'the model files', blobs: 'models/sentiment/', says: /cannot go on: the files of model sentiment:1 cannot be read from the workspace storage/ },
  ])('an image killed during its build fails PlatformRestarted on resume when its sources are gone from the workspace storage ($gone), and leaves nothing behind', async ({ gone, blobs, says }) => {
    const dataDir = join(tmp.dir, `gone-${gone.replaceAll(' ', '-')}`);
    const { killedAt } = await killSimulatorAt(dataDir, { type: 'EffectStarted', effect: 'buildImage' });
    const session = killedAt.meta.session;
    const before = logOf(dataDir).filter((e) => e.stream === killedAt.stream);
    const imageId = String(before[0]!.data.imageId);

    const store = openEventStore('sqlite', dataDir);
    let platform: Platform | undefined = await createPlatform({ store, dataDir, resume: session });
    try {
      const ws = platform.world.workspaces.byId[String(before[0]!.data.workspaceId)]!;
      const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
      const storage = platform.context.storage;
      const removed = storage.listBlobs(identity, ws.storageAccount!, ws.blobContainer!).filter((b) => b.startsWith(blobs));
      expect(removed.length, `no blob under ${blobs}`).toBeGreaterThan(0);
      for (const blob of removed) storage.deleteBlob(identity, ws.storageAccount!, ws.blobContainer!, blob);

      expect(await platform.resumeImages()).toEqual([{ imageId, image: 'sentiment-img', status: 'Failed' }]);
      const after = store.readStream(STREAMS.image(imageId)).slice(before.length);
      // Nothing was carried out again: the image failed at once, saying what is missing.
      expect(after.map((e) => e.type)).toEqual(['ImageCreationFailed']);
      const reason = String(after[0]!.data.reason);
      expect(reason).toMatch(new RegExp(`^PlatformRestarted: the simulator of session ${session} stopped while image 'sentiment-img' was being made, and it cannot go on: `));
      expect(reason).toMatch(says);
      expect(platform.images.load(imageId).context.location).toBeUndefined();
      // No container of the session runs (no check, no replica); the image cannot be deployed.
      const engine = await connectDocker();
      expect(await engine.findContainers({ 'dev.amlsim.session': session })).toEqual([]);
      await engine.close();
      const token = await platform.directory.signIn('alice', { mfa: false });
      await expect(platform.webservices.deploy(token, { workspace: 'ws1', name: 'never', imageId, target: 'ACI' })).rejects.toMatchObject({ code: 'Conflict' });
      expect((await platform.close()).leftovers).toEqual([]);
      platform = undefined;
      // Whatever the killed build left of the image went with the session.
      expect(imagesOf(session)).toEqual([]);
    } finally {
      await platform?.close();
      store.close();
    }
  }, 300_000);

  /** The secrets a key-auth service of ws1 holds: its keys, the registry password and the storage connection string. */
  const secretsOf = async (platform: Platform, service: string) => {
    const token = await platform.directory.signIn('alice', { mfa: false });
    const keys = await platform.webservices.getKeys(token, { service });
    const ws = platform.world.workspaces.byId[platform.world.webservices[service]!.workspaceId]!;
    const identity = { principalId: ws.identity!.principalId, name: ws.workspace };
    return {
      keys,
      secrets: [
        { what: 'primary key', value: keys.primaryKey },
        { what: 'secondary key', value: keys.secondaryKey },
        { what: 'ARM token', value: token },
        { what: 'registry password', value: platform.context.vaults.getSecret(identity, ws.keyVault!, REGISTRY_PASSWORD_SECRET) },
        { what: 'storage connection string', value: platform.context.vaults.getSecret(identity, ws.keyVault!, STORAGE_CONNECTION_SECRET) },
      ],
    };
  };

  it('a plain-HTTP (tls: false) deployment killed while starting its replica is resumed over plain HTTP, with no secret in the log or the output', async () => {
    const dataDir = join(tmp.dir, 'plain-resume');
    const { killedAt, output } = await killSimulatorAt(
      dataDir,
      { type: 'ReplicaStarted' },
      "await platform.webservices.deploy(token, { workspace: 'ws1', name: 'plain-svc', imageId: image.imageId, target: 'ACI', authEnabled: true, tls: false });",
    );
    const session = killedAt.meta.session;
    const before = logOf(dataDir).filter((e) => e.stream === killedAt.stream);
    expect(before.find((e) => e.type === 'WebserviceDeploymentRequested')!.data).toMatchObject({ service: 'plain-svc', tls: false });
    expect(before.map((e) => e.type)).not.toContain('WebserviceHealthy');

    const store = openEventStore('sqlite', dataDir);
    const platform = await createPlatform({ store, dataDir, resume: session });
    try {
      expect(await platform.resumeDeployments()).toEqual([{ service: 'plain-svc', status: 'Healthy' }]);
      const healthy = store.readStream(killedAt.stream).at(-1)!;
      expect(healthy.type).toBe('WebserviceHealthy');
      expect(String(healthy.data.scoringUri)).toMatch(/^http:\/\//);
      // No CA to trust: nothing is served over TLS.
      expect(healthy.data).not.toHaveProperty('caCert');
      const { keys, secrets } = await secretsOf(platform, 'plain-svc');
      expect(await platform.callWebservice('plain-svc', { data: { features: [1, 0, 1] }, authorization: `Bearer ${keys.primaryKey}` })).toEqual({ httpStatus: 200, body: { score: 2.6, label: 'positive' } });
      expect(secretsFoundIn(store, dataDir, output, secrets)).toEqual([]);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
      store.close();
    }
  }, 300_000);

  it('a plain-HTTP (tls: false) service killed once Healthy is restored over plain HTTP, with no secret in the log or the output', async () => {
    const dataDir = join(tmp.dir, 'plain-restore');
    const { killedAt, output } = await killSimulatorAt(
      dataDir,
      { type: 'WebserviceHealthy' },
      "await platform.webservices.deploy(token, { workspace: 'ws1', name: 'plain-svc', imageId: image.imageId, target: 'ACI', authEnabled: true, tls: false });",
    );
    const session = killedAt.meta.session;
    expect(String(killedAt.data.scoringUri)).toMatch(/^http:\/\//);

    const store = openEventStore('sqlite', dataDir);
    const platform = await createPlatform({ store, dataDir, resume: session });
    try {
      expect(await platform.restoreWebservices()).toEqual(['plain-svc']);
      const restored = store.readStream(killedAt.stream).at(-1)!;
      expect(restored.type).toBe('WebserviceRestored');
      expect(String(restored.data.scoringUri)).toMatch(/^http:\/\//);
      expect(restored.data.scoringUri).not.toBe(killedAt.data.scoringUri);
      expect(restored.data).not.toHaveProperty('caCert');
      const { keys, secrets } = await secretsOf(platform, 'plain-svc');
      expect(await platform.callWebservice('plain-svc', { data: { features: [1, 0, 1] }, authorization: `Bearer ${keys.secondaryKey}` })).toEqual({ httpStatus: 200, body: { score: 2.6, label: 'positive' } });
      expect(secretsFoundIn(store, dataDir, output, secrets)).toEqual([]);
    } finally {
      expect((await platform.close()).leftovers).toEqual([]);
      store.close();
    }
  }, 300_000);
});
