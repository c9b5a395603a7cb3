/**
 * A copy of `value` made only of what JSON can hold — plain objects, arrays, strings, finite
 * numbers, booleans and null — following JSON.stringify's rules: `toJSON` is called (a Date
 * becomes its ISO string), boxed primitives are unboxed, `undefined`, functions and symbols are
 * dropped from objects and become null in arrays, NaN and ±Infinity become null, -0 becomes 0,
 * and only own enumerable string keys are kept, in their order.
 *
 * The stores serialize this copy, not the caller's object, and hand the copy to subscribers:
 * `JSON.parse(JSON.stringify(copy))` is a structure equal to `copy` itself, so what live
 * subscribers fold is exactly what a replay reads back (packages/store/src/sqlite-store.ts),
 * every getter of the caller's object is read once, and copying is about three times cheaper
 * than parsing the stored text again.
 * A cycle or a BigInt throws a TypeError, as JSON.stringify does, before anything is written.
 */
export function toJsonValue(value: unknown): unknown {
  return copy(value, '', []);
}

/** `ancestors`: the objects being copied above this one, to refuse a cycle (the spec's stack). */
function copy(value: unknown, key: string, ancestors: object[]): unknown {
  // The steps of the spec's SerializeJSONProperty, in its order.
  if (value !== null && (typeof value === 'object' || typeof value === 'function' || typeof value === 'bigint')) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') value = toJSON.call(value, key);
  }
  if (value instanceof Number || value instanceof String || value instanceof Boolean) value = value.valueOf();
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? (value === 0 ? 0 : value) : null;
    case 'bigint':
      throw new TypeError('Do not know how to serialize a BigInt');
    case 'object':
      break;
    default:
      return undefined; // undefined, function, symbol
  }
  if (value === null) return null;
  if (ancestors.includes(value)) throw new TypeError('Converting circular structure to JSON');
  ancestors.push(value);
  const out = Array.isArray(value) ? copyArray(value, ancestors) : copyObject(value as Record<string, unknown>, ancestors);
  ancestors.pop();
  return out;
}

function copyArray(value: unknown[], ancestors: object[]): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < value.length; i++) out.push(copy(value[i], String(i), ancestors) ?? null);
  return out;
}

function copyObject(value: Record<string, unknown>, ancestors: object[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    const v = copy(value[k], k, ancestors);
    if (v === undefined) continue;
    // An own "__proto__" key, as JSON.parse makes it, not the prototype setter.
    if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    else out[k] = v;
  }
  return out;
}
