import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { describeComputeDriverContract } from './compute-driver.contract';
import { createProcessDriver } from './process-driver';

const root = mkdtempSync(join(tmpdir(), 'amlsim-process-driver-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describeComputeDriverContract('process', async () => createProcessDriver(root));
