import { describe, expect, it } from 'vitest';
import { toJsonValue } from './json-value';

const reparsed = (value: unknown): unknown => JSON.parse(JSON.stringify(value) ?? 'null');

describe('toJsonValue', () => {
  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
    get norm(): number {
      return Math.hypot(this.x, this.y);
    }
  }
  const cases: Record<string, unknown> = {
    scalars: { s: 'a\u{1F600}\ud800', t: true, f: false, n: null, i: 42, x: 1.5e-300 },
    'odd numbers': { nan: NaN, inf: Infinity, ninf: -Infinity, negZero: -0, list: [NaN, -0] },
    'what JSON drops': { u: undefined, fn: () => 1, sym: Symbol('s'), list: [undefined, () => 1, Symbol('s')], [Symbol('k')]: 1 },
    'a Date and toJSON with its key': { at: new Date(0), custom: { toJSON: (key: string) => `key:${key}` }, list: [{ toJSON: (key: string) => key }] },
    'toJSON is called once, not on what it returns': { v: { toJSON: () => ({ toJSON: () => 'twice' }) } },
    'boxed primitives': { n: Object(1), s: Object('s'), b: Object(false) },
    'class instances, Map, Set, typed arrays': { p: new Point(3, 4), m: new Map([[1, 2]]), set: new Set([1]), bytes: new Uint8Array([7, 8]) },
    'holes and nesting': { list: [1, , 3], deep: { a: { b: { c: [[{}]] } } } }, // eslint-disable-line no-sparse-arrays
    'integer-like keys keep JSON order': { b: 1, 2: 'two', a: 2, 1: 'one' },
    'an own __proto__ key': JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}'),
  };

  for (const [name, value] of Object.entries(cases)) {
    it(`${name}: the copy is what JSON.stringify then JSON.parse give, and survives that round trip unchanged`, () => {
      const copy = toJsonValue(value);
      expect(copy).toStrictEqual(reparsed(value));
      expect(reparsed(copy)).toStrictEqual(copy);
      expect(JSON.stringify(copy)).toBe(JSON.stringify(value));
      expect(Object.keys(copy as object)).toEqual(Object.keys(reparsed(value) as object));
    });
  }

  it('an own __proto__ key stays data: the copy has the ordinary prototype', () => {
    const copy = toJsonValue(JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value).toEqual({ polluted: true });
  });

  it('reads each getter once, so a changing getter cannot make the stored text differ from the copy', () => {
    let reads = 0;
    const value = {
      get n() {
        return ++reads;
      },
    };
    expect(toJsonValue(value)).toEqual({ n: 1 });
    expect(reads).toBe(1);
  });

  it('refuses a cycle and a BigInt with a TypeError, as JSON.stringify does; a shared (acyclic) object is fine', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = { back: cyclic };
    expect(() => toJsonValue(cyclic)).toThrow(TypeError);
    expect(() => toJsonValue({ n: 1n })).toThrow(TypeError);
    const shared = { a: 1 };
    expect(toJsonValue({ x: shared, y: [shared, shared] })).toEqual({ x: { a: 1 }, y: [{ a: 1 }, { a: 1 }] });
  });

  it('does not share objects with its input: changing the input later leaves the copy as it was', () => {
    const input = { nested: { list: [1] } };
    const copy = toJsonValue(input) as typeof input;
    input.nested.list.push(2);
    expect(copy).toEqual({ nested: { list: [1] } });
  });
});
