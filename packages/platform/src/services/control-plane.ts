import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errors, isSimError, type MetricRow, type SimError } from '@amlsim/core';
import type { PlatformContext } from '../runtime/platform-context';
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
    this.dir = join(tmpdir(), `amlsim-${p.session}`);
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

  private async serve(call: string, workspace: string, runId: string, body: Record<string, unknown>): Promise<unknown> {
    const { snapshot } = this.runs.load(runId);
    const run = snapshot.context;
    const ref = { runId, workspaceId: run.workspaceId, workspace };
    switch (call) {
      case 'snapshot': {
        const ws = this.p.world.workspaces.byId[run.workspaceId]!;
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        const snap = this.snapshots.load(identity, ws.storageAccount!, ws.blobContainer!, run.snapshotId);
        return { snapshotId: snap.snapshotId, files: snap.files.map((f) => ({ path: f.path, mode: f.mode, content: f.content.toString('base64') })) };
      }
      case 'status': {
        const status = body.status;
        if (status !== 'Preparing' && status !== 'Running' && status !== 'Finalizing') throw errors.badRequest(`status must be Preparing, Running or Finalizing, not ${JSON.stringify(status)}`);
        const step = typeof body.detail === 'string' ? body.detail : status;
        await this.runs.record(runId, [{ type: 'RunStatusReported', data: { ...ref, status, step } }]);
        return { ok: true };
      }
      case 'heartbeat':
        return { ok: true, cancelRequested: this.runs.load(runId).snapshot.matches('cancelRequested') };
      case 'metrics': {
        const rows = body.rows;
        if (!Array.isArray(rows) || rows.length > MAX_METRIC_ROWS) throw errors.badRequest(`metrics: rows must be a list of at most ${MAX_METRIC_ROWS}`);
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
        await this.runs.record(runId, [{ type: 'RunLogsUploaded', data: { ...ref, stdoutBytes: stdout.length, stderrBytes: stderr.length, tail } }]);
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
