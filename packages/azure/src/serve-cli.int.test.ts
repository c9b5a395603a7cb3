import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openEventStore } from '@amlsim/store';
import { callHttps, form } from './test-https';

const REPO = resolve(import.meta.dirname, '..', '..', '..');
const TENANT = join(REPO, 'scenarios', 'tenants', 'azure-sdk.yaml');

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterEach(() => {
  // A failed assertion must not leave a server running: each child is ended here, by its pid.
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('amlsim serve --tenant', () => {
  it('prints the ARM endpoint, the authority, the tenant, the CA and where state is kept; serves an LRO workspace creation into the data dir log; exits 130 on SIGINT', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amlsim-serve-azure-'));
    dirs.push(dir);
    const child = spawn(process.execPath, [join(REPO, 'packages', 'cli', 'bin', 'amlsim.js'), 'serve', '--port', '0', '--arm-port', '0', '--tenant', TENANT, '--data-dir', dir, '--driver', 'process'], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const exited = new Promise<number | null>((done) => child.on('exit', done));
    await new Promise<void>((done, fail) => {
      child.stdout.on('data', (d) => {
        stdout += String(d);
        if (/^store: .*$/m.test(stdout)) done();
      });
      void exited.then((code) => fail(new Error(`amlsim serve exited ${code} before its banner: ${stdout}${stderr}`)));
    });
    const line = (label: string) => new RegExp(`^${label}: (.+)$`, 'm').exec(stdout)?.[1];
    const arm = line('ARM endpoint')!;
    expect(arm).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(line('Azure AD authority')).toBe(arm);
    const tenant = line('tenant')!;
    expect(tenant).toMatch(/^[0-9a-f-]{36}$/);
    const caPath = line('CA certificate')!;
    expect(caPath).toBe(join(dir, 'tls', 'ca.crt'));
    expect(line('data dir')).toBe(dir);
    expect(line('store')).toContain(join(dir, 'events.sqlite'));
    expect(stdout).toContain('NODE_EXTRA_CA_CERTS=');
    expect(stdout).toContain('REQUESTS_CA_BUNDLE=');
    const ca = readFileSync(caPath, 'utf8');

    // The password grant under the tenant's MFA rule is refused as Azure AD refuses it.
    const tokenUrl = `${arm}/${tenant}/oauth2/v2.0/token`;
    const scope = 'https://management.azure.com/.default';
    const mfa = await callHttps(ca, tokenUrl, 'POST', ...form({ grant_type: 'password', username: 'alice', password: 'local-alice-password', client_id: 'cli', scope }));
    expect(mfa.status).toBe(400);
    expect(mfa.json).toMatchObject({ error: 'interaction_required', error_codes: [50076] });
    const meta = await callHttps(ca, `${arm}/${tenant}/v2.0/.well-known/openid-configuration`, 'GET');
    expect(meta.json.token_endpoint).toBe(tokenUrl);
    const got = await callHttps(ca, tokenUrl, 'POST', ...form({ grant_type: 'client_credentials', client_id: '0b8f5e3c-1d2a-4c6b-9e7f-5a4b3c2d1e0f', client_secret: 'local-ci-bot-secret', scope }));
    expect(got.status).toBe(200);
    const auth = { authorization: `Bearer ${got.json.access_token}`, 'content-type': 'application/json' };

    const ws = `${arm}/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws-cli?api-version=2022-10-01`;
    const put = await callHttps(ca, ws, 'PUT', JSON.stringify({ location: 'eastus' }), auth);
    expect(put.status).toBe(202);
    expect(put.headers['retry-after']).toBe('1');
    const operation = String(put.headers['azure-asyncoperation']);
    expect(operation).toContain('/operationsStatus/');
    let status = 'InProgress';
    for (let i = 0; i < 100 && status === 'InProgress'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await callHttps(ca, operation, 'GET', undefined, auth)).json.status;
    }
    expect(status).toBe('Succeeded');
    expect((await callHttps(ca, ws, 'GET', undefined, auth)).json.properties.provisioningState).toBe('Succeeded');
    // The dashboard's API shows the SDK's workspace creation as it shows a scenario's: the session, its events.
    const http = /^amlsim serve: (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)![1]!;
    const sessions = ((await (await fetch(`${http}/api/sessions`)).json()) as { sessions: Array<{ id: string; firstPosition: number }> }).sessions;
    const session = /session (s_\w+)\)/.exec(line('store')!)![1]!;
    const shown = sessions.find((x) => x.id === session)!;
    expect(shown).toBeDefined();
    const page = (await (await fetch(`${http}/api/events?from=${shown.firstPosition - 1}&limit=500`)).json()) as { events: Array<{ type: string; data: Record<string, unknown>; meta: { session: string } }> };
    const created = page.events
      .filter((e) => e.meta.session === session).filter((e) => e.data['workspace'] === 'ws-cli').map((e) => e.type);
    expect(created[0]).toBe('WorkspaceCreationRequested');
    expect(created).toContain('KeyVaultProvisioned');
    expect(created.at(-1)).toBe('WorkspaceCreated');

    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    // The facts are in the data dir's log, as a scenario's are; no secret is in the log or the output.
    const store = openEventStore('sqlite', dir);
    try {
      const log = [...store.readAll()];
      const types = log.map((e) => e.type);
      expect(types).toEqual(expect.arrayContaining(['TenantCreated', 'SignInFailed', 'SignInSucceeded', 'WorkspaceCreationRequested', 'WorkspaceCreated']));
      const text = JSON.stringify(log) + stdout + stderr;
      for (const secret of ['local-ci-bot-secret', 'local-reader-secret', 'local-alice-password', got.json.access_token]) expect(text).not.toContain(secret);
    } finally {
      store.close();
    }
  }, 120_000);

  it('reports a bad tenant file at file:line:col and exits 2 (invalid file) before anything listens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amlsim-serve-azure-'));
    dirs.push(dir);
    const file = join(dir, 'tenant.yaml');
    writeFileSync(file, 'tenant:\n  principals:\n    bob: { kind: user, clientSecret: shhh-secret-1 }\n');
    const child = spawn(process.execPath, [join(REPO, 'packages', 'cli', 'bin', 'amlsim.js'), 'serve', '--port', '0', '--tenant', file, '--data-dir', dir], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}:3:`);
    expect(stderr).toContain('only a servicePrincipal has a client secret');
  }, 60_000);
});
