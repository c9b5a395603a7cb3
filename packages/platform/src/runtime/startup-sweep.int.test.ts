import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectDocker, isProcessAlive, type DockerEngine } from '@amlsim/docker';
import { createMemoryEventStore } from '@amlsim/store';
import { createPlatform } from '../platform';

// Issue 9: a second simulator in another PID namespace sharing the Docker engine killed the
// first one's running container, because its pid looked dead from here. Real Docker, a real
// `unshare --pid --fork --mount-proc` (util-linux).

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'amlsim-sweep-test-'));
const tenant = { mfa: 'optional' as const, principals: { alice: { kind: 'user' as const } }, subscriptions: {} };
const owners: ChildProcess[] = [];
const sessions: string[] = [];
let engine: DockerEngine | undefined;

afterAll(async () => {
  for (const o of owners) o.kill('SIGKILL');
  if (engine) {
    for (const s of sessions) await engine.sweep({ session: s });
    await engine.close();
  }
  rmSync(work, { recursive: true, force: true });
});

/**
 * The TTL the later simulators judge by. These sweeps look at the real temp dir, where other
 * tests' sessions renew every LEASE_RENEW_MS (2 s): a TTL near that would take them for dead.
 */
const TTL_MS = 6_000;

const unshareWorks = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;

/**
 * A simulator in its own PID namespace: a platform (renewing its lease every 100 ms) and a
 * running container of its session, as a run's. It prints its session and container, then lives on.
 */
async function startOwnerInOtherNamespace(): Promise<{ owner: ChildProcess; session: string; container: string; pidInside: number; target: number }> {
  const script = join(work, 'owner.mts');
  writeFileSync(
    script,
    [
      `import { createPlatform } from ${JSON.stringify(join(import.meta.dirname, '..', 'platform.ts'))};`,
      // Absolute paths: the script lives in a temp dir, outside the workspace's packages.
      `import { createMemoryEventStore } from ${JSON.stringify(join(ROOT, 'packages', 'store', 'src', 'index.ts'))};`,
      `import { connectDocker, containerLabels } from ${JSON.stringify(join(ROOT, 'packages', 'docker', 'src', 'index.ts'))};`,
      `const p = await createPlatform({ store: createMemoryEventStore(), dataDir: ${JSON.stringify(join(work, 'owner-data'))}, tenant: ${JSON.stringify(tenant)}, lease: { renewMs: 100 } });`,
      `const engine = await connectDocker();`,
      `const base = await engine.ensureNodeBaseImage();`,
      `const c = await engine.runContainer({ image: base.tag, cmd: ['sleep', '120'], labels: containerLabels(p.session, { role: 'node', run: 'run_1' }), memoryBytes: 64 * 2 ** 20, nanoCpus: 500_000_000 });`,
      `process.stdout.write(JSON.stringify({ session: p.session, container: c.id, pid: process.pid }) + '\\n');`,
      `setInterval(() => {}, 1000);`,
    ].join('\n'),
  );
  // The simulator gets a pid inside its namespace that no process has out here (pids there
  // are handed out in order: sh is 1, each `true` one more), as a CI job's would: the old
  // sweep took exactly that for a dead owner. --kill-child: killing unshare kills sh, the
  // namespace's init, and so everything in it.
  const target = deadHerePid();
  const owner = spawn(
    'unshare',
    ['--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL', 'sh', '-c', `i=2; while [ $i -lt ${target} ]; do /bin/true; i=$((i+1)); done; "$0" --import tsx "$1"`, process.execPath, script],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  owners.push(owner);
  let out = '';
  const line = await new Promise<string>((resolve, reject) => {
    owner.stdout!.on('data', (c: Buffer) => {
      out += String(c);
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    owner.once('exit', (code) => reject(new Error(`the owner exited (${String(code)}) before starting its container`)));
  });
  const { session, container, pid } = JSON.parse(line) as { session: string; container: string; pid: number };
  sessions.push(session);
  return { owner, session, container, pidInside: pid, target };
}

/** A pid no process has here now, from 100 on. */
const deadHerePid = (): number => {
  for (let pid = 100; ; pid++) if (!existsSync(`/proc/${pid}`)) return pid;
};

const running = async (id: string): Promise<boolean | undefined> => {
  const c = (await engine!.listSessionObjects(sessions.at(-1)!)).containers;
  return c.includes(id.slice(0, 12)) ? true : undefined;
};

describe.skipIf(!unshareWorks)('start-up sweep across PID namespaces', () => {
  it("a second simulator outside the namespace never removes a live simulator's container; once the owner is killed and its lease stale, it does, and records it", async () => {
    engine = await connectDocker();
    const { owner, session, container, pidInside, target } = await startOwnerInOtherNamespace();
    // Its pid (in its labels too) names no process out here: the old check judged it dead.
    expect(pidInside).toBe(target);
    expect(isProcessAlive(pidInside)).toBe(false);
    expect(await running(container)).toBe(true);

    // Longer than the TTL the second simulator uses: only a renewed lease is still fresh now.
    await new Promise((r) => setTimeout(r, TTL_MS + 500));
    const store2 = createMemoryEventStore();
    const second = await createPlatform({ store: store2, dataDir: join(work, 'second'), tenant, lease: { ttlMs: TTL_MS } });
    try {
      expect(await running(container)).toBe(true);
      expect([...store2.readAll()].filter((e) => e.type === 'OrphansSwept' && (e.data as { session: string }).session === session)).toEqual([]);
    } finally {
      await second.close();
    }

    owner.kill('SIGKILL');
    await once(owner, 'exit');
    expect(await running(container)).toBe(true); // a killed simulator's container runs on until swept
    await new Promise((r) => setTimeout(r, TTL_MS + 500)); // its lease, no longer renewed, goes stale
    const store3 = createMemoryEventStore();
    const third = await createPlatform({ store: store3, dataDir: join(work, 'third'), tenant, lease: { ttlMs: TTL_MS } });
    try {
      expect(await running(container)).toBeUndefined();
      const facts = [...store3.readAll()].filter((e) => e.type === 'OrphansSwept' && (e.data as { session: string }).session === session);
      expect(facts.map((e) => e.data)).toEqual([expect.objectContaining({ session, why: 'leaseExpired', containers: 1 })]);
      expect(facts[0]!.stream).toBe(`session-${third.session}`);
      expect(existsSync(join(tmpdir(), `amlsim-${session}.lease`))).toBe(false);
    } finally {
      await third.close();
    }
  }, 120_000);
});

describe('start-up sweep without a Docker engine', () => {
  it('a platform still starts, and sweeps what needs no engine', async () => {
    const p = await createPlatform({ store: createMemoryEventStore(), dataDir: join(work, 'no-docker'), tenant, dockerSocket: join(work, 'no-engine.sock') });
    expect(existsSync(join(tmpdir(), `amlsim-${p.session}.lease`))).toBe(true);
    await p.close();
    expect(existsSync(join(tmpdir(), `amlsim-${p.session}.lease`))).toBe(false); // a clean close gives the lease back
  });
});
