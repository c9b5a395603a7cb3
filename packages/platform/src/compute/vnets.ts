import { errors, nextVnetPort, STREAMS, VNET_FIRST_PORT, vnetNameProblem, type EventDataMap } from '@amlsim/core';
import type { CommandContext } from '../runtime/command-bus';
import type { PlatformRuntime } from '../platform-context';
import type { ComputeDriver } from './compute-driver';

/** What a member asks to join: the VNet, and where the member is (S3.1: a VNet joins only compute of its subscription and region). */
export type VnetJoin = {
  vnet: string;
  subscription: string;
  region: string;
  /** The member, for messages and VnetCreated: `compute 'aks1' of workspace 'ws1'`, `VM 'dsvm'`. */
  member: string;
  workspace?: { workspaceId: string; workspace: string };
};

/** A VNet a member may join: its holder, and the VnetCreated to record with the member's own facts when it is new. */
export type JoinedVnet = { vnet: string; holder: string; created?: EventDataMap['VnetCreated'] };

/** What the VNet service uses of the platform (wired by createPlatform). */
export type VnetDeps = Pick<PlatformRuntime, 'session' | 'world'>;

/**
 * Virtual networks (S3.1). A VNet is one network namespace holding only loopback, owned by a
 * holder container (packages/docker/src/vnet.ts); compute that names the VNet joins it, and its
 * members reach each other on 127.0.0.1 — nothing else, and nobody outside it. A VNet is made by
 * its first member, in that member's subscription and region, and joins only compute of both.
 *
 * Nothing is recorded here: {@link join} starts the holder of a new VNet and hands back the
 * `VnetCreated` its caller records with the member's own facts, once the member stands (a
 * refused command records nothing; a holder no fact names is reused by the next join, and goes
 * with the session's sweep).
 */
export class VnetService {
  /** Holders this process started or checked, by VNet name (a promise: two joins share one start). */
  private readonly holders = new Map<string, Promise<string>>();
  /** Loopback ports handed out by this process and not yet recorded on a ReplicaStarted. */
  private readonly ports = new Map<string, number[]>();

  constructor(
    private readonly p: VnetDeps,
    private readonly driver: () => Promise<ComputeDriver>,
  ) {}

  /**
   * Checks the name and, for a VNet that exists, the member's subscription and region; starts
   * the holder of a new one. Call it after the member's own checks and before it starts.
   * @throws SimError InvalidResourceName, InvalidVirtualNetwork, BadRequest (a driver without
   *   network namespaces), VnetUnavailable (its holder is gone).
   */
  async join(req: VnetJoin): Promise<JoinedVnet> {
    const problem = vnetNameProblem(req.vnet);
    if (problem) throw errors.invalidVnetName(req.vnet, problem);
    const known = this.p.world.computes.vnets[req.vnet];
    if (known) {
      if (known.subscription !== req.subscription) throw errors.vnetMismatch(req.vnet, req.member, 'subscription', known.subscription, req.subscription);
      if (known.region !== req.region) throw errors.vnetMismatch(req.vnet, req.member, 'region', known.region, req.region);
      return { vnet: req.vnet, holder: await this.holderOf(req.vnet) };
    }
    const driver = await this.driver();
    if (!driver.startVnetHolder) {
      throw errors.badRequest(`A virtual network (S3.1) needs network namespaces, which the ${driver.kind} driver does not have: run with --driver docker.`, { vnet: req.vnet });
    }
    const start = driver.startVnetHolder.bind(driver);
    let pending = this.holders.get(req.vnet);
    if (!pending) {
      pending = start({ session: this.p.session, vnet: req.vnet }).then((h) => h.id.slice(0, 12));
      this.holders.set(req.vnet, pending);
      pending.catch(() => this.holders.delete(req.vnet));
    }
    const holder = await pending;
    return {
      vnet: req.vnet,
      holder,
      created: {
        vnet: req.vnet,
        subscription: req.subscription,
        region: req.region,
        holder,
        driver: driver.kind,
        member: req.member,
        ...(req.workspace ? { workspaceId: req.workspace.workspaceId, workspace: req.workspace.workspace } : {}),
      },
    };
  }

  /** Records a new VNet (its VnetCreated) in the member's command, just before the member's own facts. */
  record(ctx: CommandContext, joined: JoinedVnet | undefined): void {
    if (joined?.created) ctx.emit(STREAMS.vnet(this.p.session, joined.vnet), 'no-stream', [{ type: 'VnetCreated', data: joined.created }]);
  }

  /**
   * The holder of a recorded VNet for a member to join. In a resumed session the holder the log
   * names is checked once: still running, it is taken back; gone, joining fails saying so.
   * @throws SimError ResourceNotFound (no such VNet), VnetUnavailable (its holder is gone).
   */
  holderOf(vnet: string): Promise<string> {
    const known = this.p.world.computes.vnets[vnet];
    if (!known) return Promise.reject(errors.notFound('virtual network', vnet));
    let checked = this.holders.get(vnet);
    if (!checked) {
      checked = (async () => {
        const driver = await this.driver();
        const running = (await driver.vnetHolderRunning?.({ session: this.p.session, vnet, holder: known.holder })) ?? false;
        if (!running) throw errors.vnetUnavailable(vnet, `its holder container ${known.holder} is no longer running (the simulator that made it stopped, and its namespace went with it)`);
        return known.holder;
      })();
      this.holders.set(vnet, checked);
      // A failed check is not kept: each member that tries is told.
      checked.catch(() => this.holders.delete(vnet));
    }
    return checked;
  }

  /**
   * S3.1: the loopback port the next replica in the VNet listens on. Members of one VNet share
   * one namespace, so its replicas take distinct ports: from 5001 up, never one the log or this
   * process already gave.
   */
  nextPort(vnet: string): number {
    const recorded = this.p.world.computes.vnets[vnet];
    const given = this.ports.get(vnet) ?? [];
    const port = Math.max(recorded ? nextVnetPort(recorded) : VNET_FIRST_PORT, ...given.map((p) => p + 1));
    this.ports.set(vnet, [...given, port]);
    return port;
  }
}
