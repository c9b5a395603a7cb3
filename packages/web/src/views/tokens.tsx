import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ViewProps } from '../app';
import { dodge, tokenBars, xOf, type TokenBar, type TokenKind } from '../token-bars';
import { Cites } from './cites';
import './panels.css';

/**
 * Tokens as bars on the session's time axis (packages/web/src/token-bars.ts derives them from the
 * shown events): issued to revoked, expired or now, refreshBy marked, one tick per use (red when
 * refused). A click on a tick opens its event. Tokens appear by fingerprint: the log has no value.
 */
const KINDS: ReadonlyArray<{ kind: TokenKind; title: string; cites: string[]; owner: string }> = [
  { kind: 'arm', title: 'ARM tokens', cites: ['S1.1', 'S1.2'], owner: 'principal' },
  { kind: 'run', title: 'Run tokens', cites: ['S1.3'], owner: 'run' },
  { kind: 'service', title: 'Web-service tokens', cites: ['S1.6'], owner: 'service' },
];

const WIDTH = 1000; // percentages are taken of this; the track is as wide as the pane

export function TokensView({ moment, select }: ViewProps) {
  const { bars, start, now } = useMemo(() => tokenBars(moment.events, moment.count), [moment.events, moment.count]);
  // The tracks' width in pixels, for setting ticks that would cover one another side by side.
  const root = useRef<HTMLDivElement>(null);
  const [trackWidth, setTrackWidth] = useState(0);
  useLayoutEffect(() => {
    const el = root.current;
    if (!el) return;
    const measure = () => setTrackWidth(el.querySelector('.token-track')?.clientWidth ?? 0);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, [bars.length > 0]);
  // An axis of at least a second, so a session of one instant still has room to draw.
  const end = Math.max(now, start + 1000);
  const pct = (t: number) => `${(xOf(t, start, end, WIDTH) / WIDTH) * 100}%`;

  if (bars.length === 0) {
    return (
      <div class="panel" data-testid="tokens">
        <p class="muted">No token issued yet at this point of the session: a sign-in mints an ARM token, a run its run token.</p>
      </div>
    );
  }
  return (
    <div class="panel tokens" data-testid="tokens" ref={root}>
      <Legend />
      <div class="axis" aria-hidden="true">
        <span>{clock(start)}</span>
        <span>+{seconds(end - start)}</span>
        <span>{clock(end)}</span>
      </div>
      {KINDS.map(({ kind, title, cites, owner }) => {
        const rows = bars.filter((b) => b.kind === kind);
        if (rows.length === 0) return null;
        return (
          <section class="token-group" key={kind}>
            <h3>
              {title} <Cites ids={cites} />
            </h3>
            {rows.map((bar) => (
              <TokenRow key={bar.tokenId} bar={bar} owner={owner} pct={pct} start={start} end={end} trackWidth={trackWidth} select={select} />
            ))}
          </section>
        );
      })}
    </div>
  );
}

type RowProps = { bar: TokenBar; owner: string; pct: (t: number) => string; start: number; end: number; trackWidth: number; select: ViewProps['select'] };

function TokenRow({ bar, owner, pct, start, end, trackWidth, select }: RowProps) {
  const tickGap = Math.max(8, Math.min(14, trackWidth / 60));
  const tickX = trackWidth > 0 ? dodge(bar.ticks.map((t) => xOf(t.at, start, end, trackWidth)), tickGap, trackWidth) : undefined;
  const stop = bar.endedAt ?? end;
  const left = pct(bar.issuedAt);
  const beyond = bar.endedAt === undefined && bar.expiresAt > end;
  const refused = bar.ticks.filter((t) => !t.ok).length;
  return (
    <div class={`token-row state-${bar.state}`} data-token={bar.fingerprint} data-kind={bar.kind} data-state={bar.state}>
      <div class="token-label">
        <span class="token-owner" title={`${owner} ${bar.owner}`}>{bar.owner}</span>
        <code class="token-fp" title={`token ${bar.tokenId}`}>{bar.fingerprint}</code>
        <span class={`token-state state-${bar.state}`}>{stateText(bar)}</span>
        <span class="token-uses">
          {bar.ticks.length} use{bar.ticks.length === 1 ? '' : 's'}
          {refused > 0 && <b class="refused-count"> · {refused} refused</b>}
        </span>
      </div>
      <div class="token-track">
        <button
          type="button"
          class="token-bar"
          style={{ left, width: `calc(${pct(stop)} - ${left})` }}
          title={`issued ${clock(bar.issuedAt)} · expires ${clock(bar.expiresAt)}${bar.endedBy ? ` · ended by ${bar.endedBy.type}` : ''}`}
          onClick={() => select({ position: bar.endedBy?.position ?? bar.issuedPosition })}
        />
        {beyond && (
          <span class="token-beyond" title={`expires ${clock(bar.expiresAt)}, after the shown time`}>
            ▸
          </span>
        )}
        {bar.refreshBy !== undefined && bar.refreshBy >= start && bar.refreshBy <= end && (
          <span class="token-refresh" style={{ left: pct(bar.refreshBy) }} title={`refreshBy ${clock(bar.refreshBy)}`} data-refresh-by="" />
        )}
        {bar.ticks.map((t, i) => (
          <button
            type="button"
            key={t.position}
            class={`token-tick ${t.ok ? 'ok' : 'refused'}${t.inferred ? ' inferred' : ''}`}
            style={{ left: tickX ? `${tickX[i]}px` : pct(t.at) }}
            data-tick={t.position}
            data-ok={String(t.ok)}
            title={`${t.ok ? 'accepted' : 'refused'}: ${t.label} · ${clock(t.at)} · #${t.position}${t.inferred ? ' (the log does not name the token: attributed, see the legend)' : ''}`}
            aria-label={`${t.ok ? 'accepted' : 'refused'} ${t.type} at log position ${t.position}`}
            onClick={() => select({ position: t.position })}
          />
        ))}
      </div>
      <div class="token-times muted">
        issued {clock(bar.issuedAt)} · {bar.endedBy ? `${bar.state} ${clock(bar.endedAt!)}` : bar.state === 'expired' ? `expired ${clock(bar.expiresAt)}` : `expires ${clock(bar.expiresAt)}`}
        {bar.refreshBy !== undefined && ` · refreshBy ${clock(bar.refreshBy)}`}
      </div>
    </div>
  );
}

function Legend() {
  return (
    <p class="legend">
      <span class="legend-bar" /> lifetime <span class="legend-tick ok" /> accepted call <span class="legend-tick refused" /> refused call{' '}
      <span class="legend-refresh" /> refreshBy <span class="legend-tick ok inferred" /> attributed: the log names the caller, not the token (ARM: the principal's newest
      token; web service: the service's newest token)
    </p>
  );
}

const stateText = (bar: TokenBar): string => {
  if (bar.state === 'revoked' && bar.endedBy?.type === 'RunResumed') return 'replaced';
  return bar.state;
};

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** Platform clock time (UTC, as the log records it), to the millisecond. */
const clock = (t: number): string => {
  if (!Number.isFinite(t)) return '?';
  const d = new Date(t);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
};
const seconds = (ms: number): string => (ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms / 1000)} s`);
