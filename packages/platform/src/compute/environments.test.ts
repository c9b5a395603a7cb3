import { describe, expect, it } from 'vitest';
import { checkDependencies, dependencySpecProblem, environmentDigest, packageOfSpec } from './environments';

describe('environment dependency specs (S8.3 step 1, S8.5)', () => {
  it('takes registry packages by name, version, range or tag', () => {
    for (const spec of ['ms', 'ms@2.1.3', 'is-number@^7.0.0', 'left-pad@~1.3', '@types/node@20.1.0', 'lodash@latest', 'ms@>=2 <3']) {
      expect(dependencySpecProblem(spec), spec).toBeUndefined();
    }
  });

  it('refuses a pip requirement, naming the npm spelling', () => {
    expect(dependencySpecProblem('numpy==1.26')).toMatch(/pip requirement.*'numpy@1.26'/);
    expect(dependencySpecProblem('scikit-learn>=1.0')).toMatch(/pip requirement.*'scikit-learn@1.0'/);
    expect(() => checkDependencies(['ms@2.1.3', 'Flask==2.0'])).toThrow(expect.objectContaining({ code: 'BadRequest', message: expect.stringContaining("'Flask==2.0'") }));
  });

  it('refuses specs that would install from anywhere but the registry, or are not names', () => {
    for (const spec of ['git+https://github.com/a/b.git', 'https://example.com/x.tgz', 'file:../x', '../x', 'npm:ms@2', 'a/b', '-g', '', 'My-Package']) {
      expect(dependencySpecProblem(spec), spec).toBeDefined();
    }
  });

  it('keys the cache by the list, whatever its order or repeats', () => {
    expect(environmentDigest(['ms@2.1.3', 'is-number@7.0.0'])).toBe(environmentDigest(['is-number@7.0.0', 'ms@2.1.3', 'ms@2.1.3']));
    expect(environmentDigest(['ms@2.1.3'])).not.toBe(environmentDigest(['ms@2.1.2']));
  });

  it('names the package of a spec', () => {
    expect(packageOfSpec('ms@2.1.3')).toBe('ms');
    expect(packageOfSpec('@types/node@20')).toBe('@types/node');
  });
});
