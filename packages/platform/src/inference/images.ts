import { basename } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import {
  actions,
  errors,
  isSimError,
  imageAggregate,
  imageStatusOf,
  imageStepEffect,
  type EventDataMap,
  type ImageContext,
  type ImageSnapshot,
  type ImageStatus,
  type WorkspaceRecord,
  STREAMS,
} from '@amlsim/core';
import { AGENT_IMAGE_SCORING_CHECK_SCRIPT, AGENT_IMAGE_SCORING_SERVER, scoringFiles } from '@amlsim/agent';
import type { ComputeDriver, InferenceRuntime } from '../compute/compute-driver';
import { checkDependencies, RUN_BUILD_LOG } from '../compute/environments';
import { declareCommand, type CommandContext } from '../runtime/command-bus';
import { EffectRunner, type FactOf } from '../runtime/effect-runner';
import { streams, type PlatformRuntime, type DataPlane } from '../platform-context';
import type { ArmService } from '../arm/arm';
import { RegistryProcess } from '../workspace/container-registry';
import type { ModelRegistry } from './model-registry';

type ImageOutcome = FactOf<typeof imageAggregate>;
/** What each image step is carried out with: the container runtime and the workspace of the command. */
type ImageCommand = { runtime: InferenceRuntime; ws: WorkspaceRecord };

export const REGISTRY_PASSWORD_SECRET = 'container-registry-admin-password';
const APP_DIR = '/azureml-app';
const MODELS_DIR = '/azureml-models';

export const imageStream = STREAMS.image;

/** What the image service uses of the platform (wired by createPlatform). */
export type ImageServiceDeps = Pick<PlatformRuntime, 'bus' | 'dataDir' | 'ids' | 'secrets' | 'session' | 'store' | 'world'> & Pick<DataPlane, 'storage' | 'vaults'>;

/**
 * Images for web services (S8.5): "creates an image from model, scoring file and dependencies;
 * the Docker image is built and stored in the container registry". The image statechart names
 * the steps — build on the Node base, check the scoring script inside the image (a broken one
 * fails the image with its error), push to the workspace's registry — and this service carries
 * them out. The registry is a real `docker-registry` process per workspace, its admin password
 * kept in the workspace key vault (S6.1) and read with the workspace identity. Images are built,
 * checked, pushed and pulled through the platform's compute driver, the same container runtime
 * (and Docker client) as training's; with the process driver these verbs are refused.
 */
export class ImageService {
  private readonly registries = new Map<string, Promise<RegistryProcess>>();
  /** A build, check or push step that takes longer than this ends the image TimedOut. */
  stepTimeoutMs = 10 * 60_000;

  /** The image statechart's effects, carried out one image command at a time per image (runtime/effect-runner.ts). */
  private readonly runner: EffectRunner<typeof imageAggregate, ImageCommand>;

  constructor(
    private readonly p: ImageServiceDeps,
    private readonly arm: ArmService,
    private readonly models: ModelRegistry,
    private readonly driver: () => Promise<ComputeDriver>,
  ) {
    this.runner = new EffectRunner<typeof imageAggregate, ImageCommand>({
      store: p.store,
      aggregate: imageAggregate,
      // Docker builds, check containers and pushes: a crash can leave any of them half-done.
      recordsStart: ['buildImage', 'checkScoringScript', 'pushImage'],
      handlers: {
        buildImage: (_effect, { runtime, ws, snapshot: { context: image } }) => this.build(runtime, ws, image),
        checkScoringScript: ({ params: { tag } }, { runtime, ws, snapshot: { context: image } }) => this.check(runtime, ws, image, tag),
        pushImage: ({ params: { tag } }, { ctx, runtime, ws, snapshot: { context: image } }) => this.push(ctx, runtime, ws, image, tag),
        completeImage: (_effect, { snapshot: { context: image } }) => [{ type: 'ImageCreated', data: { ...ref(image), location: `${image.location ?? ''}` } }],
      },
      // A step that throws fails the image with its error; one that takes too long times it out.
      failed: (_effect, error, { context }) => [{ type: 'ImageCreationFailed', data: { ...ref(context), reason: error instanceof Error ? error.message : String(error) } }],
      timeout: {
        ms: () => this.stepTimeoutMs,
        outcome: (_effect, { context }, afterMs) => [{ type: 'ImageCreationTimedOut', data: { ...ref(context), afterMs } }],
      },
    });
  }

  /** Declared once (runtime/command-bus.ts): the image is built, checked and pushed as the workspace identity (S2.5, S6.1). */
  private readonly commands = {
    createImage: declareCommand({
      name: 'CreateImage',
      verb: 'createImage',
      action: actions.createImage,
      target: (args: { workspace: string }) => this.arm.inWorkspace(args.workspace),
      identity: ['registry', 'keyVault', 'storage'],
    }),
  };

  async createImage(
    token: string | undefined,
    args: { workspace: string; name: string; models: string[]; scoringScript: string; dependencies?: string[] },
  ): Promise<{ imageId: string; image: string; version: number; status: ImageStatus; location?: string }> {
    return this.p.bus.execute(this.commands.createImage, token, args, async (ctx, { ws }) => {
      // No container runtime (or no engine), no image: refused before a single fact of it is written.
      const runtime = await this.runtime('createImage');
      if (!existsSync(args.scoringScript)) throw errors.notFound('scoring script', args.scoringScript);
      // S8.5: the dependencies are npm specs, installed into the image when it is built (compute/environments.ts).
      checkDependencies(args.dependencies ?? []);
      const modelIds = args.models.map((id) => this.resolveModel(ws, id));
      const imageId = this.p.ids.next('img');
      const version = this.versionsOf(ws, args.name) + 1;
      // The scoring script is uploaded to the workspace storage, as AML uploads an image's assets
      // (S8.5): the build reads it from there, also when a resumed session builds it again
      // (`resume`), and its host path stays out of the log.
      this.p.storage.putBlob(this.storageIdentity(ws), ws.storageAccount!, ws.blobContainer!, scriptBlob(args.name, version, basename(args.scoringScript)), readFileSync(args.scoringScript));
      const requested: EventDataMap['ImageCreationRequested'] = {
        workspaceId: ws.workspaceId,
        workspace: ws.workspace,
        imageId,
        image: args.name,
        version,
        models: modelIds,
        scoringScript: basename(args.scoringScript),
        dependencies: args.dependencies ?? [],
      };
      const final = await this.runner.execute(ctx, imageStream(imageId), () => [{ type: 'ImageCreationRequested', data: requested }], { runtime, ws });
      const status = imageStatusOf(final);
      if (status === 'Failed' || status === 'TimedOut') throw errors.imageCreationFailed(args.name, final.context.reason ?? 'unknown');
      return { imageId, image: args.name, version, status, ...(final.context.location ? { location: final.context.location } : {}) };
    });
  }

  /**
   * Pull an image for a deployment from the workspace's registry, with the password the
   * workspace identity reads from the key vault (S6.1): deployments run what the registry holds.
   */
  async pullForDeployment(ctx: CommandContext, runtime: InferenceRuntime, ws: WorkspaceRecord, imageId: string): Promise<{ reference: string }> {
    const image = this.load(imageId);
    if (imageStatusOf(image) !== 'Succeeded' || !image.context.location) {
      throw errors.conflict(`Image '${image.context.image}' is ${imageStatusOf(image)}; only a Succeeded image can be deployed.`);
    }
    const registry = await this.registryOf(ctx, ws);
    const identity = { principalId: ws.identity!.principalId, name: ws.workspace };
    let password: string;
    try {
      password = this.p.vaults.getSecret(identity, ws.keyVault!, REGISTRY_PASSWORD_SECRET);
    } catch (error) {
      throw isSimError(error) && error.code === 'Forbidden' ? errors.managedIdentityAccessDenied(ws.workspace, 'key vault', 'deployWebservice') : error;
    }
    // The registry keeps its storage across simulators, not its port: an image pushed before a
    // restart is pulled by its repository and digest from where the registry listens now.
    const repositoryAndDigest = image.context.location.slice(image.context.location.indexOf('/') + 1);
    const pulled = await runtime.pullImage({ reference: `${registry.address}/${repositoryAndDigest}`, username: registry.username, password });
    return { reference: pulled.reference };
  }

  /**
   * A resumed session's images its dead simulator left being made (packages/platform/src/resume.ts),
   * level-triggered: each image still Running gets `ImageCreationResumed`, which re-enters the
   * step under way so that its effect is carried out again through the runner — a build is
   * content-addressed (the image made before is reused), a check runs again, a push to the
   * workspace's registry is idempotent — and the image ends in the facts a build without a
   * restart ends in. One whose model files or scoring script are gone from the workspace
   * storage, or with no container runtime left, fails PlatformRestarted saying so. Returns each
   * image gone on with and how it ended.
   */
  async resume(): Promise<Array<{ imageId: string; image: string; status: ImageStatus }>> {
    const out: Array<{ imageId: string; image: string; status: ImageStatus }> = [];
    const mine = [...this.p.store.readAll()].filter((e) => e.type === 'ImageCreationRequested' && e.meta.session === this.p.session);
    for (const requested of mine) {
      const imageId = String(requested.data.imageId);
      const stream = imageStream(imageId);
      if (!imageStepEffect(this.load(imageId))) continue;
      const image = this.load(imageId).context;
      const ws = this.p.world.workspaces.byId[image.workspaceId];
      const restarted = `PlatformRestarted: the simulator of session ${this.p.session} stopped while image '${image.image}' was being made`;
      let gone: string | undefined;
      let runtime: InferenceRuntime | undefined;
      try {
        if (!ws) throw new Error(`its workspace '${image.workspace}' is gone`);
        runtime = await this.runtime('resumeImage');
        if (imageStepEffect(this.load(imageId)) === 'buildImage') this.sourcesOf(ws, image);
      } catch (error) {
        gone = error instanceof Error ? error.message : String(error);
      }
      const ctx = this.p.bus.context('ResumeImage');
      const final = await this.runner.execute(
        ctx,
        stream,
        // Decided on the image's chain, from its state then: one that ended meanwhile is left as it is.
        (current) => {
          const effect = current && imageStepEffect(current.snapshot);
          if (!effect) return [];
          if (gone !== undefined) return [{ type: 'ImageCreationFailed', data: { ...ref(image), reason: `${restarted}, and it cannot go on: ${gone}` } }];
          return [{ type: 'ImageCreationResumed', data: { ...ref(image), effect } }];
        },
        { runtime: runtime!, ws: ws! },
      );
      out.push({ imageId, image: image.image, status: imageStatusOf(final) });
    }
    return out;
  }

  /**
   * The container runtime of the platform's driver, for `verb`: refused (BadRequest naming
   * `--driver docker`) by a driver without containers, or when no engine answers.
   */
  async runtime(verb: string): Promise<InferenceRuntime> {
    return (await this.driver()).inference(verb);
  }

  /** Stop the workspaces' registry processes (session end; the driver's cleanup removes the session's images). */
  async close(): Promise<void> {
    for (const r of this.registries.values()) await (await r.catch(() => undefined))?.stop();
    this.registries.clear();
  }

  /** An image's state, held by the runner and advanced by the facts appended since. */
  load(imageId: string): ImageSnapshot {
    const held = this.runner.load(imageStream(imageId));
    if (!held) throw errors.notFound('image', imageId);
    return held.snapshot;
  }

  private versionsOf(ws: WorkspaceRecord, name: string): number {
    let n = 0;
    for (const e of this.p.store.readAll()) if (e.type === 'ImageCreationRequested' && e.meta.session === this.p.session && e.data.workspaceId === ws.workspaceId && e.data.image === name) n++;
    return n;
  }

  private resolveModel(ws: WorkspaceRecord, id: string): string {
    const [name, v] = id.split(':');
    const versions = this.p.world.models[ws.workspaceId]?.[name ?? ''] ?? [];
    const found = v ? versions.find((m) => m.version === Number(v)) : versions.at(-1);
    if (!found) throw errors.notFound('model', id, `workspace '${ws.workspace}'`);
    return found.modelId;
  }

  /**
   * What an image is built from, read from the workspace storage as the workspace identity: its
   * models' files and its scoring script.
   * @throws Error naming what is gone (a model version, a model file, the scoring script).
   */
  private sourcesOf(ws: WorkspaceRecord, image: ImageContext): { modelFiles: Array<{ path: string; content: Buffer }>; script: Buffer } {
    const modelFiles = image.models.flatMap((id) => {
      const [name, v] = id.split(':') as [string, string];
      const version = this.p.world.models[ws.workspaceId]?.[name]?.find((m) => m.version === Number(v));
      if (!version) throw new Error(`model ${id} is not registered in workspace '${ws.workspace}'`);
      try {
        return this.models.files(ws, version).map((f) => ({ path: `${MODELS_DIR}/${name}/${f.path}`, content: f.content }));
      } catch (error) {
        throw new Error(`the files of model ${id} cannot be read from the workspace storage (${error instanceof Error ? error.message : String(error)})`);
      }
    });
    let script: Buffer;
    try {
      script = this.p.storage.getBlob(this.storageIdentity(ws), ws.storageAccount!, ws.blobContainer!, scriptBlob(image.image, image.version, image.scoringScript));
    } catch (error) {
      throw new Error(`the scoring script ${image.scoringScript} cannot be read from the workspace storage (${error instanceof Error ? error.message : String(error)})`);
    }
    return { modelFiles, script };
  }

  private storageIdentity(ws: WorkspaceRecord) {
    return { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
  }

  /** buildImage: the Docker image on the Node base, with the models, the scoring script and its dependencies. */
  private async build(runtime: InferenceRuntime, ws: WorkspaceRecord, image: ImageContext): Promise<ImageOutcome[]> {
    const { modelFiles, script } = this.sourcesOf(ws, image);
    // One model: AZUREML_MODEL_DIR is the directory holding its files; several: the parent, one sub-directory per model name.
    const modelDir = image.models.length === 1 ? `${MODELS_DIR}/${image.models[0]!.split(':')[0]}` : MODELS_DIR;
    const scriptPath = `${APP_DIR}/${image.scoringScript}`;
    // npm's output is kept with the image, encrypted in the workspace storage (S4.1), and named by the fact.
    const buildLog = `images/${image.image}/${image.version}/${RUN_BUILD_LOG}`;
    let logged = false;
    const built = await runtime.buildServiceImage({
      session: this.p.session,
      workspace: ws.workspace,
      files: [
        ...modelFiles,
        { path: scriptPath, content: script },
        { path: `${APP_DIR}/dependencies.json`, content: JSON.stringify(image.dependencies) },
        ...scoringFiles().map((f) => ({ path: f.path, hostPath: f.hostPath, mode: 0o644 })),
      ],
      env: { AZUREML_MODEL_DIR: modelDir, AMLSIM_SCORING_SCRIPT: scriptPath },
      workdir: APP_DIR,
      cmd: ['/usr/bin/node', AGENT_IMAGE_SCORING_SERVER],
      dependencies: image.dependencies,
      onBuildLog: (log) => {
        this.p.storage.putBlob(this.storageIdentity(ws), ws.storageAccount!, ws.blobContainer!, buildLog, Buffer.from(log));
        logged = true;
      },
    });
    const environment = built.environment && logged ? { environment: { ...built.environment, buildLog } } : {};
    return [{ type: 'ImageBuilt', data: { ...ref(image), tag: built.tag, reused: built.reused, ...environment } }];
  }

  /** checkScoringScript: the script is loaded inside the image; a broken one fails the image with its error. */
  private async check(runtime: InferenceRuntime, ws: WorkspaceRecord, image: ImageContext, tag: string): Promise<ImageOutcome[]> {
    const check = await runtime.startContainer({
      session: this.p.session,
      workspace: ws.workspace,
      role: 'image-check',
      image: tag,
      cmd: ['/usr/bin/node', AGENT_IMAGE_SCORING_CHECK_SCRIPT, `${APP_DIR}/${image.scoringScript}`],
      memoryBytes: 256 * 2 ** 20,
      nanoCpus: 1_000_000_000,
    });
    try {
      const { exitCode } = await check.wait();
      const logs = await check.logs();
      const lines = `${logs.stdout}\n${logs.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
      // The build log is kept with the image, encrypted in the workspace storage (S4.1).
      this.p.storage.putBlob(this.storageIdentity(ws), ws.storageAccount!, ws.blobContainer!, `images/${image.image}/${image.version}/build.log`, Buffer.from(lines.join('\n')));
      const detail = (lines.at(-1) ?? '').replace(/^amlsim scoring: /, '');
      if (exitCode === 0) return [{ type: 'ImageScoringScriptChecked', data: { ...ref(image), ok: true, detail } }];
      return [
        { type: 'ImageScoringScriptChecked', data: { ...ref(image), ok: false, detail } },
        { type: 'ImageCreationFailed', data: { ...ref(image), reason: `the scoring script is broken: ${detail}` } },
      ];
    } finally {
      await check.remove();
    }
  }

  /** pushImage: to the workspace's registry, with the password the workspace identity reads from the key vault (S6.1). */
  private async push(ctx: CommandContext, runtime: InferenceRuntime, ws: WorkspaceRecord, image: ImageContext, tag: string): Promise<ImageOutcome[]> {
    const registry = await this.registryOf(ctx, ws);
    const identity = { principalId: ws.identity!.principalId, name: ws.workspace };
    // S6.1: the registry password is read from the workspace key vault, as the workspace identity.
    const password = this.p.vaults.getSecret(identity, ws.keyVault!, REGISTRY_PASSWORD_SECRET);
    const repository = `azureml/${image.image.toLowerCase()}`;
    const pushed = await runtime.pushImage({ image: tag, registry: registry.address, repository, tag: String(image.version), username: registry.username, password });
    return [{ type: 'ImagePushed', data: { ...ref(image), registry: registry.address, repository, digest: pushed.digest } }];
  }

  /** The workspace's registry process, started on first use; its password goes to the key vault. */
  private registryOf(ctx: CommandContext, ws: WorkspaceRecord): Promise<RegistryProcess> {
    let r = this.registries.get(ws.workspaceId);
    if (!r) {
      r = (async () => {
        const identity = { principalId: ws.identity!.principalId, name: ws.workspace };
        let password: string | undefined;
        try {
          password = this.p.vaults.getSecret(identity, ws.keyVault!, REGISTRY_PASSWORD_SECRET);
        } catch {
          password = undefined;
        }
        const registry = await RegistryProcess.start({ dataDir: this.p.dataDir, name: ws.registry!, session: this.p.session, ...(password ? { password } : {}) });
        this.p.secrets.add(registry.password, 'container registry password');
        if (!password) {
          const stored = this.p.vaults.setSecret(identity, ws.keyVault!, REGISTRY_PASSWORD_SECRET, registry.password);
          const stream = streams.workspace(ws.workspaceId);
          ctx.emit(stream, this.p.store.streamVersion(stream), [
            { type: 'SecretStored', data: { workspaceId: ws.workspaceId, workspace: ws.workspace, vault: ws.keyVault!, secret: REGISTRY_PASSWORD_SECRET, ...stored } },
          ]);
        }
        return registry;
      })();
      r.catch(() => this.registries.delete(ws.workspaceId));
      this.registries.set(ws.workspaceId, r);
    }
    return r;
  }
}

/** Where an image's scoring script is kept in the workspace storage, beside its build log. */
const scriptBlob = (image: string, version: number, scoringScript: string): string => `images/${image}/${version}/source/${scoringScript}`;

const ref = (image: ImageContext) => ({ workspaceId: image.workspaceId, workspace: image.workspace, imageId: image.imageId, image: image.image });
