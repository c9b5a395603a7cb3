import { describe, expect, it } from 'vitest';
import { vnetNameProblem } from './vnet-name';

describe('vnetNameProblem (S3.1)', () => {
  it.each(['vnet-a', 'ab', 'Prod.VNet_1', 'x_', 'a'.repeat(64)])('takes %s', (name) => expect(vnetNameProblem(name)).toBeUndefined());
  it.each([
    ['a', 'shorter than 2'],
    ['a'.repeat(65), 'at most 64'],
    ['-vnet', 'begin with a letter or digit'],
    ['vnet-', "end with a letter, digit or '_'"],
    ['vnet.', "end with a letter, digit or '_'"],
    ['my vnet', "holds ' '"],
    ['vnet/a', "holds '/'"],
  ])('refuses %s (%s)', (name, why) => expect(vnetNameProblem(name)).toContain(why));
});
