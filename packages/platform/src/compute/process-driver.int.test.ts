import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeComputeDriverContract } from './compute-driver.contract';
import { createProcessDriver } from './process-driver';

describeComputeDriverContract('process', async () => createProcessDriver(mkdtempSync(join(tmpdir(), 'amlsim-process-driver-'))));
