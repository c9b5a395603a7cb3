// The benchmark's HTTP client, in a worker thread of its own: a real client does not share
// the gateway's event loop, and the direct and gateway paths are timed by the same client.
// Messages in: { target, concurrency, requestsPerClient, body }; out: the latencies in ms.
import http from 'node:http';
import https from 'node:https';
import { parentPort } from 'node:worker_threads';

const agents = new Map();
const agentFor = (target, concurrency) => {
  const key = `${target.name}/${concurrency}`;
  if (!agents.has(key)) {
    const options = { keepAlive: true, maxSockets: concurrency };
    agents.set(key, target.ca ? new https.Agent({ ...options, ca: target.ca }) : new http.Agent(options));
  }
  return agents.get(key);
};

const call = (target, agent, body) =>
  new Promise((resolve, reject) => {
    const where = target.socketPath ? { socketPath: target.socketPath } : { host: target.host, port: target.port };
    const request = (target.ca ? https : http).request(
      { ...where, path: target.path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${target.name} answered ${res.statusCode}`))));
      },
    );
    request.on('error', reject);
    request.end(body);
  });

parentPort.on('message', async ({ target, concurrency, requestsPerClient, body }) => {
  try {
    const agent = agentFor(target, concurrency);
    const times = [];
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = 0; i < requestsPerClient; i++) {
          const started = performance.now();
          await call(target, agent, body);
          times.push(performance.now() - started);
        }
      }),
    );
    parentPort.postMessage({ times });
  } catch (error) {
    parentPort.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
});
