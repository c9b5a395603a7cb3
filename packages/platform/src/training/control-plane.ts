import { chmodSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { errors, isSimError, STREAMS, type ChannelKind, type ManagementStep, type MetricRow, type RunContext, type SimError } from '@amlsim/core';
import type { PlatformRuntime, DataPlane } from '../platform-context';
import { closeSocketDoor, openSocketDoor, type SocketDoor } from '../runtime/socket-doors';
import type { RunManager } from './run-manager';
import type { RunTokenService } from '../identity/run-tokens';
import type { SnapshotStore } from './snapshots';

const MAX_BODY = 64 * 1024 * 1024;
const MAX_METRIC_ROWS = 250;
const PATH = /^\/workspaces\/([^/]+)\/runs\/([^/]+)\/(snapshot|status|heartbeat|metrics|outputs|logs|complete)$/;
const SOCKET_NAME = 'control.sock';

/** What a compute target is given of its channel: the directory to mount and the socket in it. */
export type ChannelInfo = {
  readonly id: string;
  readonly kind: ChannelKind;
  /** Host directory holding the socket: bind-mount it (read-only) into the target. */
  readonly dir: string;
  readonly socketName: string;
  /** Host path of the socket. */
  readonly socketPath: string;
};

type Channel = ChannelInfo & {
  door: SocketDoor;
  server: Server;
  /** The runs whose calls this channel carries: its own run, or the runs on its VM. */
  runs: Set<string>;
  /** Every run it ever carried (a refusal of a late call is still that run's fact). */
  carried: Set<string>;
};

/** Who made a fact through the control plane: recorded in the event's meta (S1.3). */
export type ControlPlaneCaller = { channel: string; tokenId: string };

/** What the control plane uses of the platform's runtime and data plane (wired by createPlatform). */
export type ControlPlaneDeps = Pick<PlatformRuntime, 'ids' | 'secrets' | 'session' | 'store' | 'world'> & Pick<DataPlane, 'storage'>;

/**
 * The control plane compute targets call back into (docs/control-plane.md; S1.3, S8.4).
 *
 * One channel per principal (docs/security.md): every run container gets a socket of its own,
 * in a directory of its own that only it mounts (read-only, owned by the platform); every
 * attached VM gets one for the runs on it. A channel knows the runs it carries, and a run token
 * is bound to its channel (`chn`): a call that names another run, or presents another run's
 * token, is refused with `AuthorizationFailed` however genuine the token. Refusals are
 * answered with the platform's error code and recorded as `RunCallRefused` on the run whose
 * channel the call came in on.
 */
export class ControlPlane {
  private readonly channels = new Map<string, Channel>();
  /** Per run, the calls whose facts it has (see `taken`); dropped when its channel lets it go. */
  private readonly ledgers = new Map<string, Set<CallKey>>();

  constructor(
    private readonly p: ControlPlaneDeps,
    private readonly runs: RunManager,
    private readonly tokens: RunTokenService,
    private readonly snapshots: SnapshotStore,
  ) {}

  /**
   * Has the run a fact of this call already? Then the call is one sent again because its answer
   * was lost (the platform restarted mid-call; docs/control-plane.md "When the platform
   * restarts"): it is answered as before and records nothing, so each call's fact is taken once.
   * Looked up in the run's ledger of taken calls, folded from its stream once and kept up with
   * each fact this control plane records, so a run that sends many calls pays O(1) for each,
   * not a scan of its stream.
   */
  private taken(runId: string, key: CallKey): boolean {
    return this.ledger(runId).has(key);
  }

  private ledger(runId: string): Set<CallKey> {
    let ledger = this.ledgers.get(runId);
    if (!ledger) {
      ledger = new Set();
      for (const e of this.p.store.readStream(STREAMS.run(runId))) {
        const key = callKeyOf(e.type, e.data);
        if (key) ledger.add(key);
      }
      this.ledgers.set(runId, ledger);
    }
    return ledger;
  }

  /** Record a control-plane call's facts on its run, and note the call as taken. */
  private async take(runId: string, key: CallKey, facts: Parameters<RunManager['record']>[1], caller: ControlPlaneCaller): Promise<void> {
    await this.runs.record(runId, facts, caller);
    this.ledger(runId).add(key);
  }

  /** Open a channel: a fresh door and a server listening in it. */
  open(kind: ChannelKind): Promise<ChannelInfo> {
    return this.listen(this.p.ids.next('ch'), kind);
  }

  /**
   * Listen again on a channel of this session that a dead simulator left (a resumed session,
   * RunManager.reattach): the same door — the directory its container has mounted since it
   * started, so a new socket in it is the one the container reaches — and the same id, which
   * the run's token is bound to. The dead server's socket file is replaced.
   */
  reopen(id: string, kind: ChannelKind): Promise<ChannelInfo> {
    if (this.channels.has(id)) throw errors.conflict(`control-plane channel ${id} is already open`);
    return this.listen(id, kind, { replace: true });
  }

  private async listen(id: string, kind: ChannelKind, options: { replace?: boolean } = {}): Promise<ChannelInfo> {
    const door = openSocketDoor(this.p.session, ['ch', id], 'platform');
    const socketPath = join(door.dir, SOCKET_NAME);
    if (options.replace) rmSync(socketPath, { force: true });
    const channel: Channel = { id, kind, dir: door.dir, socketName: SOCKET_NAME, socketPath, door, runs: new Set(), carried: new Set(), server: createServer() };
    channel.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.handle(channel, req, res));
    try {
      await new Promise<void>((resolve, reject) => {
        channel.server.once('error', reject);
        channel.server.listen(socketPath, () => resolve());
      });
      // The target's user (uid 1000) must be able to connect; the door it sits in is read-only to it.
      chmodSync(socketPath, 0o666);
    } catch (error) {
      closeSocketDoor(door);
      throw error;
    }
    this.channels.set(id, channel);
    return { id, kind, dir: door.dir, socketName: SOCKET_NAME, socketPath };
  }

  /** Let `channel` carry the calls of `runId` (its own run, or a run started on its VM). */
  bind(channelId: string, runId: string): void {
    const channel = this.channels.get(channelId);
    if (!channel) throw errors.notFound('control-plane channel', channelId);
    channel.runs.add(runId);
    channel.carried.add(runId);
  }

  /** The run ended: its calls are no longer carried (a container's channel closes with it). */
  async unbind(channelId: string, runId: string): Promise<void> {
    const channel = this.channels.get(channelId);
    if (!channel) return;
    channel.runs.delete(runId);
    this.ledgers.delete(runId);
    if (channel.kind === 'container') await this.close(channelId);
  }

  async close(channelId: string): Promise<void> {
    const channel = this.channels.get(channelId);
    if (!channel) return;
    this.channels.delete(channelId);
    channel.server.closeAllConnections();
    await new Promise<void>((r) => channel.server.close(() => r()));
    closeSocketDoor(channel.door);
  }

  async stop(): Promise<void> {
    for (const id of [...this.channels.keys()]) await this.close(id);
  }

  private async handle(channel: Channel, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = PATH.exec(req.url ?? '');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [, workspace, runId, call] = (match ?? []) as unknown as [string, string | undefined, string | undefined, string | undefined];
    try {
      if (!match || !workspace || !runId || !call) throw errors.notFound('control-plane route', `${req.method} ${req.url}`);
      // Deny first: an unauthorized caller gets nothing read of its body, let alone 64 MiB of it.
      const { caller, revoked } = this.authorize(channel, token, workspace, runId);
      const body = await readJson(req);
      if (revoked) {
        // The run's own token, on its own channel, revoked since: a call it made while alive and
        // sends again (its answer was lost when the platform went; docs/control-plane.md "When
        // the platform restarts") is answered as it was; anything new is refused.
        const key = callKeyOfRequest(call, body);
        if (!key || !this.taken(runId, key)) throw errors.invalidToken('the run token was revoked when the run ended');
        reply(200, call === 'metrics' ? { ok: true, accepted: Array.isArray(body.rows) ? body.rows.length : 0 } : { ok: true });
        return;
      }
      reply(200, await this.serve(call, workspace, runId, body, caller));
    } catch (error) {
      const e: SimError = isSimError(error) ? error : errors.badRequest(error instanceof Error ? error.message : String(error));
      await this.refused(channel, token, runId, `${req.method} ${call ?? req.url}`, req.url ?? '', e);
      reply(e.status, { error: { code: e.code, message: e.message } });
    }
  }

  /**
   * S1.3, deny by default: the token must verify, be alive, be scoped to this workspace and run,
   * be bound to this channel, be the run's current token (not one a later RunTokenIssued
   * replaced), and not be revoked; and the channel must (still) carry the run.
   */
  private authorize(channel: Channel, token: string | undefined, workspace: string, runId: string): { caller: ControlPlaneCaller; revoked: boolean } {
    const claims = this.tokens.verify(token, { workspace, runId, channel: channel.id });
    const { snapshot } = this.runs.load(runId);
    // A revoked token acts no more: `handle` answers only a call it made while alive, sent again.
    if (snapshot.context.tokenRevoked) return { caller: { channel: channel.id, tokenId: claims.jti }, revoked: true };
    // Only the run's current token acts: one a later RunTokenIssued replaced (a resumed session's
    // RunResumed, whose new token supersedes the one the dead simulator issued) is refused.
    if (snapshot.context.tokenId !== undefined && claims.jti !== snapshot.context.tokenId) {
      throw errors.invalidToken(`the run token ${claims.jti} was replaced by the run's token ${snapshot.context.tokenId} and no longer acts`);
    }
    if (snapshot.context.workspace !== workspace) throw errors.notFound('run', runId, `workspace '${workspace}'`);
    if (!channel.runs.has(runId)) {
      throw errors.authorizationFailed(
        `control-plane channel ${channel.id}`,
        'control-plane call',
        `/workspaces/${workspace}/runs/${runId}`,
        `this channel carries the calls of ${[...channel.runs].join(', ') || 'no run any more'}, not of run '${runId}' (one channel per run, S1.3)`,
      );
    }
    return { caller: { channel: channel.id, tokenId: claims.jti }, revoked: false };
  }

  /**
   * Whose fact a refusal is: the run of the token presented, when the token is genuine (whoever
   * relays it, that run's token acted); else the run the call named, if this channel ever
   * carried it; else the run the channel belongs to. Never a run the caller merely named: a
   * hostile script cannot write into another run's stream, nor change how it ends.
   */
  private async refused(channel: Channel, token: string | undefined, named: string | undefined, call: string, target: string, e: SimError): Promise<void> {
    const tokenRun = this.tokens.runOf(token);
    const known = (runId: string | undefined) => runId !== undefined && this.p.store.streamVersion(STREAMS.run(runId)) > 0;
    const caller = [tokenRun, named && channel.carried.has(named) ? named : undefined, ...channel.carried].find(known);
    if (!caller) return; // a VM channel that never carried a run: nobody's call to record it on
    const run = this.runs.load(caller).snapshot.context;
    const ref = { runId: caller, workspaceId: run.workspaceId, workspace: run.workspace };
    await this.runs
      .record(caller, [
        {
          type: 'RunCallRefused',
          data: { ...ref, call, code: e.code, reason: e.message, channel: channel.id, target: target.slice(0, 300), ...(tokenRun ? { tokenRun } : {}) },
        },
      ])
      .catch(() => {}); // the run has left the platform's hands (session end): nothing to record on
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

  private async serve(call: string, workspace: string, runId: string, body: Record<string, unknown>, caller: ControlPlaneCaller): Promise<unknown> {
    const { snapshot } = this.runs.load(runId);
    const run = snapshot.context;
    const ref = { runId, workspaceId: run.workspaceId, workspace };
    const steps = this.stepsProvenBy(run, call, body.status);
    switch (call) {
      case 'snapshot': {
        if (steps.length) await this.runs.record(runId, steps, caller);
        const ws = this.p.world.workspaces.byId[run.workspaceId]!;
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        const snap = this.snapshots.load(identity, ws.storageAccount!, ws.blobContainer!, run.snapshotId);
        return { snapshotId: snap.snapshotId, files: snap.files.map((f) => ({ path: f.path, mode: f.mode, content: f.content.toString('base64') })) };
      }
      case 'status': {
        const status = body.status;
        if (status !== 'Preparing' && status !== 'Running' && status !== 'Finalizing') throw errors.badRequest(`status must be Preparing, Running or Finalizing, not ${JSON.stringify(status)}`);
        const step = typeof body.detail === 'string' ? body.detail : status;
        const key = callKeyOfRequest(call, body)!;
        if (this.taken(runId, key)) return { ok: true };
        await this.take(runId, key, [...steps, { type: 'RunStatusReported', data: { ...ref, status, step } }], caller);
        return { ok: true };
      }
      case 'heartbeat':
        await this.runs.heartbeat(runId, caller);
        return { ok: true, cancelRequested: this.runs.load(runId).snapshot.matches('cancelRequested') };
      case 'metrics': {
        const rows = body.rows;
        if (!Array.isArray(rows) || rows.length > MAX_METRIC_ROWS) throw errors.badRequest(`metrics: rows must be a list of at most ${MAX_METRIC_ROWS}`);
        // Rows come from inside the container (a script can write the metrics file itself): check them.
        rows.forEach((row, i) => checkMetricRow(row, i));
        const batch = typeof body.batch === 'number' ? body.batch : 0;
        const key = callKeyOfRequest(call, body)!;
        if (this.taken(runId, key)) return { ok: true, accepted: rows.length };
        await this.take(runId, key, [{ type: 'MetricsWrittenBack', data: { ...ref, batch, count: rows.length, rows: rows as MetricRow[] } }], caller);
        return { ok: true, accepted: rows.length };
      }
      case 'outputs': {
        if (typeof body.path !== 'string' || typeof body.content !== 'string') throw errors.badRequest('outputs: path and content (base64) are required');
        const ws = this.p.world.workspaces.byId[run.workspaceId]!;
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        const bytes = Buffer.from(body.content, 'base64');
        const path = body.path;
        const key = callKeyOfRequest(call, body)!;
        if (this.taken(runId, key)) return { ok: true };
        // S4.1: outputs live in the workspace's blob storage, encrypted at rest.
        this.p.storage.putBlob(identity, ws.storageAccount!, ws.blobContainer!, `ExperimentRun/dcid.${runId}/outputs/${body.path}`, bytes);
        await this.take(runId, key, [{ type: 'OutputUploaded', data: { ...ref, path: body.path, bytes: bytes.length } }], caller);
        return { ok: true };
      }
      case 'logs': {
        const stdout = typeof body.stdout === 'string' ? body.stdout : '';
        const stderr = typeof body.stderr === 'string' ? body.stderr : '';
        if (this.taken(runId, callKey.logs)) return { ok: true };
        const ws = this.p.world.workspaces.byId[run.workspaceId]!;
        const identity = { kind: 'identity' as const, principalId: ws.identity!.principalId, name: ws.workspace };
        this.p.storage.putBlob(identity, ws.storageAccount!, ws.blobContainer!, `ExperimentRun/dcid.${runId}/logs/user_logs.txt`, Buffer.from(`${stdout}${stderr}`));
        const tail = this.p.secrets.redact(`${stdout}${stderr}`.split('\n').filter(Boolean).slice(-10).join('\n')).slice(-2000);
        await this.take(runId, callKey.logs, [...steps, { type: 'RunLogsUploaded', data: { ...ref, stdoutBytes: stdout.length, stderrBytes: stderr.length, tail } }], caller);
        return { ok: true };
      }
      case 'complete': {
        const exitCode = typeof body.exitCode === 'number' ? body.exitCode : 1;
        if (this.taken(runId, callKey.complete)) return { ok: true };
        await this.take(
          runId,
          callKey.complete,
          [{ type: 'RunScriptEnded', data: { ...ref, exitCode, ...(typeof body.error === 'string' ? { error: body.error } : {}) } }],
          caller,
        );
        return { ok: true };
      }
    }
    throw errors.notFound('control-plane call', call);
  }
}

/** A control-plane call that records a fact, by what makes a repeat of it the same call. */
type CallKey = string & { readonly __call: unique symbol };
const callKey = {
  status: (status: string, step: string) => `status ${status} ${step}` as CallKey,
  metrics: (batch: number) => `metrics ${batch}` as CallKey,
  output: (path: string, bytes: number) => `output ${bytes} ${path}` as CallKey,
  logs: 'logs' as CallKey,
  complete: 'complete' as CallKey,
};

/** The call a request is, by the same key its fact is recorded under (see `callKeyOf`); undefined for calls that record no such fact. */
const callKeyOfRequest = (call: string, body: Record<string, unknown>): CallKey | undefined => {
  switch (call) {
    case 'status':
      return callKey.status(String(body.status), typeof body.detail === 'string' ? body.detail : String(body.status));
    case 'metrics':
      return callKey.metrics(typeof body.batch === 'number' ? body.batch : 0);
    case 'outputs':
      return typeof body.path === 'string' && typeof body.content === 'string' ? callKey.output(body.path, Buffer.from(body.content, 'base64').length) : undefined;
    case 'logs':
      return callKey.logs;
    case 'complete':
      return callKey.complete;
    default:
      return undefined;
  }
};

/** The call a run's fact was recorded by, if it is one a repeat of which must not record again. */
const callKeyOf = (type: string, data: Record<string, unknown>): CallKey | undefined => {
  switch (type) {
    case 'RunStatusReported':
      return callKey.status(String(data.status), String(data.step));
    case 'MetricsWrittenBack':
      return callKey.metrics(Number(data.batch));
    case 'OutputUploaded':
      return callKey.output(String(data.path), Number(data.bytes));
    case 'RunLogsUploaded':
      return callKey.logs;
    case 'RunScriptEnded':
      return callKey.complete;
    default:
      return undefined;
  }
};

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
