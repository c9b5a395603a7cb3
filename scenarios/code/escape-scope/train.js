// A script that tries to use its run token outside its scope: to write metrics into another
// workspace. The platform refuses it (AuthorizationFailed, S1.3) and records the attempt.
const http = require('node:http');
const token = process.env.AZUREML_RUN_TOKEN;
const socketPath = process.env.AZUREML_SERVICE_ENDPOINT.replace('unix://', '');
const other = process.argv[2] ?? 'ws2';
const path = `/workspaces/${other}/runs/${process.env.AZUREML_RUN_ID}/metrics`;
const req = http.request({ socketPath, path, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
  let body = '';
  res.on('data', (c) => (body += c));
  res.on('end', () => {
    console.log(`writing into ${other} was answered ${res.statusCode}: ${JSON.parse(body).error?.code}`);
    process.exit(res.statusCode === 200 ? 1 : 0);
  });
});
req.end(JSON.stringify({ batch: 1, rows: [{ kind: 'scalar', name: 'stolen', value: 1, step: 0, at: new Date().toISOString() }] }));
