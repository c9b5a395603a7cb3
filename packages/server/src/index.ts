export { DEFAULT_PORT, LOOPBACK, MAX_PAGE, startServer, type RunningServer, type ServerOptions } from './server';
export { createLogTail, type LogTail, type LogTailListener } from './log-tail';
export { sseMessage, type EventStreamOptions } from './event-stream';
export { SessionSummaries, listScenarios, catalogDocument, type SessionSummary, type ScenarioSummary } from './log-summaries';
export { createPlayer, ScenarioRejected, type Player, type PlayerState, type PlayerView, type PlayHooks, type PlayIssue, type PlayOutcome, type PlayStep, type PreparedScenario, type ScenarioPlayerPort } from './player';
