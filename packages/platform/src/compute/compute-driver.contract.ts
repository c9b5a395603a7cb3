import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_DIR } from '@amlsim/agent';
import type { ComputeDriver, RunLaunch } from './compute-driver';

/**
 * One contract for every compute driver (docker, process): what the run manager relies on.
 * A stand-in management script proves the launch: it reaches the control-plane socket
 * with the env it was given, writes to the node's temporary disk, and exits with a code.
 */
const FAKE_MANAGEMENT = `
const { request } = require('node:http');
const { writeFileSync, mkdirSync, readFileSync } = require('node:fs');
const socketPath = process.env.AZUREML_SERVICE_ENDPOINT.replace('unix://', '');
mkdirSync(process.env.AMLSIM_WORK_DIR, { recursive: true });
writeFileSync(process.env.AMLSIM_WORK_DIR + '/proof.txt', 'written on the temp disk');
setTimeout(() => {
  const req = request({ socketPath, path: '/hello/' + process.env.AZUREML_RUN_ID, method: 'POST' }, (res) => {
    res.resume();
    res.on('end', () => process.exit(Number(process.env.EXIT_CODE ?? 0)));
  });
  // S4.2: with INPUT_DIR, what the input holds and whether it could be written.
  const input = process.env.INPUT_DIR;
  let writable = false;
  if (input) try { writeFileSync(input + '/x.txt', 'changed'); writable = true; } catch {}
  req.end(JSON.stringify({ token: process.env.AZUREML_RUN_TOKEN, ...(input ? { input: readFileSync(input + '/x.txt', 'utf8'), writable } : {}) }));
}, Number(process.env.SLEEP_MS ?? 0));
`;

export const describeComputeDriverContract = (name: string, create: () => Promise<ComputeDriver>): void => {
  describe(`compute driver contract: ${name}`, () => {
    const session = `s_contract${Math.random().toString(36).slice(2, 8)}`;
    let driver: ComputeDriver;
    let root: string;
    let server: Server;
    const received: Array<{ path: string; body: string }> = [];

    beforeAll(async () => {
      driver = await create();
      root = mkdtempSync(join(tmpdir(), 'amlsim-contract-'));
      chmodSync(root, 0o755);
      mkdirSync(join(root, 'agent', 'management'), { recursive: true, mode: 0o755 });
      writeFileSync(join(root, 'agent', 'management', 'management.cjs'), FAKE_MANAGEMENT, { mode: 0o644 });
      mkdirSync(join(root, 'control'), { mode: 0o777 });
      chmodSync(join(root, 'control'), 0o777);
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          received.push({ path: req.url ?? '', body });
          res.end('{}');
        });
      });
      await new Promise<void>((r) => server.listen(join(root, 'control', 'c.sock'), () => r()));
      chmodSync(join(root, 'control', 'c.sock'), 0o666);
    });

    afterAll(async () => {
      await driver.cleanup(session);
      expect(await driver.leftovers(session)).toEqual([]);
      await driver.close();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(root, { recursive: true, force: true });
    });

    const launch = async (runId: string, env: Record<string, string>, effectId?: string, mounts?: RunLaunch['mounts']) => {
      const { image } = await driver.prepareImage({ session, dependencies: [] });
      const disks = await driver.provisionNode({ session, workspace: 'ws1', compute: 'cpu', node: runId });
      const running = await driver.startRun({
        session,
        runId,
        ...(effectId ? { effectId } : {}),
        workspace: 'ws1',
        image,
        node: { name: runId, disks },
        agentDir: join(root, 'agent'),
        controlDir: join(root, 'control'),
        socketName: 'c.sock',
        env: { AZUREML_RUN_ID: runId, AZUREML_RUN_TOKEN: 'token-for-test', ...env },
        memoryBytes: 256 * 2 ** 20,
        nanoCpus: 500_000_000,
        ...(mounts ? { mounts } : {}),
      });
      return { running, disks };
    };

    it('prepares the same image for the same environment, reused the second time', async () => {
      // Real npm packages, pinned: the docker driver installs them (compute/environments.ts).
      const a = await driver.prepareImage({ session, dependencies: ['ms@2.1.3', 'is-number@7.0.0'] });
      const b = await driver.prepareImage({ session, dependencies: ['is-number@7.0.0', 'ms@2.1.3'] });
      expect(b.image).toBe(a.image);
      expect(b.reused).toBe(true);
    });

    it('runs the management code with its env; it reaches the control plane and the temp disk; its exit code comes back', async () => {
      const { running } = await launch('run-ok', { EXIT_CODE: '7' });
      expect(await running.wait()).toEqual({ exitCode: 7, oomKilled: false });
      await running.remove();
      expect(received).toContainEqual({ path: '/hello/run-ok', body: JSON.stringify({ token: 'token-for-test' }) });
    });

    it('a start carried out twice for one effect id starts one target: the second finds the first', async () => {
      const first = await launch('run-once', { SLEEP_MS: '60000' }, '42:0');
      const again = await launch('run-once', { SLEEP_MS: '60000' }, '42:0');
      expect(again.running.id).toBe(first.running.id);
      const other = await launch('run-twice', { SLEEP_MS: '60000' }, '43:0');
      expect(other.running.id).not.toBe(first.running.id);
      for (const r of [first.running, other.running]) {
        await r.kill();
        await r.wait();
        await r.remove();
      }
    });

    it('a target that outlives its simulator is found again by run and id, only while it is there (none on a driver whose targets die with it)', async () => {
      const { running } = await launch('run-outlives', { SLEEP_MS: '60000' });
      const found = await driver.attachRun({ session, runId: 'run-outlives', container: running.id });
      if (driver.kind === 'process') {
        expect(found).toBeUndefined();
      } else {
        expect(found?.id).toBe(running.id);
        expect(await driver.attachRun({ session, runId: 'run-outlives', container: 'not-this-one' })).toBeUndefined();
        expect(await driver.attachRun({ session: 'another-session', runId: 'run-outlives', container: running.id })).toBeUndefined();
        // What the found handle does acts on the same target.
        await found!.kill();
        expect((await found!.wait()).exitCode).not.toBe(0);
      }
      await running.kill();
      await running.wait();
      await running.remove();
      expect(await driver.attachRun({ session, runId: 'run-outlives', container: running.id })).toBeUndefined();
    });

    it("a run's targets are found by session and run alone, whatever their id (a start never reported); none on a driver whose targets die with it", async () => {
      const { running } = await launch('run-unreported', { SLEEP_MS: '60000' });
      const found = await driver.findRunTargets({ session, runId: 'run-unreported' });
      // An empty container id is no wildcard: attachRun finds only the container it names.
      expect(await driver.attachRun({ session, runId: 'run-unreported', container: '' })).toBeUndefined();
      if (driver.kind === 'process') {
        expect(found).toEqual([]);
      } else {
        expect(found.map((t) => t.id)).toEqual([running.id]);
        expect(await driver.findRunTargets({ session, runId: 'run-outlives' })).toEqual([]);
        expect(await driver.findRunTargets({ session: 'another-session', runId: 'run-unreported' })).toEqual([]);
        // What the found handle does acts on the same target.
        await found[0]!.kill();
        expect((await found[0]!.wait()).exitCode).not.toBe(0);
        await found[0]!.remove();
        expect(await driver.findRunTargets({ session, runId: 'run-unreported' })).toEqual([]);
      }
      await running.kill().catch(() => {});
      await running.remove().catch(() => {});
    });

    it('a VM that outlives its simulator is found again by name and host, only while it runs (none on a driver whose VMs die with it)', async () => {
      const vm = await driver.startVm({ session, name: 'vm-outlives', username: 'azureuser', agentDir: AGENT_DIR, controlDir: join(root, 'control'), socketName: 'c.sock' });
      try {
        const found = await driver.attachVm({ session, name: 'vm-outlives', host: vm.id, socketName: 'c.sock' });
        if (driver.kind === 'process') {
          expect(found).toBeUndefined();
        } else {
          expect(found).toMatchObject({ id: vm.id, loginSocket: vm.loginSocket, controlSocket: vm.controlSocket, workRoot: vm.workRoot });
          expect(await driver.attachVm({ session, name: 'vm-outlives', host: 'not-this-one', socketName: 'c.sock' })).toBeUndefined();
          expect(await driver.attachVm({ session: 'another-session', name: 'vm-outlives', host: vm.id, socketName: 'c.sock' })).toBeUndefined();
          expect(await driver.attachVm({ session, name: 'vm-outlives', host: '', socketName: 'c.sock' })).toBeUndefined();
        }
      } finally {
        await vm.stop();
      }
      expect(await driver.attachVm({ session, name: 'vm-outlives', host: vm.id, socketName: 'c.sock' })).toBeUndefined();
    });

    it("binds a run's inputs at the path it is given, a read-only one unwritable (S4.2; the process driver's target reads them at their host path)", async () => {
      const data = join(root, 'input-data');
      mkdirSync(data, { mode: 0o755 });
      writeFileSync(join(data, 'x.txt'), 'training data', { mode: 0o644 });
      const at = driver.kind === 'process' ? data : '/mnt/azureml/inputs/data';
      const { running } = await launch('run-input', { INPUT_DIR: at }, undefined, [{ hostPath: data, targetPath: at, readOnly: true }]);
      expect(await running.wait()).toEqual({ exitCode: 0, oomKilled: false });
      await running.remove();
      const body = JSON.parse(received.find((r) => r.path === '/hello/run-input')!.body) as { input: string; writable: boolean };
      // A container cannot write a read-only bind; the process driver's run is the simulator's user (file modes only).
      if (driver.kind === 'docker') expect(body).toEqual({ token: 'token-for-test', input: 'training data', writable: false });
      else expect(body.input).toMatch(/training data|changed/);
      if (driver.kind === 'process') {
        await expect(launch('run-input-moved', {}, undefined, [{ hostPath: data, targetPath: '/mnt/azureml/inputs/data', readOnly: true }])).rejects.toMatchObject({ code: 'BadRequest' });
      }
    });

    it('kill stops a running target', async () => {
      const { running } = await launch('run-killed', { SLEEP_MS: '60000' });
      await running.kill();
      const exit = await running.wait();
      expect(exit.exitCode).not.toBe(0);
      await running.remove();
      expect(received.some((r) => r.path === '/hello/run-killed')).toBe(false);
    });

    it('a node has an OS disk and a temporary disk until it is deprovisioned', async () => {
      const disks = await driver.provisionNode({ session, workspace: 'ws1', compute: 'cpu', node: 'node-x' });
      expect(await driver.diskExists(disks.osDisk)).toBe(true);
      expect(await driver.diskExists(disks.tempDisk)).toBe(true);
      await driver.deprovisionNode(disks);
      expect(await driver.diskExists(disks.osDisk)).toBe(false);
      expect(await driver.diskExists(disks.tempDisk)).toBe(false);
    });
  });
};
