import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

/** A 1-based line and column in the scenario file. */
export type Position = { line: number; col: number };

/** Whether a position should point at a map key (unknown key, step verb) or at its value. */
export type Target = 'key' | 'value';

type Located = { key?: Node; value?: Node };

/**
 * Maps data paths (as zod reports them) back to positions in the YAML source, so every issue
 * can say `file:line:col` — users fix files, not data structures.
 */
export class SourcePositions {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /**
   * The position for `path`: the key or value node it names. A path that does not exist (a
   * missing required key) falls back to its nearest existing ancestor's key, which is where the
   * user has to add it.
   */
  at(path: readonly (string | number)[], target: Target): Position {
    for (let depth = path.length; depth >= 0; depth--) {
      const found = this.locate(path.slice(0, depth));
      if (found === undefined) continue;
      // A path that goes on into a scalar names a normalized form (`signIn: alice` read as
      // `{ principal: alice }`): the scalar itself is what to fix.
      const intoScalar = depth < path.length && isScalar(found.value);
      const wanted = (depth === path.length && target === 'value') || intoScalar ? (found.value ?? found.key) : (found.key ?? found.value);
      const offset = wanted?.range?.[0];
      if (offset !== undefined) return this.lines.linePos(offset);
    }
    return { line: 1, col: 1 };
  }

  /** The position of a raw source offset (YAML parser errors carry those). */
  ofOffset(offset: number): Position {
    return this.lines.linePos(offset);
  }

  private locate(path: readonly (string | number)[]): Located | undefined {
    let located: Located = { value: isNode(this.doc.contents) ? this.doc.contents : undefined };
    for (const segment of path) {
      const node = this.deref(located.value);
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        if (pair === undefined) return undefined;
        located = { key: pair.key as Node, value: isNode(pair.value) ? pair.value : undefined };
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment];
        if (!isNode(item)) return undefined;
        located = { value: item };
      } else {
        return undefined;
      }
    }
    return located;
  }

  // Anchored values (`*base`) are resolved so paths through aliases still find their nodes.
  private deref(node: Node | undefined): Node | undefined {
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      return isNode(target) ? target : undefined;
    }
    return node;
  }
}
