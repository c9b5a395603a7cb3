import { useMemo } from 'preact/hooks';
import type { ViewProps } from '../app';
import { insightsRows, type InsightsRow } from '../insights-rows';
import { Cites } from './cites';
import './panels.css';

/**
 * App Insights: one row per scoring request the workspace's Application Insights recorded, with
 * the fields S7.3 names (HTTPMethod, UserAgent, ComputeType, RequestUrl, StatusCode, RequestId,
 * Duration), by their own names; refused requests (4xx) red, failed ones (5xx) amber. Rows come
 * from packages/web/src/insights-rows.ts; a click opens the request's ScoringRequestRecorded.
 */
export function InsightsView({ moment, select }: ViewProps) {
  const rows = useMemo(() => insightsRows(moment.events, moment.count), [moment.events, moment.count]);
  const provisioned = useMemo(() => moment.events.slice(0, moment.count).filter((e) => e.type === 'AppInsightsProvisioned').length, [moment.events, moment.count]);
  return (
    <div class="panel insights" data-testid="insights">
      <h3>
        App Insights requests <Cites ids={['S7.3']} />
      </h3>
      <p class="legend">
        {rows.length} request{rows.length === 1 ? '' : 's'} recorded
        {provisioned > 0 ? ` in the Application Insights created with the workspace (in the user's subscription)` : ''}
      </p>
      {rows.length === 0 && <p class="muted">No scoring request recorded yet at this point of the session: deploy a web service and call it.</p>}
      <div class="insights-list">
        {rows.map((r) => (
          <Request key={r.position} row={r} onClick={() => select({ position: r.position })} />
        ))}
      </div>
    </div>
  );
}

const codeClass = (status: number): string => (status >= 500 ? 'code-failed' : status >= 400 ? 'code-refused' : 'code-ok');

function Request({ row, onClick }: { row: InsightsRow; onClick: () => void }) {
  return (
    <button type="button" class="request" data-request={row.RequestId} data-status={row.StatusCode} onClick={onClick} title={`ScoringRequestRecorded at log position ${row.position}`}>
      <span class="req-line">
        <span class="when">{row.Timestamp.slice(11, 23)}</span>
        <span class={`req-code ${codeClass(row.StatusCode)}`}>
          <small>StatusCode</small> {row.StatusCode}
        </span>
        <span>
          <small>HTTPMethod</small> {row.HTTPMethod}
        </span>
        <span>
          <small>Duration</small> {row.Duration} ms
        </span>
        <span class="req-service">{row.service}</span>
      </span>
      <span class="req-line">
        <small>RequestUrl</small> <code class="url">{row.RequestUrl}</code>
      </span>
      <span class="req-line">
        <span>
          <small>UserAgent</small> {row.UserAgent}
        </span>
        <span>
          <small>ComputeType</small> {row.ComputeType}
        </span>
        <span>
          <small>RequestId</small> <code>{row.RequestId}</code>
        </span>
      </span>
    </button>
  );
}
