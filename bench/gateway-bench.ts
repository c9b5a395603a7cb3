import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLocalCa } from '../packages/platform/src/crypto/local-ca';
import { benchPlatform } from './bench-platform';

const SCENARIOS = join(import.meta.dirname, '..', 'scenarios');
const progress = (msg: string) => process.stderr.write(`  [bench] ${msg}\n`);
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

export type GatewayBench = Array<{ concurrency: number; gateway: { p50: number; p99: number }; direct: { p50: number; p99: number }; ratioP50: number }>;

/**
 * Scoring latency (S8.5, S5.1): the same request to the same replica, through the platform's
 * HTTPS scoring gateway (auth check, App Insights record, forwarding over the unix socket)
 * against straight to the replica's unix socket, in the same run, at 1 and 16 concurrent clients.
 */
export async function benchGateway(requestsPerClient = 200): Promise<GatewayBench> {
  const { platform, token, dataDir, dispose } = await benchPlatform('amlsim-bench-gw-');
  try {
    const model = await platform.models.registerModel(token, { workspace: 'ws1', name: 'sentiment', path: join(SCENARIOS, 'models', 'sentiment.json') });
    const image = await platform.images.createImage(token, { workspace: 'ws1', name: 'bench-img', models: [model.modelId], scoringScript: join(SCENARIOS, 'scoring', 'score.js') });
    const svc = await platform.webservices.deploy(token, { workspace: 'ws1', name: 'bench-svc', imageId: image.imageId, target: 'ACI' });
    const url = new URL(svc.scoringUri!);
    const socketPath = join(tmpdir(), `amlsim-${platform.session}-${platform.world.webservices['bench-svc']!.serviceId}-0`, 'replica.sock');
    const ca = ensureLocalCa(join(dataDir, 'tls')).caCertPem;
    const body = JSON.stringify({ features: [1, 0, 1] });

    const viaGateway = (agent: HttpsAgent) =>
      new Promise<void>((resolve, reject) => {
        const r = httpsRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', ca, agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`gateway answered ${res.statusCode}`))));
        });
        r.on('error', reject);
        r.end(body);
      });
    const direct = (agent: HttpAgent) =>
      new Promise<void>((resolve, reject) => {
        const r = httpRequest({ socketPath, path: '/score', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`replica answered ${res.statusCode}`))));
        });
        r.on('error', reject);
        r.end(body);
      });

    const measure = async (concurrency: number, call: () => Promise<void>): Promise<number[]> => {
      const times: number[] = [];
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let i = 0; i < requestsPerClient; i++) {
            const t = performance.now();
            await call();
            times.push(performance.now() - t);
          }
        }),
      );
      return times;
    };

    const results: GatewayBench = [];
    for (const concurrency of [1, 16]) {
      const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: concurrency, ca });
      const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: concurrency });
      await measure(concurrency, () => viaGateway(httpsAgent)); // warm up both paths
      await measure(concurrency, () => direct(httpAgent));
      const g = await measure(concurrency, () => viaGateway(httpsAgent));
      const d = await measure(concurrency, () => direct(httpAgent));
      httpsAgent.destroy();
      httpAgent.destroy();
      const gateway = { p50: percentile(g, 50), p99: percentile(g, 99) };
      const straight = { p50: percentile(d, 50), p99: percentile(d, 99) };
      progress(`${concurrency} client(s): gateway p50 ${gateway.p50.toFixed(2)} ms, direct p50 ${straight.p50.toFixed(2)} ms`);
      results.push({ concurrency, gateway, direct: straight, ratioP50: gateway.p50 / straight.p50 });
    }
    return results;
  } finally {
    await dispose();
  }
}
