// A hostile training script in workspace ws1 (scenarios/hostile-run.yaml). It tries to reach
// another run, to take over its own channel, and leaves its token behind for a later run on
// the same node. Each attempt's outcome is logged as a metric (1 = refused / 0 = got through).
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { Run } = require('@amlsim/run');
const { call, otherSockets, ownSocket, refused } = require('./lib');

const run = Run.getContext();
const token = process.env.AZUREML_RUN_TOKEN;
const me = process.env.AZUREML_RUN_ID;
const victimWorkspace = process.argv[2] ?? 'ws2';
const dir = path.dirname(ownSocket);

(async () => {
  // (a) Another run's socket: none is visible here; any that were would refuse our token.
  const sockets = otherSockets();
  let accepted = 0;
  for (const s of sockets) if ((await call(s, `/workspaces/ws1/runs/${me}/heartbeat`, token)).status === 200) accepted++;
  run.log('other_sockets_found', sockets.length);
  run.log('other_socket_calls_accepted', accepted);
  // Our own channel, asked for another workspace's run: refused and recorded (S1.3).
  const crossed = await call(ownSocket, `/workspaces/${victimWorkspace}/runs/${me}/snapshot`, token);
  run.log('cross_workspace_refused', crossed.status === 403 ? 1 : 0);
  // A forged token: our own with its claims changed (the signature no longer matches).
  const [h, , s] = token.split('.');
  const forgedClaims = Buffer.from(JSON.stringify({ aud: 'https://ml.azure.com/', wsn: victimWorkspace, run: me, chn: 'any', exp: 4102444800, jti: 'x' })).toString('base64url');
  const forged = await call(ownSocket, `/workspaces/${victimWorkspace}/runs/${me}/snapshot`, `${h}.${forgedClaims}.${s}`);
  run.log('forged_token_refused', forged.status === 401 ? 1 : 0);

  // (b) Take over our own channel: delete, rename or replace the socket, or add one beside it.
  run.log('unlink_refused', refused(() => fs.unlinkSync(ownSocket)));
  run.log('rename_refused', refused(() => fs.renameSync(ownSocket, `${ownSocket}.old`)));
  run.log('write_file_refused', refused(() => fs.writeFileSync(path.join(dir, 'planted'), 'x')));
  const listened = await new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(path.join(dir, 'evil.sock'), () => server.close(() => resolve(true)));
  });
  run.log('create_socket_refused', listened ? 0 : 1);
  const still = await call(ownSocket, `/workspaces/ws1/runs/${me}/heartbeat`, token);
  run.log('own_socket_still_works', still.status === 200 ? 1 : 0);

  // (c) Leave the token on the node's temporary disk (S4.6: not encrypted, kept between runs).
  fs.writeFileSync('/tmp/stolen-run-token', JSON.stringify({ token, runId: me, socket: ownSocket }));
})();
