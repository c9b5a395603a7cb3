import { describe, expect, it } from 'vitest';
import { renderDockerfile } from './build-context';
import { digestFiles, imageRelativePath } from './image-files';

describe('renderDockerfile', () => {
  it('copies the rootfs and quotes labels, env and cmd', () => {
    const text = renderDockerfile({
      from: 'scratch',
      labels: { 'dev.amlsim.managed': 'true', note: 'a "quoted" value' },
      env: { PATH: '/usr/bin:/bin' },
      user: 'aml',
      workdir: '/app',
      cmd: ['node', '/app/main.js'],
    });
    expect(text).toBe(
      [
        'FROM scratch',
        'COPY rootfs/ /',
        'LABEL "dev.amlsim.managed"="true" "note"="a \\"quoted\\" value"',
        'ENV PATH="/usr/bin:/bin"',
        'WORKDIR /app',
        'USER aml',
        'CMD ["node","/app/main.js"]',
        '',
      ].join('\n'),
    );
  });

  it('refuses an environment name that would change the meaning of ENV', () => {
    expect(() => renderDockerfile({ from: 'scratch', env: { 'A B': 'x' } })).toThrow(/not valid/);
  });
});

describe('image paths and digests', () => {
  it('normalises in-image paths below the root', () => {
    expect(imageRelativePath('/usr//bin/node')).toBe('usr/bin/node');
    expect(imageRelativePath('tmp/')).toBe('tmp');
    expect(() => imageRelativePath('/')).toThrow();
  });

  it('digests file lists independent of order, sensitive to content', async () => {
    const a = { path: '/a', content: '1' };
    const b = { path: '/b', linkTo: 'a' };
    expect(await digestFiles([a, b])).toBe(await digestFiles([b, a]));
    expect(await digestFiles([a, b])).not.toBe(await digestFiles([{ ...a, content: '2' }, b]));
  });
});
