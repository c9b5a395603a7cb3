import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { errors, isSimError, type ManagementStep, type MetricRow, type RunContext, type SimError } from '@amlsim/core';
import type { PlatformContext } from '../runtime/platform-context';
import { sessionTempPath } from '../runtime/session-temp';
import { runStream, type RunManager } from './run-manager';
import type { RunTokenService } from './run-tokens';
import type { SnapshotStore } from './snapshots';

const MAX_BODY = 64 * 1024 * 1024;
const MAX_METRIC_ROWS = 250;
const PATH = /^\/workspaces\/([^/]+)\/runs\/([^/]+)\/(snapshot|status|heartbeat|metrics|outputs|logs|complete)$/;

/**
 * The control plane compute targets call back into (docs/control-plane.md; S1.3, S8.4):
 * HTTP over a unix socket in a directory bind-mounted into containers — their only channel.
 * Every call presents the run token; refusals are answered with the platform's error code
 * and recorded as `RunCallRefused`.
 */
export class ControlPlane {
  private server?: Server;
  readonly dir: string;
  readonly socketName = 'control.sock';

  constructor(
    private readonly p: PlatformContext,
    private readonly runs: RunManager,
    private readonly tokens: RunTokenService,
    private readonly snapshots: SnapshotStore,
  ) {
    // Short path: unix socket paths are limited to 108 bytes.
    this.dir = sessionTempPath(p.session);
  }

  get socketPath(): string {
    return join(this.dir, this.socketName);
  }

  async start(): Promise<void> {
    if (this.server) return;
    mkdirSync(this.dir, { recursive: true });
    // Containers run as a non-root user: the directory must be traversable and the socket writable.
    chmodSync(this.dir, 0o777);
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    chmodSync(this.socketPath, 0o666);
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = PATH.exec(req.url ?? '');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!match) return reply(404, { error: { code: 'ResourceNotFound', message: `no control-plane route ${req.method} ${req.url}` } });
    const [, workspace, runId, call] = match as unknown as [string, string, string, string];
    try {
      const body = await readJson(req);
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      this.authorize(token, workspace, runId);
      reply(200, await this.serve(call, workspace, runId, body));
    } catch (error) {
      const e: SimError = isSimError(error) ? error : errors.badRequest(error instanceof Error ? error.message : String(error));
      await this.refused(runId, `${req.method} ${call}`, e);
      reply(e.status, { error: { code: e.code, message: e.message } });
    }
  }

  /** S1.3: the token must verify, be alive, not be revoked, and be scoped to this workspace and run. */
  private authorize(token: string | undefined, workspace: string, runId: string): void {
    this.tokens.verify(token, { workspace, runId });
    const { snapshot } = this.runs.load(runId);
    if (snapshot.context.tokenRevoked) throw errors.invalidToken('the run token was revoked when the run ended');
    if (snapshot.context.workspace !== workspace) throw errors.notFound('run', runId, `workspace '${workspace}'`);
  }

  private async refused(runId: string, call: string, e: SimError): Promise<void> {
    const known = this.p.store.streamVersion(runStream(runId)) > 0;
    if (!known) return;
    const { snapshot } = this.runs.load(runId);
    const ref = { runId, workspaceId: snapshot.context.workspaceId, workspace: snapshot.context.workspace };
    await this.runs.record(runId, [{ type: 'RunCallRefused', data: { ...ref, call, code: e.code, reason: e.message } }]);
  }

  /**
   * S8.3 unmanaged: the platform sees the management code on a VM only through its calls, so
   * each of the four steps is recorded when the call that follows it proves it done:
   *
   *   GET /snapshot          prepareEnvironment (it runs on the VM, in its work dir, and asks for the code)
   *   POST /status Running   downloadCode, setEnvironment (code written, variables and run module set)
   *   POST /logs             runScript (the user's script ran to its end; exit code follows)
   *
   * On managed compute the platform sees its own steps (image, file share, container) instead.
   */
  private stepsProvenBy(run: RunContext, call: string, status?: unknown) {
    if (run.computeType !== 'VirtualMachine') return [];
    const vm = run.vm ?? run.compute;
    const detail: Record<ManagementStep, string> = {
      prepareEnvironment: `the management code runs on VM '${vm}' in its work directory (the VM's node runtime, no Docker)`,
      downloadCode: `snapshot ${run.snapshotId} downloaded with the run token`,
      setEnvironment: 'AZUREML_* variables, the user env and the @amlsim/run module set up',
      runScript: `node ${[run.script, ...run.args].join(' ')} ran to its end`,
    };
    const steps: ManagementStep[] =
      call === 'snapshot' ? ['prepareEnvironment'] : call === 'status' && status === 'Running' ? ['downloadCode', 'setEnvironment'] : call === 'logs' ? ['runScript'] : [];
    const ref = { runId: run.runId, workspaceId: run.workspaceId, workspace: run.workspace };
    return steps.map((step) => ({ type: 'ManagementStepCompleted' as const, data: { ...ref, vm, step, detail: detail[step] } }));
  }

  private async serve(call: string, workspace: string, runId: string, body: Record<string, unknown>): Promise<unknown> {
    const { snapshot } = this.runs.load(runId);
    const run = snapshot.context;
    const ref = { runId, workspaceId: run.workspaceId, workspace };
    const steps = this.stepsProvenBy(run, call, body.status);
    switch (call) {
      case 'snapshot': {
        if (steps.length) await this.runs.record(runId, steps);
        const ws = this.p.world.workspaces.byId[run.workspaceId]!;
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        const snap = this.snapshots.load(identity, ws.storageAccount!, ws.blobContainer!, run.snapshotId);
        return { snapshotId: snap.snapshotId, files: snap.files.map((f) => ({ path: f.path, mode: f.mode, content: f.content.toString('base64') })) };
      }
      case 'status': {
        const status = body.status;
        if (status !== 'Preparing' && status !== 'Running' && status !== 'Finalizing') throw errors.badRequest(`status must be Preparing, Running or Finalizing, not ${JSON.stringify(status)}`);
        const step = typeof body.detail === 'string' ? body.detail : status;
        await this.runs.record(runId, [...steps, { type: 'RunStatusReported', data: { ...ref, status, step } }]);
        return { ok: true };
      }
      case 'heartbeat':
        await this.runs.heartbeat(runId);
        return { ok: true, cancelRequested: this.runs.load(runId).snapshot.matches('cancelRequested') };
      case 'metrics': {
        const rows = body.rows;
        if (!Array.isArray(rows) || rows.length > MAX_METRIC_ROWS) throw errors.badRequest(`metrics: rows must be a list of at most ${MAX_METRIC_ROWS}`);
        // Rows come from inside the container (a script can write the metrics file itself): check them.
        rows.forEach((row, i) => checkMetricRow(row, i));
        const batch = typeof body.batch === 'number' ? body.batch : 0;
        await this.runs.record(runId, [{ type: 'MetricsWrittenBack', data: { ...ref, batch, count: rows.length, rows: rows as MetricRow[] } }]);
        return { ok: true, accepted: rows.length };
      }
      case 'outputs': {
        if (typeof body.path !== 'string' || typeof body.content !== 'string') throw errors.badRequest('outputs: path and content (base64) are required');
        const ws = this.p.world.workspaces.byId[run.workspaceId]!;
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        const bytes = Buffer.from(body.content, 'base64');
        // S4.1: outputs live in the workspace's blob storage, encrypted at rest.
        this.p.storage.putBlob(identity, ws.storageAccount!, ws.blobContainer!, `ExperimentRun/dcid.${runId}/outputs/${body.path}`, bytes);
        await this.runs.record(runId, [{ type: 'OutputUploaded', data: { ...ref, path: body.path, bytes: bytes.length } }]);
        return { ok: true };
      }
      case 'logs': {
        const stdout = typeof body.stdout === 'string' ? body.stdout : '';
        const stderr = typeof body.stderr === 'string' ? body.stderr : '';
        const ws = this.p.world.workspaces.byId[run.workspaceId]!;
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        this.p.storage.putBlob(identity, ws.storageAccount!, ws.blobContainer!, `ExperimentRun/dcid.${runId}/logs/user_logs.txt`, Buffer.from(`${stdout}${stderr}`));
        const tail = this.p.secrets.redact(`${stdout}${stderr}`.split('\n').filter(Boolean).slice(-10).join('\n')).slice(-2000);
        await this.runs.record(runId, [...steps, { type: 'RunLogsUploaded', data: { ...ref, stdoutBytes: stdout.length, stderrBytes: stderr.length, tail } }]);
        return { ok: true };
      }
      case 'complete': {
        const exitCode = typeof body.exitCode === 'number' ? body.exitCode : 1;
        await this.runs.record(runId, [
          { type: 'RunScriptEnded', data: { ...ref, exitCode, ...(typeof body.error === 'string' ? { error: body.error } : {}) } },
        ]);
        return { ok: true };
      }
    }
    throw errors.notFound('control-plane call', call);
  }
}

const SCALAR = new Set(['number', 'string', 'boolean']);

const checkMetricRow = (row: unknown, index: number): void => {
  const r = row as Record<string, unknown>;
  const bad = (why: string) => errors.badRequest(`metrics: row ${index} ${why}`);
  if (!r || typeof r !== 'object') throw bad('is not an object');
  if (typeof r.name !== 'string' || r.name.length === 0 || r.name.length > 255) throw bad('needs a name of 1-255 characters');
  switch (r.kind) {
    case 'scalar':
      if (!SCALAR.has(typeof r.value)) throw bad(`'${r.name}': value must be a number, string or boolean`);
      return;
    case 'tag':
      if (typeof r.value !== 'string') throw bad(`'${r.name}': a tag value must be a string`);
      return;
    case 'list':
      if (!Array.isArray(r.values) || !r.values.every((v) => SCALAR.has(typeof v))) throw bad(`'${r.name}': values must be a list of scalars`);
      return;
    case 'row':
      if (!r.row || typeof r.row !== 'object' || !Object.values(r.row).every((v) => SCALAR.has(typeof v))) throw bad(`'${r.name}': row must map names to scalars`);
      return;
    default:
      throw bad(`has kind ${JSON.stringify(r.kind)}; allowed: scalar, list, row, tag`);
  }
};

const readJson = (req: IncomingMessage): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(errors.badRequest(`request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (size === 0) return resolve({});
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        resolve(v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
      } catch {
        reject(errors.badRequest('request body is not JSON'));
      }
    });
    req.on('error', reject);
  });
