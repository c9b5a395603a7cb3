import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../events/envelope';
import { eventDetail, idAliases, renderMermaidSequence, renderTimelineHtml, sequenceArrows } from './sequence';

let position = 0;
const event = (type: string, data: Record<string, unknown>, meta: Record<string, unknown> = {}): StoredEvent =>
  ({
    position: ++position,
    stream: 's',
    version: 1,
    type,
    data,
    meta: { at: new Date(Date.parse('2025-01-01T09:00:00.000Z') + position * 250).toISOString(), correlationId: 'c', causationId: 'c', session: 'sess', ...meta },
  }) as StoredEvent;

const log = (): StoredEvent[] => [
  event('ScenarioStarted', { scenario: 'x', file: '/tmp/x.yaml', digest: 'sha256:00', steps: 2 }),
  event('ArmTokenIssued', { principal: 'alice', principalId: 'p-1', tokenId: 'tok_secretlikeid', fingerprint: 'sha256:a6b018c02d6dff01', audience: 'arm', expiresAt: 'later' }, { principal: 'alice' }),
  event('RunSubmitted', { runId: 'exp1_1796_5644', workspaceId: 'ws_2tl7p8euyqkn', workspace: 'ws1', experiment: 'exp1', compute: 'cpu' }, { principal: 'alice' }),
  event('RunTokenIssued', { runId: 'exp1_1796_5644', workspaceId: 'ws_2tl7p8euyqkn', workspace: 'ws1', tokenId: 'rtok_u15rjych86kd', fingerprint: 'sha256:9cbeb2894b2865a9', channel: 'ch_5hoee0l0aorb' }),
  event('RunStatusReported', { runId: 'exp1_1796_5644', workspaceId: 'ws_2tl7p8euyqkn', workspace: 'ws1', status: 'Running', step: 'Running' }, { channel: 'ch_5hoee0l0aorb', tokenId: 'rtok_u15rjych86kd' }),
  event('RunCallRefused', { runId: 'exp1_1796_5644', workspaceId: 'ws_2tl7p8euyqkn', workspace: 'ws1', call: 'POST metrics', code: 'InvalidAuthenticationToken', reason: 'long reason' }),
  event('RunFailed', { runId: 'exp1_1796_5644', workspaceId: 'ws_2tl7p8euyqkn', workspace: 'ws1', reason: 'boom' }),
  event('CommandRejected', { command: 'SubmitRun', code: 'AuthorizationFailed', reason: 'The client rita …', principal: 'rita' }, { principal: 'rita' }),
];

describe('sequence diagrams', () => {
  it('draws one arrow per event from the party that acted to the one acted on, participants in lane order, bookkeeping left out', () => {
    const text = renderMermaidSequence(log(), { stable: true });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('sequenceDiagram');
    expect(lines.filter((l) => l.includes('participant')).map((l) => l.trim().split(' ')[1])).toEqual(['Client', 'AAD', 'ARM', 'RP', 'Compute']);
    expect(text).not.toContain('ScenarioStarted');
    expect(lines).toContain('  AAD->>Client: ArmTokenIssued principal=alice fp=fp1');
    expect(lines).toContain('  Client->>RP: alice: RunSubmitted run=r1 experiment=exp1 compute=cpu');
    expect(lines).toContain('  Compute->>RP: RunStatusReported run=r1 status=Running step=Running');
  });

  it('draws refused calls crossed with their error code, and failed work dotted and crossed', () => {
    const text = renderMermaidSequence(log(), { stable: true });
    expect(text).toContain('  Compute-xRP: RunCallRefused ✗ InvalidAuthenticationToken run=r1 call=POST metrics\n');
    expect(text).toContain('  Client-xARM: rita: CommandRejected ✗ AuthorizationFailed command=SubmitRun\n');
    expect(text).toContain('  RP--xClient: RunFailed run=r1\n');
  });

  it('shows a token by its fingerprint only, never its id', () => {
    for (const stable of [true, false]) {
      const text = renderMermaidSequence(log(), { stable }) + renderTimelineHtml(log(), { stable });
      expect(text).not.toContain('tok_secretlikeid');
      expect(text).not.toContain('rtok_u15rjych86kd');
    }
    expect(renderMermaidSequence(log())).toContain('fp=sha256:a6b018c02d6dff01');
  });

  it('aliases ids in order of appearance, so two runs of one scenario draw the same text', () => {
    const alias = idAliases([
      event('RunSubmitted', { runId: 'exp1_111', workspaceId: 'ws_aaa1' }),
      event('RunSubmitted', { runId: 'exp1_222', workspaceId: 'ws_aaa1' }),
      event('ManagementCodeWritten', { runId: 'exp1_222', path: 'azureml/exp1_222/agent' }),
    ]);
    expect(alias('exp1_222 exp1_111 ws_aaa1 azureml/exp1_222/agent')).toBe('r2 r1 ws1 azureml/r2/agent');
    const other = log().map((e) => ({ ...e, data: JSON.parse(JSON.stringify(e.data).replaceAll('ws_2tl7p8euyqkn', 'ws_other').replaceAll('exp1_1796_5644', 'exp1_9_9')) }));
    expect(renderMermaidSequence(other, { stable: true })).toBe(renderMermaidSequence(log(), { stable: true }));
  });

  it('keeps Mermaid syntax out of labels', () => {
    const text = renderMermaidSequence([event('RunCancelRequested', { runId: 'r', by: 'x', step: 'a;b #c <d>' })]);
    expect(text).toContain('step=a#59;b #35;c #60;d#62;');
  });

  it('numbers stable arrows from 1 and gives times otherwise', () => {
    expect(sequenceArrows(log(), { stable: true }).map((a) => [a.position, a.sinceStartMs])).toEqual(log().slice(1).map((_, i) => [i + 1, undefined]));
    expect(sequenceArrows(log())[1]!.sinceStartMs).toBe(250);
  });

  it('gives the detail a reader needs and no join ids', () => {
    expect(eventDetail(event('NodeAssigned', { workspaceId: 'ws_1', workspace: 'ws1', computeId: 'cmp_1', compute: 'cpu', node: 'node-1', runId: 'r' }))).toBe('compute=cpu node=node-1 run=r');
  });
});

describe('the HTML timeline', () => {
  it('is one self-contained page: inline CSS, no script, nothing fetched', () => {
    const page = renderTimelineHtml(log(), { title: 'A <run>' });
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('<title>A &lt;run&gt;</title>');
    expect(page).not.toMatch(/<script|<link|@import|url\(|https?:\/\//i);
    expect(page).toContain('RunCallRefused');
    expect(page).toContain('class="arrow refused ltr"');
    expect(page).toContain('+0.250s');
  });

  it('escapes what the log says', () => {
    const page = renderTimelineHtml([event('RunCancelRequested', { runId: 'r', by: 'x', step: '<img src=x onerror=alert(1)>' })]);
    expect(page).not.toContain('<img');
  });
});
