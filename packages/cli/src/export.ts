import { existsSync, readFileSync, statSync } from 'node:fs';
import { renderMermaidSequence, renderTimelineHtml, type EventStore, type SequenceOptions, type StoredEvent } from '@amlsim/core';
import { createMemoryEventStore } from '@amlsim/store';
import { createTemporaryDataDir } from '@amlsim/platform';
import { parseScenario, runScenario } from '@amlsim/scenario';

/** What `amlsim export` writes (packages/core/src/projections/sequence.ts renders both). */
export const EXPORT_FORMATS = ['mermaid', 'html'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** The text of an export of these events. */
export const renderExport = (events: readonly StoredEvent[], format: ExportFormat, options: SequenceOptions = {}): string =>
  format === 'mermaid' ? renderMermaidSequence(events, options) : renderTimelineHtml(events, options);

/** Whether `amlsim export`'s argument names a scenario file (anything else is a session id). */
export const isScenarioFile = (target: string): boolean => /\.ya?ml$/i.test(target) || (existsSync(target) && statSync(target).isFile());

/** The session ids of a log, in the order they began. */
export const sessionsOf = (store: EventStore): string[] => [...new Set([...store.readAll()].map((e) => e.meta.session))];

/** A session's events, or undefined when the log has no such session. */
export const eventsOfSession = (store: EventStore, session: string): StoredEvent[] | undefined => {
  const events = [...store.readAll()].filter((e) => e.meta.session === session);
  return events.length > 0 ? events : undefined;
};

/** What playing a scenario for an export gave. */
export type PlayedScenario = { name: string; cites: readonly string[]; session: string; passed: boolean; events: StoredEvent[] };

/**
 * Play a scenario file as `amlsim run --store memory` does — an in-memory log, vaults and blobs
 * in a temporary data dir under a lease, removed afterwards — on the process driver unless told
 * otherwise, and return its events. Throws what `parseScenario` throws for an invalid file.
 */
export const playScenarioForExport = async (
  file: string,
  options: { driver?: 'docker' | 'process'; allowPaths?: string[] } = {},
): Promise<PlayedScenario> => {
  const scenario = parseScenario(readFileSync(file, 'utf8'), file, { allowPaths: options.allowPaths ?? [] });
  const temporary = createTemporaryDataDir();
  const store = createMemoryEventStore();
  try {
    const result = await runScenario(scenario, {
      store,
      dataDir: temporary.path,
      driver: options.driver ?? 'process',
      ...(options.allowPaths?.length ? { allowPaths: options.allowPaths } : {}),
    });
    return { name: scenario.name, cites: scenario.cites, session: result.session, passed: result.passed, events: [...store.readAll()] };
  } finally {
    store.close();
    temporary.release();
  }
};
