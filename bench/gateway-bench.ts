import { writeFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ensureLocalCa } from '../packages/platform/src/inference/local-ca';
import { replicaDir } from '../packages/platform/src/inference/webservices';
import { benchPlatform } from './bench-platform';

const SCENARIOS = join(import.meta.dirname, '..', 'scenarios');
const progress = (msg: string) => process.stderr.write(`  [bench] ${msg}\n`);
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/** The p50 ratio the gateway may add for a model of realistic cost (issue 4 §5). */
export const GATEWAY_P50_TARGET = 1.3;
const CONCURRENCY = [1, 16] as const;
/** Gateway and direct calls alternate in rounds, so drift (JIT, caches, the host) hits both alike. */
const ROUNDS = 6;

type Workload = {
  name: string;
  description: string;
  scoringScript: string;
  /** Writes the model file into `dir` and returns its path. */
  model(dir: string): string;
  body: string;
  /** Requests per client per round, at 1 and at 16 clients. */
  perRound: Record<(typeof CONCURRENCY)[number], number>;
  /** Whether the latency target applies (see README "Benchmarks"). */
  targeted: boolean;
};

/** A seeded generator, so every run scores the same model and inputs. */
const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const WORKLOADS: Workload[] = [
  {
    name: 'digits MLP',
    description: 'a 784-1024-10 perceptron classifying a batch of 8 images (31 KB request)',
    scoringScript: join(import.meta.dirname, 'scoring', 'mlp.js'),
    model: (dir) => {
      const random = mulberry32(42);
      const layer = (inputs: number, outputs: number) => ({
        inputs,
        outputs,
        weights: Array.from({ length: inputs * outputs }, () => Math.round((random() - 0.5) * 2000) / 10000),
        bias: Array.from({ length: outputs }, () => 0),
      });
      const file = join(dir, 'mlp.json');
      writeFileSync(file, JSON.stringify({ layers: [layer(784, 1024), layer(1024, 10)] }));
      return file;
    },
    body: (() => {
      const random = mulberry32(7);
      return JSON.stringify({ instances: Array.from({ length: 8 }, () => Array.from({ length: 784 }, () => Math.round(random() * 100) / 100)) });
    })(),
    perRound: { 1: 50, 16: 6 },
    targeted: true,
  },
  {
    name: 'sample script',
    description: "scenarios/scoring/score.js: 3 weights, no real work",
    scoringScript: join(SCENARIOS, 'scoring', 'score.js'),
    model: () => join(SCENARIOS, 'models', 'sentiment.json'),
    body: JSON.stringify({ features: [1, 0, 1] }),
    perRound: { 1: 150, 16: 15 },
    targeted: false,
  },
];

export type GatewayBenchRow = {
  workload: string;
  description: string;
  concurrency: number;
  gateway: { p50: number; p99: number };
  direct: { p50: number; p99: number };
  /** The smallest possible extra hop: a plain-HTTP Node proxy piping to the replica (no TLS, auth or record). */
  floor: { p50: number; p99: number };
  ratioP50: number;
  /** Set when the target applies to this workload. */
  target?: number;
};

type Target = { name: string; socketPath?: string; host?: string; port?: number; path: string; ca?: string };

/**
 * The floor of any gateway written in Node on this machine: a proxy that pipes each request to
 * the replica's socket and the answer back — no TLS, no auth, no record, no retry.
 */
const floorProxy = async (socketPath: string): Promise<{ server: Server; agent: Agent; port: number }> => {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const server = createServer((req, res) => {
    const upstream = request({ socketPath, agent, path: '/score', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': req.headers['content-length'] ?? '0' } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { 'content-type': 'application/json', 'content-length': answer.headers['content-length'] ?? '0' });
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, agent, port: (server.address() as AddressInfo).port };
};

/** Runs requests from the client worker (bench/scoring-client.mjs) and returns their latencies. */
const clientWorker = () => {
  const worker = new Worker(join(import.meta.dirname, 'scoring-client.mjs'));
  const run = (target: Target, concurrency: number, requestsPerClient: number, body: string) =>
    new Promise<number[]>((resolve, reject) => {
      worker.once('message', (m: { times?: number[]; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m.times!)));
      worker.postMessage({ target, concurrency, requestsPerClient, body });
    });
  return { run, close: () => worker.terminate() };
};

/**
 * Scoring latency (S8.5, S5.1): the same request to the same replica, through the platform's
 * HTTPS scoring gateway (auth check, App Insights record, forwarding over the unix socket)
 * against straight to the replica's unix socket, in the same run, at 1 and 16 concurrent
 * clients. The client runs in a worker thread of its own (a real client is not inside the
 * gateway's process); the replica gets one CPU (`cpuCores: 1`), so that the ACI default of
 * 0.1 CPU — a CFS quota that stalls the container for most of each 100 ms — does not swamp
 * what is measured. Two workloads: a model of realistic cost, where the target applies, and the
 * sample script, whose run() does no work, which shows the gateway's cost per call in the raw.
 */
export async function benchGateway(): Promise<GatewayBenchRow[]> {
  const { platform, token, dataDir, dispose } = await benchPlatform('amlsim-bench-gw-', 'sqlite');
  const client = clientWorker();
  try {
    const ca = ensureLocalCa(join(dataDir, 'tls')).caCertPem;
    const rows: GatewayBenchRow[] = [];
    for (const [i, w] of WORKLOADS.entries()) {
      progress(`${w.name}: building and deploying its image`);
      const model = await platform.models.registerModel(token, { workspace: 'ws1', name: `bench-model-${i}`, path: w.model(dataDir) });
      const image = await platform.images.createImage(token, { workspace: 'ws1', name: `bench-img-${i}`, models: [model.modelId], scoringScript: w.scoringScript });
      const svc = await platform.webservices.deploy(token, { workspace: 'ws1', name: `bench-svc-${i}`, imageId: image.imageId, target: 'ACI', cpuCores: 1 });
      if (svc.status !== 'Healthy') throw new Error(`the benchmark service did not start: ${svc.reason}`);
      const url = new URL(svc.scoringUri!);
      const serviceId = platform.world.webservices[`bench-svc-${i}`]!.serviceId;
      const gateway: Target = { name: 'gateway', host: url.hostname, port: Number(url.port), path: url.pathname, ca };
      const socketPath = join(replicaDir(platform.session, serviceId, 0), 'replica.sock');
      const direct: Target = { name: 'direct', socketPath, path: '/score' };
      const proxy = await floorProxy(socketPath);
      const floor: Target = { name: 'floor', host: '127.0.0.1', port: proxy.port, path: '/score' };
      try {
        for (const concurrency of CONCURRENCY) {
          const n = w.perRound[concurrency];
          const paths = [gateway, direct, floor];
          const times: Record<string, number[]> = { gateway: [], direct: [], floor: [] };
          for (const t of paths) await client.run(t, concurrency, n, w.body); // warm up every path
          for (let round = 0; round < ROUNDS; round++) {
            // Alternate the order, so that no path always follows the same other one.
            for (const t of round % 2 === 0 ? paths : [...paths].reverse()) times[t.name]!.push(...(await client.run(t, concurrency, n, w.body)));
          }
          const stats = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99) });
          const [g, d, f] = [stats(times.gateway!), stats(times.direct!), stats(times.floor!)];
          progress(`${w.name}, ${concurrency} client(s): gateway p50 ${g.p50.toFixed(2)} ms, direct ${d.p50.toFixed(2)} ms, floor ${f.p50.toFixed(2)} ms (${times.gateway!.length} calls each)`);
          rows.push({ workload: w.name, description: w.description, concurrency, gateway: g, direct: d, floor: f, ratioP50: g.p50 / d.p50, ...(w.targeted ? { target: GATEWAY_P50_TARGET } : {}) });
        }
      } finally {
        proxy.server.close();
        proxy.server.closeAllConnections();
        proxy.agent.destroy();
      }
      await platform.webservices.delete(token, { service: `bench-svc-${i}` });
    }
    return rows;
  } finally {
    await client.close();
    await dispose();
  }
}
