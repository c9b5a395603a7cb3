// The second hostile script (scenarios/hostile-run.yaml): on the same node after the first
// run ended, it finds that run's token on the temporary disk and replays it.
const fs = require('node:fs');
const { Run } = require('@amlsim/run');
const { call, ownSocket } = require('./lib');

const run = Run.getContext();
(async () => {
  const stolen = JSON.parse(fs.readFileSync('/tmp/stolen-run-token', 'utf8'));
  run.log('found_stolen_token', stolen.token ? 1 : 0);
  // The first run's channel closed with it: its socket is gone.
  run.log('old_socket_gone', fs.existsSync(stolen.socket) && stolen.socket !== ownSocket ? 0 : 1);
  // Replayed on our own channel, for the run it belongs to: refused (another channel's token, and revoked).
  const replayed = await call(ownSocket, `/workspaces/ws1/runs/${stolen.runId}/metrics`, stolen.token, { batch: 1, rows: [{ kind: 'scalar', name: 'stolen', value: 1 }] });
  run.log('replay_refused', replayed.status === 403 || replayed.status === 401 ? 1 : 0);
  // And for our own run: refused (the token is another run's).
  const asMine = await call(ownSocket, `/workspaces/ws1/runs/${process.env.AZUREML_RUN_ID}/metrics`, stolen.token, { batch: 1, rows: [] });
  run.log('replay_as_own_refused', asMine.status === 403 ? 1 : 0);
})();
