import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { ViewProps } from '../app';
import { runHistories, type MetricSeries, type RunSummary } from '../run-history';
import { Cites } from './cites';
import './panels.css';

/**
 * Runs: each run's status history (its stream folded through the run statechart,
 * packages/web/src/run-history.ts) and one chart per metric it wrote back, by step. Everything
 * is rebuilt from the shown events, so a chart redraws as the slider moves.
 */
export function RunsView({ moment, select }: ViewProps) {
  const runs = useMemo(() => runHistories(moment.events, moment.count), [moment.events, moment.count]);
  const theme = useTheme();
  if (runs.length === 0) {
    return (
      <div class="panel" data-testid="runs">
        <p class="muted">No run submitted yet at this point of the session.</p>
      </div>
    );
  }
  return (
    <div class="panel runs" data-testid="runs">
      {runs.map((run) => (
        <RunCard key={run.runId} run={run} select={select} theme={theme} />
      ))}
    </div>
  );
}

function RunCard({ run, select, theme }: { run: RunSummary; select: ViewProps['select']; theme: Theme }) {
  const first = run.history[0] ? Date.parse(run.history[0].at) : 0;
  return (
    <article class="run-card" data-run={run.runId} data-status={run.status ?? ''}>
      <div class="run-head">
        <span class="run-id">{run.runId}</span>
        <span class={`run-status s-${run.status ?? 'none'}`}>{run.status ?? '—'}</span>
        <span class="muted">
          {run.experiment} on {run.compute} · {run.workspace}
        </span>
      </div>
      <h3>
        Status history <Cites ids={['S8.3']} />
      </h3>
      <ol class="status-history" data-testid="status-history">
        {run.history.map((h, i) => (
          <li key={h.position}>
            {i > 0 && <span class="status-arrow">→</span>}
            <button type="button" class={`status-step run-status s-${h.status}`} title={`${h.type} · ${h.at} · #${h.position}`} onClick={() => select({ position: h.position })}>
              {h.status}
              <span class="when">+{((Date.parse(h.at) - first) / 1000).toFixed(2)} s</span>
            </button>
          </li>
        ))}
      </ol>
      {run.reason && <p class="reason">{run.reason}</p>}
      {(run.metrics.length > 0 || run.otherMetrics.length > 0) && (
        <h3>
          Metrics written back <Cites ids={['S8.4', 'S1.3']} />
        </h3>
      )}
      {run.metrics.map((m) => (
        <MetricChart key={m.name} series={m} theme={theme} />
      ))}
      {run.otherMetrics.map((m) => (
        <p class="metric-other" key={m.name}>
          <code>{m.name}</code> = {m.last} <span class="muted">({m.count} value{m.count === 1 ? '' : 's'}, not numbers: not charted)</span>
        </p>
      ))}
    </article>
  );
}

type Theme = { ink: string; muted: string; line: string; call: string; size: number; font: string; presenter: boolean };

/** The page's colours and size (packages/web/src/style.css), read again when presenter mode toggles: a canvas cannot use CSS variables. */
function useTheme(): Theme {
  const read = (): Theme => {
    const s = getComputedStyle(document.body);
    const v = (name: string, fallback: string) => s.getPropertyValue(name).trim() || fallback;
    return {
      ink: v('--ink', '#1b1b1f'),
      muted: v('--muted', '#5d6068'),
      line: v('--line', '#d5d6db'),
      call: v('--call', '#24478f'),
      size: parseFloat(v('--size', '15px')) || 15,
      font: v('--font', 'sans-serif'),
      presenter: document.body.classList.contains('presenter'),
    };
  };
  const [theme, setTheme] = useState(read);
  useEffect(() => {
    const observer = new MutationObserver(() => setTheme(read()));
    observer.observe(document.body, { attributes: true, attributeFilter: ['class'] });
    return () => observer.disconnect();
  }, []);
  return theme;
}

function MetricChart({ series, theme }: { series: MetricSeries; theme: Theme }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [width, setWidth] = useState(0);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setWidth(Math.floor(el.clientWidth)));
    observer.observe(el);
    setWidth(Math.floor(el.clientWidth));
    return () => observer.disconnect();
  }, []);

  // Made again when the look or the width changes; otherwise only its data is replaced.
  useEffect(() => {
    const el = box.current;
    if (!el || width <= 0) return;
    const font = `${Math.round(theme.size * 0.8)}px ${theme.font}`;
    const axis = { stroke: theme.muted, grid: { stroke: theme.line, width: 1 }, ticks: { stroke: theme.line }, font, labelFont: font, size: theme.size * 3.2 };
    const onePoint = series.steps.length === 1;
    const opts: uPlot.Options = {
      width,
      height: Math.round(theme.size * 11),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      // One step alone would get uPlot's default span (0 to 100, the point at the edge), which
      // it has already widened to before `range` is asked: take the span from the data itself.
      scales: {
        x: {
          time: false,
          range: (u, min, max) => {
            const xs = u.data[0];
            const lo = xs[0] ?? min;
            const hi = xs[xs.length - 1] ?? max;
            return lo === hi ? [lo - 1, hi + 1] : [lo, hi];
          },
        },
      },
      axes: [
        // Steps are whole numbers: no tick between two of them.
        { ...axis, label: 'step', labelSize: theme.size * 1.2, incrs: STEP_INCRS },
        { ...axis, size: theme.size * 4.2 },
      ],
      series: [
        { label: 'step' },
        {
          label: series.name,
          stroke: theme.call,
          width: theme.presenter ? 3 : 2,
          // A single value would be an invisible line: draw it as a point.
          points: { show: onePoint || series.steps.length <= 30, size: theme.presenter ? 9 : 6, fill: theme.call, stroke: theme.call },
        },
      ],
    };
    const made = new uPlot(opts, [series.steps, series.values], el);
    plot.current = made;
    return () => {
      made.destroy();
      plot.current = null;
    };
  }, [width, theme, series.name, series.steps.length === 1]);

  useEffect(() => {
    plot.current?.setData([series.steps, series.values]);
  }, [series]);

  const last = series.values.at(-1);
  return (
    <figure class="metric-chart" data-metric={series.name} data-points={series.steps.length}>
      <h4>
        {series.name}{' '}
        <span class="muted">
          · {series.steps.length} point{series.steps.length === 1 ? '' : 's'} · last {last === undefined ? '—' : formatNumber(last)}
        </span>
      </h4>
      <div ref={box} class="chart-box" />
    </figure>
  );
}

const STEP_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 1_000_000];

const formatNumber = (n: number): string => (Number.isInteger(n) ? String(n) : Math.abs(n) < 0.001 ? n.toExponential(3) : n.toPrecision(4));
