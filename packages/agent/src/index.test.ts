import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_DIR, AGENT_IMAGE_MANAGEMENT_SCRIPT, MANAGEMENT_SCRIPT, RUN_MODULE_DIR, agentFiles } from './index';

describe('agent file locations', () => {
  it('points at the management code and the run module', () => {
    expect(JSON.parse(readFileSync(path.join(AGENT_DIR, 'package.json'), 'utf8')).name).toBe('@amlsim/agent');
    expect(existsSync(MANAGEMENT_SCRIPT)).toBe(true);
    expect(JSON.parse(readFileSync(path.join(RUN_MODULE_DIR, 'package.json'), 'utf8')).name).toBe('@amlsim/run');
  });

  it('lists the files for an image under /amlsim/agent, keeping run/ next to management/', () => {
    const files = agentFiles();
    for (const file of files) {
      expect(file.path.startsWith('/amlsim/agent/')).toBe(true);
      expect(existsSync(file.hostPath)).toBe(true);
      // Same layout on the host and in the image.
      expect(path.relative(AGENT_DIR, file.hostPath)).toBe(file.path.slice('/amlsim/agent/'.length));
    }
    const paths = files.map((f) => f.path);
    expect(paths).toContain(AGENT_IMAGE_MANAGEMENT_SCRIPT);
    // The management code looks for the run module at ../run relative to itself.
    const runDir = path.posix.join(path.posix.dirname(AGENT_IMAGE_MANAGEMENT_SCRIPT), '..', 'run');
    for (const name of ['package.json', 'index.cjs', 'index.mjs']) expect(paths).toContain(`${runDir}/${name}`);
  });
});
