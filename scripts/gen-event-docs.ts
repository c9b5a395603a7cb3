/**
 * Generates docs/events.md from the event catalog (EVENT_CATALOG in @amlsim/core): one table
 * per service lane with each event type, the requirement ids it shows, its one-line doc and
 * its payload fields.
 *
 *   pnpm tsx scripts/gen-event-docs.ts
 *
 * test/docs.test.ts fails when docs/events.md differs from what this renders, so an event
 * added to the catalog without regenerating is caught.
 *
 * Lanes, requirement ids and doc lines come from EVENT_CATALOG at run time. Payload fields
 * exist only as a TypeScript type (EventDataMap), so they are read with the TypeScript
 * compiler API from the core package's source.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { EVENT_CATALOG, type EventType, type Lane } from '@amlsim/core';

const REPO = join(import.meta.dirname, '..');
export const EVENT_DOCS_FILE = join(REPO, 'docs', 'events.md');
const CORE_ENTRY = join(REPO, 'packages', 'core', 'src', 'index.ts');

/** Lanes in the order a request travels (the order of the `Lane` type). */
const LANE_ORDER = ['Client', 'AAD', 'ARM', 'RP', 'KeyVault', 'Storage', 'Registry', 'AppInsights', 'Monitor', 'Compute', 'CosmosDB', 'Platform'] as const satisfies readonly Lane[];
// Compile-time check that LANE_ORDER names every lane: adding a lane to the type without
// adding it here is a type error.
type MissingLanes = Exclude<Lane, (typeof LANE_ORDER)[number]>;
const everyLaneListed: MissingLanes extends never ? true : MissingLanes = true;
void everyLaneListed;

const LANE_TITLES: Record<Lane, string> = {
  Client: 'Client (CLI, SDK, portal)',
  AAD: 'AAD (Azure Active Directory)',
  ARM: 'ARM (Azure Resource Manager)',
  RP: 'RP (the AML resource provider)',
  KeyVault: 'KeyVault',
  Storage: 'Storage',
  Registry: 'Registry (container registry)',
  AppInsights: 'AppInsights (Application Insights)',
  Monitor: 'Monitor (Azure Monitor)',
  Compute: 'Compute (clusters, nodes, run containers)',
  CosmosDB: 'CosmosDB (the metric store in the platform subscription)',
  Platform: 'Platform (simulator bookkeeping)',
};

type PayloadField = { name: string; optional: boolean; type: string };

/**
 * The payload fields of every event type, from the `EventDataMap` type that @amlsim/core
 * exports. Returns an empty map for a type the compiler cannot resolve (the table then says
 * so rather than guessing).
 */
export function readPayloadFields(): Map<string, PayloadField[]> {
  const program = ts.createProgram([CORE_ENTRY], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const entry = program.getSourceFile(CORE_ENTRY);
  const moduleSymbol = entry ? checker.getSymbolAtLocation(entry) : undefined;
  if (!moduleSymbol) throw new Error(`cannot read the exports of ${CORE_ENTRY}`);
  let mapSymbol = checker.getExportsOfModule(moduleSymbol).find((s) => s.getName() === 'EventDataMap');
  if (mapSymbol && mapSymbol.flags & ts.SymbolFlags.Alias) mapSymbol = checker.getAliasedSymbol(mapSymbol);
  if (!mapSymbol) throw new Error(`@amlsim/core does not export EventDataMap (looked in ${CORE_ENTRY})`);
  const mapType = checker.getDeclaredTypeOfSymbol(mapSymbol);

  const fields = new Map<string, PayloadField[]>();
  for (const event of checker.getPropertiesOfType(mapType)) {
    const declaration = event.valueDeclaration ?? event.declarations?.[0];
    if (!declaration) continue;
    const payload = checker.getTypeOfSymbolAtLocation(event, declaration);
    fields.set(
      event.getName(),
      checker.getPropertiesOfType(payload).map((field) => {
        const at = field.valueDeclaration ?? field.declarations?.[0] ?? declaration;
        const type = formatType(checker, checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(field, at)));
        return { name: field.getName(), optional: (field.flags & ts.SymbolFlags.Optional) !== 0, type };
      }),
    );
  }
  return fields;
}

/**
 * A field's type as a reader wants it: unions of literals spelled out (`'key1' | 'key2'`,
 * sorted) rather than named by an alias the reader cannot look up (`ProvisionedResource`).
 */
function formatType(checker: ts.TypeChecker, type: ts.Type): string {
  if (checker.isArrayType(type)) {
    const element = checker.getTypeArguments(type as ts.TypeReference)[0];
    if (element) {
      const inner = formatType(checker, element);
      return element.isUnion() && inner.includes(' | ') ? `(${inner})[]` : `${inner}[]`;
    }
  }
  if (type.isUnion() && type.types.every((t) => t.isStringLiteral() || t.isNumberLiteral())) {
    // Sorted: the compiler's own member order depends on what else the program mentions.
    return type.types
      .map((t) => (t.isStringLiteral() ? `'${t.value}'` : String((t as ts.NumberLiteralType).value)))
      .sort()
      .join(' | ');
  }
  return checker.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseSingleQuotesForStringLiteralType);
}

/** Text safe inside a Markdown table cell (a `|`, even in a code span, would end the cell). */
const cell = (text: string): string => text.replace(/\|/g, '\\|');

const showFields = (fields: PayloadField[] | undefined): string => {
  if (fields === undefined) return '(not found in EventDataMap)';
  if (fields.length === 0) return '(none)';
  return fields.map((f) => `\`${cell(`${f.name}${f.optional ? '?' : ''}: ${f.type}`)}\``).join(', ');
};

/** The whole of docs/events.md. */
export function renderEventDocs(): string {
  const payloads = readPayloadFields();
  const types = Object.keys(EVENT_CATALOG) as EventType[];
  const lines: string[] = [
    '# Event reference',
    '',
    '<!-- Generated by scripts/gen-event-docs.ts from EVENT_CATALOG in packages/core/src/events/catalog.ts.',
    '     Do not edit by hand: change the catalog, then run `pnpm tsx scripts/gen-event-docs.ts`. -->',
    '',
    `Every fact the simulator learns is one of these ${types.length} event types, appended to the event log.`,
    'They are grouped by the service lane they happen in (the second column of the `amlsim run` timeline).',
    'Requirement ids (S1.1 … S8.5) are listed in [scenarios.md](scenarios.md#requirement-ids);',
    'a dash means the event is the simulator\'s own bookkeeping.',
    '',
    'Every event also carries an envelope: `position` (global order of the log), `stream` and',
    '`version` (order within one stream), and `meta` with `at` (time on the platform clock),',
    '`principal` (who acted, when someone did), `correlationId` (shared by every event of one',
    'command), `causationId` and `session` (one scenario run).',
    '',
    'Payloads never hold a secret value: tokens, keys and connection strings appear only as a',
    'fingerprint, a name or a version.',
    '',
    'In a scenario\'s `expect` (see [scenarios.md](scenarios.md#event-matchers)), a matcher such as',
    '`{ type: WorkspaceCreated, workspace: ws1 }` names the event type and payload fields from the',
    'tables below; `principal` also matches `meta.principal`.',
    '',
  ];
  for (const lane of LANE_ORDER) {
    const inLane = types.filter((t) => EVENT_CATALOG[t].lane === lane);
    if (inLane.length === 0) continue;
    lines.push(`## ${LANE_TITLES[lane]}`, '', '| Event type | Requirements | What it means | Payload fields |', '|---|---|---|---|');
    for (const type of inLane) {
      const { cites, doc } = EVENT_CATALOG[type];
      lines.push(`| \`${type}\` | ${cites.join(', ') || '—'} | ${cell(doc)} | ${showFields(payloads.get(type))} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  writeFileSync(EVENT_DOCS_FILE, renderEventDocs());
  process.stdout.write(`wrote ${EVENT_DOCS_FILE}\n`);
}
