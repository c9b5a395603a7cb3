import { describe, expect, it } from 'vitest';
import { parseRegistryReference } from './registry';

describe('parseRegistryReference (loopback registries only)', () => {
  it('splits registry, repository and tag or digest', () => {
    expect(parseRegistryReference('127.0.0.1:5000/azureml/hello:v1')).toEqual({ registry: '127.0.0.1:5000', repository: 'azureml/hello', tagOrDigest: 'v1' });
    expect(parseRegistryReference('127.0.0.1:5000/hello')).toEqual({ registry: '127.0.0.1:5000', repository: 'hello', tagOrDigest: 'latest' });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseRegistryReference(`127.1.2.3:65535/a/b@${digest}`)).toEqual({ registry: '127.1.2.3:65535', repository: 'a/b', tagOrDigest: digest });
  });

  it.each([
    ['no registry', 'library/node:20'],
    ['a registry off this machine', '10.0.0.1:5000/x:1'],
    ['a hostname', 'example.com:443/x:1'],
    ['localhost by name', 'localhost:5000/x:1'],
    ['no port', '127.0.0.1/x:1'],
    ['a bad octet', '127.0.0.256:5000/x:1'],
    ['port 0', '127.0.0.1:0/x:1'],
    ['an upper-case repository', '127.0.0.1:5000/Hello:1'],
    ['a bad digest', '127.0.0.1:5000/x@sha256:zz'],
  ])('refuses %s', (_why, ref) => {
    expect(() => parseRegistryReference(ref)).toThrow(expect.objectContaining({ code: 'InvalidImageReference' }));
  });
});
