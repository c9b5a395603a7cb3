import { request } from 'node:http';

/** What a VM's login agent answered (packages/agent/vm/login-agent.mjs). */
export type LoginAgentAnswer = { status: number; body: Record<string, unknown> };

/**
 * One call to a VM's login agent: HTTP/1.1 over its unix socket, the platform's only way into
 * the VM. Resolves with any answer (401 included); rejects only when the VM does not answer.
 * `timeoutMs: 0` waits as long as it takes (the long poll for an exit code).
 */
export const callLoginAgent = (
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 15_000,
): Promise<LoginAgentAnswer> =>
  new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request({
      socketPath,
      method,
      path,
      agent: false,
      headers: payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {},
    });
    const timer = timeoutMs > 0 ? setTimeout(() => req.destroy(new Error(`${method} ${path}: no answer from the VM within ${timeoutMs} ms`)), timeoutMs) : undefined;
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (error) => req.destroy(error));
      res.on('end', () => {
        clearTimeout(timer);
        let parsed: unknown = {};
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        } catch {
          parsed = {};
        }
        resolve({ status: res.statusCode ?? 0, body: parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {} });
      });
    });
    req.end(payload);
  });

/** The refusal message of an answer (`{ error: { message } }`), or its status. */
export const refusalOf = (answer: LoginAgentAnswer): string => {
  const error = answer.body.error as { message?: unknown } | undefined;
  return typeof error?.message === 'string' ? error.message : `HTTP ${answer.status}`;
};

/**
 * Wait until a freshly started VM's login agent answers `GET /health`. `failed` says why the VM
 * can no longer come up (its container or process ended), to stop waiting early.
 */
export const waitForLoginAgent = async (socketPath: string, options: { timeoutMs?: number; failed?: () => Promise<string | undefined> } = {}): Promise<void> => {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const answer = await callLoginAgent(socketPath, 'GET', '/health', undefined, 2_000);
      if (answer.status === 200) return;
      last = refusalOf(answer);
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    const why = await options.failed?.();
    if (why) throw new Error(`the VM's login agent did not start: ${why}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the VM's login agent did not answer on ${socketPath} in time (${last})`);
};
