import { hashPassword } from '../crypto/password-hash';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { basename } from 'node:path';
import { AGENT_DIR } from '@amlsim/agent';
import { actions, computeKey, errors, isSimError, STREAMS, type ComputeRecord, type EventDataMap } from '@amlsim/core';
import type { ComputeDriver, RunningCompute, RunningVm } from '../compute/compute-driver';
import type { VnetService } from '../compute/vnets';
import { callLoginAgent, refusalOf } from '../compute/vm-login-client';
import { declareCommand, type CommandContext } from '../runtime/command-bus';
import { PLATFORM_PRINCIPAL, type PlatformRuntime, type DataPlane } from '../platform-context';
import type { ArmService } from '../arm/arm';
import type { ChannelInfo, ControlPlane } from './control-plane';

/** The platform's own subscription (S6.2, S4.4): where its key vault lives, out of every user's reach. */
export const PLATFORM_SUBSCRIPTION = 'azureml-platform';

export const platformVaultScope = (vault: string): string =>
  `/subscriptions/${PLATFORM_SUBSCRIPTION}/resourceGroups/platform/providers/Microsoft.KeyVault/vaults/${vault}`;

/** Name of the secret holding the platform's private key for an attached compute, in the platform vault. */
export const computeKeySecretName = (workspace: string, compute: string): string => `${workspace}-${compute}-ssh-private-key`;

/** The OpenSSH one-line form of an ed25519 public key: `ssh-ed25519 <base64 wire blob>`. */
export const sshPublicKey = (key: KeyObject): string => {
  const raw = Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');
  const lengthPrefixed = (b: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(b.length);
    return Buffer.concat([length, b]);
  };
  return `ssh-ed25519 ${Buffer.concat([lengthPrefixed(Buffer.from('ssh-ed25519')), lengthPrefixed(raw)]).toString('base64')}`;
};

/** OpenSSH's fingerprint of a public key (`SHA256:…`): what the events name a key by. */
export const sshFingerprint = (publicKeyLine: string): string =>
  `SHA256:${createHash('sha256').update(Buffer.from(publicKeyLine.split(' ')[1] ?? '', 'base64')).digest('base64').replace(/=+$/, '')}`;


/** A running VM and its control-plane channel (one per VM: the runs on it are bound to it, S1.3). */
type LiveVm = { vmId: string; name: string; owner: string; username: string; handle: RunningVm; channel: ChannelInfo; vnet?: string };

/** What starting management code on a VM gave: a process to wait for, or the VM's refusal of the platform's login. */
export type VmManagementStart = { vmId: string; vm: string; username: string; fingerprint: string } & (
  | { ok: true; pid: number; workDir: string; process: RunningCompute }
  | { ok: false; reason: string }
);

/** What the virtual-machine service uses of the platform (wired by createPlatform). */
export type VirtualMachineDeps = Pick<PlatformRuntime, 'bus' | 'clock' | 'ids' | 'secrets' | 'session' | 'store' | 'world'> & Pick<DataPlane, 'vaults'>;

/**
 * User-owned VMs and their attachment as unmanaged compute (S8.3, S6.2, S2.2).
 *
 * `createVm` starts the user's VM: a long-lived container (or process) whose only door is a
 * login agent accepting the keys in its authorized keys, and its admin password (given to it
 * as a salted hash) to add one. `attachCompute` uses the user's password exactly once: AML
 * generates its own key pair, has the VM authorize the public key with the password, and keeps
 * the private key in a separate key vault in the platform's subscription — never in the
 * workspace's vault. The password is kept nowhere. Runs then reach the VM with that key only.
 */
export class VirtualMachineService {
  private readonly vms = new Map<string, LiveVm>();
  private vaultRecorded = false;
  /** The platform's key vault of this session (S6.2). */
  readonly platformVault: string;

  constructor(
    private readonly p: VirtualMachineDeps,
    private readonly arm: ArmService,
    private readonly driver: () => Promise<ComputeDriver>,
    private readonly channels: () => Pick<ControlPlane, 'open' | 'reopen' | 'close'>,
    /** S3.1: the virtual networks VMs join. */
    private readonly vnets?: VnetService,
  ) {
    this.platformVault = `amlplatform${p.session.replace(/[^a-z0-9]/g, '').slice(-12)}`;
  }

  /** Each command once (runtime/command-bus.ts). The user's own VM is no workspace resource: authentication only. */
  private readonly commands = {
    createVm: declareCommand({ name: 'CreateVm', verb: 'createVm', authenticationOnly: true }),
    attachCompute: declareCommand({
      name: 'AttachCompute',
      verb: 'attachCompute',
      action: actions.attachCompute,
      target: (args: { workspace: string }) => this.arm.inWorkspace(args.workspace),
    }),
  };

  /** The user's own VM: authentication only (it is not a workspace resource, so no workspace RBAC). */
  async createVm(
    token: string | undefined,
    args: { name: string; username?: string; password?: string; vnet?: string; region?: string; subscription?: string },
  ): Promise<{ vmId: string; vm: string }> {
    // Known before anything can fail, so the invariants look for it in the log and the vaults.
    if (args.password !== undefined) this.p.secrets.add(args.password, 'VM password');
    return this.p.bus.execute(this.commands.createVm, token, args, async (ctx, { principal: who }) => {
      if (this.vms.has(args.name)) throw errors.conflict(`A VM named '${args.name}' already exists.`, { vm: args.name });
      const username = args.username ?? 'azureuser';
      const driver = await this.driver();
      const placed = this.vmPlacement(args);
      const joined = placed ? await this.vnets!.join({ ...placed, member: `VM '${args.name}'` }) : undefined;
      const channel = await this.channels().open('vm');
      const handle = await driver
        .startVm({
          session: this.p.session,
          name: args.name,
          username,
          ...(args.password !== undefined ? { passwordHash: hashPassword(args.password) } : {}),
          agentDir: AGENT_DIR,
          controlDir: channel.dir,
          socketName: channel.socketName,
          ...(joined ? { vnetHolder: joined.holder } : {}),
        })
        .catch(async (error: unknown) => {
          await this.channels().close(channel.id);
          throw isSimError(error) ? error : errors.vmStartFailed(args.name, error instanceof Error ? error.message : String(error));
        });
      const vmId = this.p.ids.next('vm');
      this.vms.set(args.name, { vmId, name: args.name, owner: who.principal, username, handle, channel, ...(placed ? { vnet: placed.vnet } : {}) });
      this.vnets?.record(ctx, joined);
      ctx.emit(STREAMS.vm(vmId), 'no-stream', [
        {
          type: 'VmCreated',
          data: {
            vmId,
            vm: args.name,
            owner: who.principal,
            username,
            passwordLogin: args.password !== undefined,
            host: handle.id,
            driver: driver.kind,
            ...(placed ? { vnet: placed.vnet, region: placed.region, subscription: placed.subscription } : {}),
          },
        },
        // What a resumed session reopens when it takes the VM back (`reattach`).
        { type: 'VmChannelOpened', data: { vmId, vm: args.name, channel: channel.id, kind: channel.kind, socket: channel.socketPath } },
      ]);
      return { vmId, vm: args.name };
    });
  }

  /**
   * S3.1: where a VM in a VNet is: the subscription and region it names, else the VNet's (a VM
   * that makes a new VNet names both). Undefined: the VM is in no VNet.
   * @throws SimError BadRequest when a new VNet's subscription or region is not named.
   */
  private vmPlacement(args: { vnet?: string; region?: string; subscription?: string }): { vnet: string; region: string; subscription: string } | undefined {
    if (args.vnet === undefined) return undefined;
    const known = this.p.world.computes.vnets[args.vnet];
    const region = args.region ?? known?.region;
    const subscription = args.subscription ?? known?.subscription;
    if (region === undefined || subscription === undefined) {
      throw errors.badRequest(`The VM makes the new virtual network '${args.vnet}': name its region and subscription (S3.1: a VNet is in one subscription and one region).`, { vnet: args.vnet });
    }
    return { vnet: args.vnet, region, subscription };
  }

  /** S2.2 "attach compute target", S6.2: the password authorizes the platform's own key, once. */
  async attachCompute(
    token: string | undefined,
    args: { workspace: string; name: string; type: string; vm: string; username: string; password: string },
  ): Promise<{ computeId: string }> {
    this.p.secrets.add(args.password, 'VM password');
    return this.p.bus.execute(this.commands.attachCompute, token, args, async (ctx, { ws }) => {
      if (args.type !== 'VirtualMachine') throw errors.badRequest(`Compute type '${args.type}' cannot be attached; VirtualMachine can.`, { type: args.type });
      const vm = this.vms.get(args.vm);
      if (!vm) throw errors.notFound('VM', args.vm, 'this session (create it with createVm)');
      if (this.p.world.computes.byKey[computeKey(ws.workspaceId, args.name)]) {
        throw errors.conflict(`Compute '${args.name}' already exists in workspace '${ws.workspace}'.`, { compute: args.name });
      }
      // S6.2: AML stores no key or password the user supplied; it generates its own key pair.
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      this.p.secrets.add(privatePem, 'platform SSH private key');
      // Events are JSON: a multi-line PEM would hide behind escaped newlines, its body line would not.
      for (const line of privatePem.split('\n').filter((l) => l && !l.startsWith('-----'))) this.p.secrets.add(line, 'platform SSH private key');
      const publicLine = sshPublicKey(publicKey);
      const fingerprint = sshFingerprint(publicLine);
      // The one use of the password: the VM checks it and authorizes the platform's public key.
      const answer = await callLoginAgent(vm.handle.loginSocket, 'POST', '/password-login', {
        username: args.username,
        password: args.password,
        publicKey: publicLine,
        comment: `azureml@${ws.workspace}/${args.name}`,
      });
      if (answer.status === 401) throw errors.vmLoginFailed(args.vm, args.username, refusalOf(answer));
      if (answer.status !== 200) throw errors.badRequest(`The VM '${args.vm}' answered ${answer.status} to the password login: ${refusalOf(answer)}`);
      // Only with the key authorized is anything stored or recorded (a refusal changes nothing).
      const vault = this.ensurePlatformVault(ctx);
      const secret = computeKeySecretName(ws.workspace, args.name);
      const stored = this.p.vaults.setSecret(PLATFORM_PRINCIPAL, vault, secret, privatePem);
      const computeId = this.p.ids.next('cmp');
      const ref = { workspaceId: ws.workspaceId, workspace: ws.workspace, computeId, compute: args.name };
      const onVm = { vmId: vm.vmId, vm: vm.name, username: args.username, fingerprint };
      ctx.emit(STREAMS.compute(computeId), 'no-stream', [
        { type: 'PlatformKeyPairGenerated', data: { ...ref, algorithm: 'ed25519', vault, secret, version: stored.version, fingerprint } },
        { type: 'VmKeyAuthorized', data: { ...ref, ...onVm } },
        { type: 'ComputeAttached', data: { ...ref, type: 'VirtualMachine', ...onVm, vault, secret, ...(vm.vnet !== undefined ? { vnet: vm.vnet } : {}) } },
      ]);
      return { computeId };
    });
  }

  /**
   * S8.3 unmanaged, S6.2: take the platform's key from the platform vault, log in to the VM
   * (challenge, signature) and start the management code there with the run's environment.
   * The VM's refusal of the key is an answer, not an error: the run records it.
   */
  async startManagement(compute: ComputeRecord, runId: string, env: Record<string, string>): Promise<VmManagementStart> {
    const attached = compute.attached;
    if (!attached) throw errors.badRequest(`Compute '${compute.compute}' is not an attached VM.`);
    const vm = this.vms.get(attached.vm);
    if (!vm || vm.vmId !== attached.vmId) throw errors.notFound('VM', attached.vm, 'this session (it is no longer running)');
    const privateKey = createPrivateKey(this.p.vaults.getSecret(PLATFORM_PRINCIPAL, attached.vault, attached.secret));
    const publicLine = sshPublicKey(createPublicKey(privateKey));
    const who = { vmId: vm.vmId, vm: vm.name, username: attached.username, fingerprint: sshFingerprint(publicLine) };
    const socket = vm.handle.loginSocket;
    const signed = this.signer(compute);
    const workDir = `${vm.handle.workRoot}/${runId}`;
    const answer = await callLoginAgent(socket, 'POST', '/exec', {
      ...(await signed()),
      command: 'management',
      env: { ...env, AZUREML_SERVICE_ENDPOINT: `unix://${vm.handle.controlSocket}`, AMLSIM_WORK_DIR: workDir },
    });
    if (answer.status === 401) return { ...who, ok: false, reason: refusalOf(answer) };
    if (answer.status !== 200) throw new Error(`the VM '${vm.name}' answered ${answer.status} to exec: ${refusalOf(answer)}`);
    const pid = Number(answer.body.pid);
    return { ...who, ok: true, pid, workDir, process: this.managementProcess(vm, pid, signed) };
  }

  /**
   * The management code a dead simulator started on a VM this session took back (`reattach`),
   * by the pid its ManagementCodeStarted recorded: the login agent kept it running when the dead
   * simulator's connection dropped, and keeps its exit, so waiting for it again gets the exit at
   * once if it came meanwhile. Undefined when the VM was not taken back.
   */
  attachManagement(compute: ComputeRecord, pid: number): RunningCompute | undefined {
    const vm = this.liveVmOf(compute);
    return vm ? this.managementProcess(vm, pid, this.signer(compute)) : undefined;
  }

  /**
   * Kill the management code started for `runId` on the VM that no ManagementCodeStarted
   * recorded (the dead simulator started it and died first): it holds the token a resumed
   * session replaced, and the start carried out again is the run's only one.
   */
  async removeUnreportedManagement(compute: ComputeRecord, runId: string): Promise<void> {
    const vm = this.liveVmOf(compute);
    if (!vm) return;
    const answer = await callLoginAgent(vm.handle.loginSocket, 'GET', `/runs/${encodeURIComponent(runId)}/exec`);
    const started = Array.isArray(answer.body.processes) ? (answer.body.processes as Array<{ pid: number; running: boolean }>) : [];
    const signed = this.signer(compute);
    for (const { pid } of started.filter((p) => p.running)) {
      await callLoginAgent(vm.handle.loginSocket, 'POST', `/exec/${pid}/kill`, await signed());
      await this.managementProcess(vm, pid, signed).wait();
    }
  }

  /** Is this VM of the session running in this process (created, or taken back)? */
  isLive(vmId: string): boolean {
    return [...this.vms.values()].some((vm) => vm.vmId === vmId);
  }

  /**
   * Take back this session's VMs after its simulator died (a resumed session, docs/architecture.md
   * "Crash recovery"), level-triggered: what the log says against what the driver has. A VM whose
   * container still runs with its login agent answering is the user's machine as it was: its
   * channel listens again at the same socket with the same id (the runs on it are bound to it),
   * and `VmReattached` is recorded. One that is gone is recorded `VmLost`; the runs on it are
   * then ended PlatformRestarted (RunManager.resume). A VM recorded lost is not looked for again.
   */
  async reattach(): Promise<{ reattached: string[]; lost: string[] }> {
    const created = new Map<string, EventDataMap['VmCreated']>();
    const channels = new Map<string, EventDataMap['VmChannelOpened']>();
    const gone = new Set<string>();
    let lastAtMs = 0;
    for (const e of this.p.store.readAll()) {
      if (e.meta.session !== this.p.session) continue;
      lastAtMs = Date.parse(e.meta.at);
      if (e.type === 'VmCreated') created.set(String(e.data.vmId), e.data as EventDataMap['VmCreated']);
      if (e.type === 'VmChannelOpened') channels.set(String(e.data.vmId), e.data as EventDataMap['VmChannelOpened']);
      if (e.type === 'VmLost') gone.add(String(e.data.vmId));
    }
    const out = { reattached: [] as string[], lost: [] as string[] };
    const downForMs = Math.max(0, this.p.clock.now() - lastAtMs);
    for (const [vmId, vm] of created) {
      if (gone.has(vmId) || this.vms.has(vm.vm)) continue;
      const opened = channels.get(vmId);
      const driver = await this.driver();
      const handle = opened ? await driver.attachVm({ session: this.p.session, name: vm.vm, host: vm.host, socketName: basename(opened.socket) }) : undefined;
      const ref = { vmId, vm: vm.vm, host: vm.host };
      if (!handle || !opened) {
        const reason = opened
          ? `PlatformRestarted: the VM's ${driver.kind === 'docker' ? 'container' : 'process'} ${vm.host} is gone, or its login agent does not answer`
          : "PlatformRestarted: the log does not name the VM's control-plane channel";
        await this.p.bus.run('ReattachVm', (ctx) => ctx.emitAsPlatform(STREAMS.vm(vmId), 'any', [{ type: 'VmLost', data: { ...ref, reason, downForMs } }]));
        out.lost.push(vm.vm);
        continue;
      }
      const channel = await this.channels().reopen(opened.channel, 'vm');
      this.vms.set(vm.vm, { vmId, name: vm.vm, owner: vm.owner, username: vm.username, handle, channel, ...(vm.vnet !== undefined ? { vnet: vm.vnet } : {}) });
      await this.p.bus.run('ReattachVm', (ctx) =>
        ctx.emitAsPlatform(STREAMS.vm(vmId), 'any', [{ type: 'VmReattached', data: { ...ref, channel: channel.id, socket: channel.socketPath, downForMs } }]),
      );
      out.reattached.push(vm.vm);
    }
    return out;
  }

  /** The running VM an attached compute is, if this session has it. */
  private liveVmOf(compute: ComputeRecord): LiveVm | undefined {
    const attached = compute.attached;
    const vm = attached ? this.vms.get(attached.vm) : undefined;
    return vm && vm.vmId === attached?.vmId ? vm : undefined;
  }

  /** Signs a fresh login challenge with the platform's key for this compute (taken from the platform vault). */
  private signer(compute: ComputeRecord): () => Promise<{ username: string; publicKey: string; nonce: string; signature: string }> {
    const attached = compute.attached!;
    const vm = this.liveVmOf(compute);
    if (!vm) throw errors.notFound('VM', attached.vm, 'this session (it is no longer running)');
    const privateKey = createPrivateKey(this.p.vaults.getSecret(PLATFORM_PRINCIPAL, attached.vault, attached.secret));
    const publicLine = sshPublicKey(createPublicKey(privateKey));
    return async () => {
      const challenge = await callLoginAgent(vm.handle.loginSocket, 'POST', '/challenge', {});
      const nonce = String(challenge.body.nonce ?? '');
      return { username: attached.username, publicKey: publicLine, nonce, signature: sign(null, Buffer.from(nonce), privateKey).toString('base64') };
    };
  }

  /** The management code with this pid on a VM, as a run's target: its exit asked of the login agent. */
  private managementProcess(vm: LiveVm, pid: number, signed: () => Promise<Record<string, string>>): RunningCompute {
    const socket = vm.handle.loginSocket;
    let exit: Promise<{ exitCode: number; oomKilled: boolean }> | undefined;
    return {
      id: `${vm.name}:${pid}`,
      // A VM that stops answering (stopped, gone) ends the run as lost: 255, like ssh.
      wait: () =>
        (exit ??= callLoginAgent(socket, 'GET', `/exec/${pid}`, undefined, 0).then(
          (r) => ({ exitCode: r.status === 200 ? Number(r.body.exitCode) : 255, oomKilled: false }),
          () => ({ exitCode: 255, oomKilled: false }),
        )),
      kill: async () => {
        await callLoginAgent(socket, 'POST', `/exec/${pid}/kill`, await signed());
      },
      // Freezing a VM's process is not something the login agent offers; the fault targets managed nodes.
      freeze: async () => {
        throw errors.badRequest(`freezeContainer applies to runs on AmlCompute nodes, not to attached VM '${vm.name}'.`);
      },
      remove: async () => {},
    };
  }

  /** The control-plane channel of the VM an attached compute is (a run on it is bound to it). */
  channelOf(compute: ComputeRecord): ChannelInfo {
    const attached = compute.attached;
    const vm = attached ? this.vms.get(attached.vm) : undefined;
    if (!attached || !vm || vm.vmId !== attached.vmId) throw errors.notFound('VM', attached?.vm ?? compute.compute, 'this session (it is no longer running)');
    return vm.channel;
  }

  /** Stop every VM of the session (session end). */
  async shutdown(): Promise<void> {
    const all = [...this.vms.values()];
    this.vms.clear();
    for (const vm of all) {
      await vm.handle.stop().catch(() => {});
      await this.channels().close(vm.channel.id);
    }
  }

  /** S6.2: the platform's key vault, in its own subscription; only the platform principal holds access. */
  private ensurePlatformVault(ctx: CommandContext): string {
    const vault = this.platformVault;
    const scope = platformVaultScope(vault);
    if (!this.p.vaults.exists(vault)) this.p.vaults.create(vault, scope);
    if (!this.vaultRecorded) {
      ctx.emitAsPlatform(STREAMS.platform(this.p.session), 'any', [{ type: 'PlatformKeyVaultProvisioned', data: { vault, scope, subscription: PLATFORM_SUBSCRIPTION } }]);
      this.vaultRecorded = true;
    }
    return vault;
  }
}
