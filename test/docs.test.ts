import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_CATALOG } from '@amlsim/core';
import { EXIT_CODE_HELP, EXIT_CODES } from '@amlsim/cli';
import { FAULT_KINDS, IMPLEMENTED_FAULTS, IMPLEMENTED_VERBS, MAX_DURATION_MS, VERBS, verbArgSchemas } from '@amlsim/scenario';
import { EVENT_DOCS_FILE, renderEventDocs } from '../scripts/gen-event-docs';
import { REPO, SCENARIO_DIR } from './helpers';

const SCENARIOS_DOC = join(REPO, 'docs', 'scenarios.md');

/** Every requirement id of the specification (S1.1 … S8.5). */
const REQUIREMENT_IDS = [
  'S1.1', 'S1.2', 'S1.3', 'S1.4', 'S1.5', 'S1.6',
  'S2.1', 'S2.2', 'S2.3', 'S2.4', 'S2.5', 'S2.6',
  'S3.1',
  'S4.1', 'S4.2', 'S4.3', 'S4.4', 'S4.5', 'S4.6',
  'S5.1',
  'S6.1', 'S6.2', 'S6.3',
  'S7.1', 'S7.2', 'S7.3',
  'S8.1', 'S8.2', 'S8.3', 'S8.4', 'S8.5',
] as const;

const scenariosDoc = () => readFileSync(SCENARIOS_DOC, 'utf8');
const headings = (doc: string) => doc.split('\n').filter((line) => /^#{1,6} /.test(line));
/** The contents of every inline code span (`…`) in the document. */
const codeSpans = (doc: string) => [...doc.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!.trim());
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The ids in a scenario file's top-level `cites:` key, flow (`cites: [S1.1, S2.2]`) or block
 * (`cites:` then `- S1.1` lines) style. Read from the text so that a scenario still being
 * written (or using a verb not implemented yet) does not hide a bad id.
 */
const citesOf = (text: string): string[] => {
  const lines = text.split('\n');
  const at = lines.findIndex((line) => /^cites\s*:/.test(line));
  if (at < 0) return [];
  const stripComment = (line: string) => line.replace(/\s+#.*$/, '');
  let rest = stripComment(lines[at]!.replace(/^cites\s*:/, '')).trim();
  const ids: string[] = [];
  if (rest.startsWith('[')) {
    for (let i = at + 1; !rest.includes(']') && i < lines.length; i++) rest += ` ${stripComment(lines[i]!)}`;
    ids.push(...rest.slice(1, rest.indexOf(']')).split(','));
  } else {
    for (let i = at + 1; i < lines.length && /^\s*(-|#|$)/.test(lines[i]!); i++) {
      const item = /^\s*-\s*(.+)$/.exec(stripComment(lines[i]!));
      if (item) ids.push(item[1]!);
    }
  }
  return ids.map((id) => id.trim().replace(/^['"]|['"]$/g, '')).filter((id) => id !== '');
};

describe('docs/events.md', () => {
  it('is what scripts/gen-event-docs.ts renders from EVENT_CATALOG', () => {
    const hint = 'docs/events.md is out of date with EVENT_CATALOG (packages/core/src/events/catalog.ts); run `pnpm tsx scripts/gen-event-docs.ts`';
    expect(existsSync(EVENT_DOCS_FILE), `docs/events.md is missing; run \`pnpm tsx scripts/gen-event-docs.ts\``).toBe(true);
    expect(readFileSync(EVENT_DOCS_FILE, 'utf8'), hint).toBe(renderEventDocs());
  });
});

describe('docs/scenarios.md', () => {
  it('mentions every verb of the parser as a heading or a code span', () => {
    const doc = scenariosDoc();
    const spans = codeSpans(doc);
    const heads = headings(doc);
    const missing = Object.keys(verbArgSchemas).filter(
      (verb) =>
        !heads.some((h) => new RegExp(`\\b${escape(verb)}\\b`).test(h)) &&
        !spans.some((span) => span === verb || span.startsWith(`${verb}:`) || span.startsWith(`${verb} `)),
    );
    expect(missing, `verbs not documented in docs/scenarios.md: ${missing.join(', ')}`).toEqual([]);
  });

  it('marks exactly the verbs outside IMPLEMENTED_VERBS as not implemented, in their headings and the verb table', () => {
    const doc = scenariosDoc();
    const heads = headings(doc);
    const rows = doc.split('\n').filter((line) => line.startsWith('| [`'));
    const wrong = Object.keys(verbArgSchemas).flatMap((verb) => {
      const implemented = IMPLEMENTED_VERBS.has(verb);
      const says = (marked: boolean) => (marked ? 'not implemented' : 'implemented');
      return [
        ['heading', heads.find((h) => h.includes(`\`${verb}\``))],
        ['verb table row', rows.find((r) => r.startsWith(`| [\`${verb}\`]`))],
      ].flatMap(([where, line]) => {
        if (line === undefined) return [`${verb}: no ${where}`];
        const marked = /not implemented yet/i.test(line);
        return marked === implemented ? [`${verb}: the ${where} says ${says(marked)}, IMPLEMENTED_VERBS says ${says(!implemented)}`] : [];
      });
    });
    expect(wrong, 'update the verb headings and the verb table in docs/scenarios.md').toEqual([]);
  });

  it('marks exactly the faults outside IMPLEMENTED_FAULTS as not implemented in the fault table', () => {
    const rows = scenariosDoc().split('\n').filter((line) => line.startsWith('| `'));
    const wrong = FAULT_KINDS.flatMap((fault) => {
      const row = rows.find((r) => r.startsWith(`| \`${fault}\` |`));
      if (row === undefined) return [`${fault}: no row in the fault table`];
      const marked = /not implemented yet/i.test(row);
      const implemented = IMPLEMENTED_FAULTS.has(fault);
      return marked === implemented ? [`${fault}: the row disagrees with IMPLEMENTED_FAULTS`] : [];
    });
    expect(wrong, 'update the fault table in docs/scenarios.md').toEqual([]);
  });

  it('has one verb-table row per verb of the parser, in the parser order, and no other', () => {
    const rows = scenariosDoc().split('\n').filter((line) => line.startsWith('| [`'));
    const listed = rows.map((r) => /^\| \[`([^`]+)`\]/.exec(r)![1]!);
    expect(listed, 'the verb table of docs/scenarios.md must list exactly the verbs of verbArgSchemas, in order').toEqual(VERBS);
  });

  it("names every implemented fault in the verb table's fault row and every compute type in its createCompute row", () => {
    const rows = scenariosDoc().split('\n').filter((line) => line.startsWith('| [`'));
    const fault = rows.find((r) => r.startsWith('| [`fault`]'))!;
    expect([...IMPLEMENTED_FAULTS].filter((f) => !fault.includes(`\`${f}\``)), 'faults missing from the verb-table row of fault').toEqual([]);
    const compute = rows.find((r) => r.startsWith('| [`createCompute`]'))!;
    const types = enumValues(argSchema('createCompute', 'type'));
    expect(types.filter((t) => !compute.includes(`\`${t}\``)), 'compute types missing from the verb-table row of createCompute').toEqual([]);
  });

  it("documents each verb's arguments exactly as the parser takes them, '?' marking the optional ones", () => {
    const wrong = VERBS.flatMap((verb) => {
      // advanceClock and sleep take a scalar; fault's keys have their own table (checked above).
      const shape = verb === 'fault' ? undefined : objectShape(verbArgSchemas[verb] as unknown as Schema);
      if (shape === undefined) return [];
      const documented = argumentTable(verb);
      if (documented === undefined) return [`${verb}: no '| Argument |' table under its heading`];
      const names = documented.map((a) => a.name);
      return [
        ...Object.keys(shape).filter((k) => !names.includes(k)).map((k) => `${verb}: argument '${k}' is not documented`),
        ...names.filter((n) => !(n in shape)).map((n) => `${verb}: documents '${n}', which the parser does not take`),
        ...documented
          .filter((a) => a.name in shape && a.optional !== isOptional(shape[a.name]!))
          .map((a) => `${verb}: '${a.name}' is ${isOptional(shape[a.name]!) ? 'optional (mark it with ?)' : 'required (drop the ?)'}`),
      ];
    });
    expect(wrong, 'update the argument tables in docs/scenarios.md').toEqual([]);
  });

  it('documents exactly the exit codes of the CLI, as --help lists them', () => {
    const rows = scenariosDoc().split('\n').filter((line) => /^\| `\d+` \|/.test(line));
    const documented = rows.map((r) => Number(/^\| `(\d+)`/.exec(r)![1]));
    expect(documented.sort((a, b) => a - b)).toEqual(Object.values(EXIT_CODES).sort((a, b) => a - b));
    for (const code of Object.values(EXIT_CODES)) expect(EXIT_CODE_HELP).toMatch(new RegExp(`^ {2}${code} +\\S`, 'm'));
  });

  it('states the duration limit the parser enforces', () => {
    const hours = MAX_DURATION_MS / 3_600_000;
    const section = scenariosDoc().split(/^## /m).find((s) => s.startsWith('Durations'))!;
    expect(section).toContain(`at most \`${hours}h\``);
    expect(section).toContain(`\`${MAX_DURATION_MS / 1000}\``);
  });

  it('lists every requirement id', () => {
    const doc = scenariosDoc();
    const missing = REQUIREMENT_IDS.filter((id) => !new RegExp(`^\\| ${escape(id)} \\|`, 'm').test(doc));
    expect(missing, 'add these to the requirement-id table of docs/scenarios.md').toEqual([]);
  });
});

describe('requirement ids', () => {
  const files = readdirSync(SCENARIO_DIR).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort();

  it('reads the cites of the scenarios', () => {
    expect(citesOf('name: x\ncites: [S1.1, "S2.2"] # shown\n')).toEqual(['S1.1', 'S2.2']);
    expect(citesOf('name: x\ncites:\n  - S1.1\n  # note\n  - S8.5\ntenant: {}\n')).toEqual(['S1.1', 'S8.5']);
    expect(citesOf('name: x\n')).toEqual([]);
    expect(files.some((f) => citesOf(readFileSync(join(SCENARIO_DIR, f), 'utf8')).length > 0)).toBe(true);
  });

  it.each(files)('%s cites only ids of the specification', (file) => {
    const cited = citesOf(readFileSync(join(SCENARIO_DIR, file), 'utf8'));
    const unknown = cited.filter((id) => !(REQUIREMENT_IDS as readonly string[]).includes(id));
    expect(unknown, `scenarios/${file} cites ids that are not requirement ids (S1.1 … S8.5)`).toEqual([]);
  });

  it('are the only ids the event catalog cites', () => {
    const unknown = Object.entries(EVENT_CATALOG).flatMap(([type, { cites }]) =>
      cites.filter((id) => !(REQUIREMENT_IDS as readonly string[]).includes(id)).map((id) => `${type}: ${id}`),
    );
    expect(unknown).toEqual([]);
  });
});

// ---- reading the parser's schemas and the document's argument tables ----------------------------

/** What these checks read of a zod schema (the root package does not depend on zod itself). */
type Schema = { _zod: { def: { type: string } & Record<string, unknown>; optin?: string } };
type Def = Schema['_zod']['def'];
const defOf = (schema: Schema): Def => schema._zod.def;

/** The shape of the object a verb takes (through wrappers, pipes and the object branch of a union). */
function objectShape(schema: Schema): Record<string, Schema> | undefined {
  const def = defOf(schema);
  switch (def.type) {
    case 'object':
      return def['shape'] as Record<string, Schema>;
    case 'pipe':
      return objectShape(def['in'] as Schema);
    case 'optional':
    case 'default':
    case 'prefault':
      return objectShape(def['innerType'] as Schema);
    case 'union':
      for (const option of def['options'] as Schema[]) {
        const shape = objectShape(option);
        if (shape) return shape;
      }
      return undefined;
    default:
      return undefined;
  }
}

/** Optional or with a default: the file may leave it out. */
const isOptional = (schema: Schema): boolean => schema._zod.optin === 'optional' || ['optional', 'default', 'prefault'].includes(defOf(schema).type);

const argSchema = (verb: keyof typeof verbArgSchemas, key: string): Schema => objectShape(verbArgSchemas[verb] as unknown as Schema)![key]!;

function enumValues(schema: Schema): string[] {
  const def = defOf(schema);
  if (def.type === 'enum') return Object.values(def['entries'] as Record<string, string>);
  if (def.type === 'optional' || def.type === 'default') return enumValues(def['innerType'] as Schema);
  return [];
}

/** The names in the first column of the `| Argument |` table under `#### \`verb\``, with their `?`. */
function argumentTable(verb: string): Array<{ name: string; optional: boolean }> | undefined {
  const section = scenariosDoc().split(/^(?=#{1,4} )/m).find((s) => s.startsWith(`#### \`${verb}\``));
  if (section === undefined) return undefined;
  const lines = section.split('\n');
  const header = lines.findIndex((l) => l.startsWith('| Argument |'));
  if (header < 0) return undefined;
  const args: Array<{ name: string; optional: boolean }> = [];
  for (let i = header + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    for (const m of lines[i]!.split('|')[1]!.matchAll(/`([^`]+)`/g)) args.push({ name: m[1]!.replace(/\?$/, ''), optional: m[1]!.endsWith('?') });
  }
  return args;
}
