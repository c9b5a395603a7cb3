import type { StoredEvent } from '@amlsim/core';
import { useEffect, useMemo, useReducer, useState } from 'preact/hooks';
import type { LogClient } from './log';
import { SessionEvents, WorldFolder, type Moment } from './timeline';
import { PlayerBar, StepCard, type PlayerView } from './views/player';
import { TimeSlider } from './views/slider';
import { SequenceView } from './views/sequence';
import { DetailPanel } from './views/detail';
import { NowCaption } from './views/now';
import { Statecharts } from './views/statecharts';
import { TokensView } from './views/tokens';
import { RunsView } from './views/runs';
import { ActivityView } from './views/activity';
import { InsightsView } from './views/insights';

/** The side panel's views, in the order of their tabs. */
const TABS = [
  { id: 'statecharts', title: 'Statecharts', View: Statecharts },
  { id: 'tokens', title: 'Tokens', View: TokensView },
  { id: 'runs', title: 'Runs', View: RunsView },
  { id: 'activity', title: 'Activity log', View: ActivityView },
  { id: 'insights', title: 'App Insights', View: InsightsView },
] as const;
type TabId = (typeof TABS)[number]['id'];

/** What a click selected: one event of the log (by position). */
export type Selection = { position: number } | undefined;

export type ViewProps = { moment: Moment; selected: Selection; select: (s: Selection) => void };

export function App({ log }: { log: LogClient }) {
  const [, rerender] = useReducer((n: number, _tick: void) => n + 1, 0);
  useEffect(() => log.subscribe(() => rerender()), [log]);
  const sessions = useMemo(() => new SessionEvents(), [log]);
  // While the backlog is read the views wait: they are drawn once, from all of it (log.ts).
  if (!log.loading) sessions.update(log.events);
  const folders = useMemo(() => new Map<string, WorldFolder>(), [log]);

  // Which session is shown: the newest unless the user picked one. Following it, a session that
  // begins later (a scenario played from the page) is shown as it begins.
  const [picked, setPicked] = useState<string | undefined>(undefined);
  const session = picked ?? sessions.order.at(-1);
  // Where in that session: `undefined` follows the live log; a number is a point in its past.
  const [cursor, setCursor] = useState<number | undefined>(undefined);
  const [selected, select] = useState<Selection>(undefined);
  const [tab, setTab] = useState<TabId>('statecharts');
  const [presenter, setPresenter] = useState(false);
  const [player, setPlayer] = useState<PlayerView | undefined>(undefined);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLSelectElement) return;
      if (e.key === 'p') setPresenter((on) => !on);
      if (e.key === 'Escape') select(undefined);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  useEffect(() => {
    document.body.classList.toggle('presenter', presenter);
  }, [presenter]);

  const events: readonly StoredEvent[] = (session && sessions.bySession.get(session)) || [];
  let folder = session ? folders.get(session) : undefined;
  if (session && !folder) {
    folder = new WorldFolder(events);
    folders.set(session, folder);
  }
  const count = cursor === undefined ? events.length : Math.min(cursor, events.length);
  const worlds = folder;
  const moment: Moment | undefined =
    session && worlds
      ? {
          session,
          events,
          count,
          position: count > 0 ? events[count - 1]!.position : 0,
          // Folded when a view first asks (the detail panel's custom roles): most views read
          // the events, and a slider move would otherwise copy a whole world to show none of it.
          get world() {
            return worlds.at(count);
          },
          live: cursor === undefined,
        }
      : undefined;

  const ActiveTab = TABS.find((t) => t.id === tab)!.View;
  return (
    // data-position / data-head: what the views show and how far the page's copy of the log
    // reaches; tests and the browser benchmark wait on them (never on timers).
    <div class="app" data-session={moment?.session ?? ''} data-position={moment?.position ?? 0} data-count={moment?.count ?? 0} data-head={log.loading ? 0 : log.head}>
      <header class="top">
        <h1>
          amlsim <span class="subtitle">who talks to whom</span>
        </h1>
        <PlayerBar presenter={presenter} onView={(view) => setPlayer(view)} />
        <div class="top-right">
          <label class="session-pick">
            session{' '}
            <select
              value={session ?? ''}
              onChange={(e) => {
                const value = (e.target as HTMLSelectElement).value;
                setPicked(value === sessions.order.at(-1) ? undefined : value);
                setCursor(undefined);
                select(undefined);
              }}
            >
              {sessions.order.map((s) => (
                <option value={s} key={s}>
                  {s} ({sessions.bySession.get(s)!.length} events)
                </option>
              ))}
            </select>
          </label>
          <span class={`connection ${log.connected ? 'up' : 'down'}`} data-testid="connection">
            {log.connected ? 'live' : 'reconnecting…'}
          </span>
          <button type="button" class="presenter-toggle" aria-pressed={presenter} onClick={() => setPresenter(!presenter)} title="Presenter mode (key P)">
            Presenter
          </button>
        </div>
      </header>
      {log.error && <div class="banner error">{log.error}</div>}
      {moment ? (
        <>
          <TimeSlider moment={moment} onChange={(n) => setCursor(n)} />
          <main class="panes">
            <section class="pane sequence-pane" aria-label="Sequence diagram">
              <SequenceView moment={moment} selected={selected} select={select} />
            </section>
            <section class="pane side-pane">
              {presenter && (
                <div class="presenter-panel" data-testid="presenter-panel">
                  {player?.nextStep && (player.state === 'paused' || player.state === 'running') && (
                    <StepCard step={player.nextStep} running={player.state === 'running'} presenter />
                  )}
                  <NowCaption moment={moment} />
                </div>
              )}
              {selected ? (
                <DetailPanel moment={moment} selected={selected} select={select} />
              ) : (
                <>
                  <nav class="tabs" role="tablist">
                    {TABS.map((t) => (
                      <button type="button" role="tab" key={t.id} aria-selected={t.id === tab} onClick={() => setTab(t.id)}>
                        {t.title}
                      </button>
                    ))}
                  </nav>
                  <div class="tab-body" role="tabpanel" aria-label={TABS.find((t) => t.id === tab)!.title}>
                    <ActiveTab moment={moment} selected={selected} select={select} />
                  </div>
                </>
              )}
            </section>
          </main>
        </>
      ) : log.loading ? (
        <main class="empty" data-testid="loading">
          <p>
            Reading the log: {log.events.length.toLocaleString('en-US')} of {log.info ? log.info.head.toLocaleString('en-US') : '…'} events
          </p>
        </main>
      ) : (
        <main class="empty">
          <p>The log is empty. Pick a scenario above and press <b>Run</b> or <b>Step</b>, or run <code>amlsim run</code> on this data dir.</p>
        </main>
      )}
    </div>
  );
}
