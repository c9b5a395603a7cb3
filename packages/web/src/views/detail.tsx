import { BUILT_IN_ROLES, EVENT_CATALOG, PARTY_NAMES, REFUSALS, arrowOf, isKnownEventType, type AuthorizationEvaluation, type RoleDefinition, type StoredEvent } from '@amlsim/core';
import type { ViewProps } from '../app';
import { countUpTo } from '../timeline';
import { Cites } from './cites';

/**
 * One event explained: who acted on whom, what the catalog says it means, the requirements it
 * shows, and its recorded fields. A refused call also shows *why*: for an `AuthorizationFailed`
 * the RBAC evaluation recorded with it (every role assignment of the principal, whether it
 * applies at the scope, grants the action or is taken out by a NotAction, and which decided).
 * The log holds no secret value; tokens appear by their fingerprints only.
 */
export function DetailPanel({ moment, selected, select }: ViewProps) {
  const event = selected ? findEvent(moment.events, selected.position) : undefined;
  if (!event) return null;
  const known = isKnownEventType(event.type);
  const doc = known ? EVENT_CATALOG[event.type as keyof typeof EVENT_CATALOG] : undefined;
  const { from, to } = arrowOf(event.type);
  const evaluation = event.type === 'CommandRejected' ? (event.data['evaluation'] as AuthorizationEvaluation | undefined) : undefined;
  return (
    <div class="detail" data-testid="detail">
      <div class="detail-head">
        <h2>{event.type}</h2>
        <button type="button" class="close" onClick={() => select(undefined)} aria-label="Close (Esc)">
          ✕
        </button>
      </div>
      <p class="detail-arrow">
        {PARTY_NAMES[from]} → {PARTY_NAMES[to]} · log position {event.position} · {event.meta.at}
        {event.meta.principal ? ` · on behalf of ${event.meta.principal}` : ''}
      </p>
      {doc && <p class="detail-doc">{doc.doc}</p>}
      {doc && doc.cites.length > 0 && <Cites ids={doc.cites} />}
      {isRefusal(event) && <Refusal event={event} evaluation={evaluation} roles={(name) => roleOf(moment, name)} />}
      <table class="fields">
        <tbody>
          {Object.entries(event.data)
            .filter(([k]) => k !== 'evaluation')
            .map(([k, v]) => (
              <tr key={k}>
                <th>{k}</th>
                <td>{typeof v === 'object' ? JSON.stringify(v) : String(v)}</td>
              </tr>
            ))}
          {event.meta.channel && (
            <tr>
              <th>channel</th>
              <td>{event.meta.channel}</td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Refused calls (the diagram's red arrows), and a call soft-mode RBAC let through but would have refused. */
const isRefusal = (e: StoredEvent) => REFUSALS.has(e.type) || e.type === 'AuthorizationViolationRecorded';

const findEvent = (events: readonly StoredEvent[], position: number): StoredEvent | undefined => {
  const e = events[countUpTo(events, position) - 1];
  return e?.position === position ? e : undefined;
};

const roleOf = (moment: ViewProps['moment'], name: string): RoleDefinition | undefined =>
  (BUILT_IN_ROLES as Record<string, RoleDefinition>)[name] ?? moment.world.access.customRoles[name];

const OUTCOME: Record<AuthorizationEvaluation['outcome'], string> = {
  granted: 'allowed',
  noAssignment: 'refused: the principal holds no role assignment at this scope or above it',
  notGranted: 'refused: no role the principal holds at this scope grants the action',
  excludedByNotAction: "refused: a role grants the action, but its NotActions take it out again",
};

function Refusal({ event, evaluation, roles }: { event: StoredEvent; evaluation: AuthorizationEvaluation | undefined; roles: (name: string) => RoleDefinition | undefined }) {
  const d = event.data as Record<string, unknown>;
  const code = typeof d['code'] === 'string' ? d['code'] : event.type;
  const reason = typeof d['reason'] === 'string' ? d['reason'] : typeof d['why'] === 'string' ? d['why'] : undefined;
  const decided = evaluation?.decidedBy !== undefined ? evaluation.considered[evaluation.decidedBy] : undefined;
  return (
    <div class="refusal" data-testid="refusal">
      <h3>
        Why it was refused: <code>{code}</code>
      </h3>
      {reason && <p class="reason">{reason}</p>}
      {(evaluation || d['action']) && (
        <dl class="rbac">
          <dt>principal</dt>
          <dd data-testid="rbac-principal">{String(d['principal'] ?? event.meta.principal ?? '?')}</dd>
          <dt>action</dt>
          <dd data-testid="rbac-action">
            <code>{String(evaluation?.action ?? d['action'])}</code>
          </dd>
          <dt>scope</dt>
          <dd>
            <code>{String(evaluation?.scope ?? d['scope'] ?? '?')}</code>
          </dd>
          {evaluation && (
            <>
              <dt>decision</dt>
              <dd data-testid="rbac-outcome">{OUTCOME[evaluation.outcome]}</dd>
            </>
          )}
        </dl>
      )}
      {evaluation && (
        <table class="considered" data-testid="rbac-considered">
          <thead>
            <tr>
              <th>role assignment</th>
              <th>at scope</th>
              <th>applies here</th>
              <th>grants the action</th>
              <th>NotAction</th>
            </tr>
          </thead>
          <tbody>
            {evaluation.considered.length === 0 && (
              <tr>
                <td colSpan={5}>none: the principal holds no role assignment at all</td>
              </tr>
            )}
            {evaluation.considered.map((c, i) => (
              <tr key={i} class={i === evaluation.decidedBy ? 'decided' : ''}>
                <td title={describeRole(roles(c.role))}>{c.role}</td>
                <td>
                  <code>{c.scope}</code>
                </td>
                <td>{c.applies ? 'yes' : 'no (another scope)'}</td>
                <td>{c.grants ? 'yes' : 'no'}</td>
                <td>{c.excludedBy ? <code>{c.excludedBy}</code> : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {decided?.excludedBy && (
        <p class="decided-by" data-testid="rbac-decided">
          Decided by role <b>{decided.role}</b> at <code>{decided.scope}</code>: its NotAction <code>{decided.excludedBy}</code> excludes{' '}
          <code>{evaluation!.action}</code>.
        </p>
      )}
    </div>
  );
}

const describeRole = (role: RoleDefinition | undefined): string =>
  role ? `Actions: ${role.actions.join(', ') || '—'}\nNotActions: ${role.notActions.join(', ') || '—'}` : 'a role this log does not define';
