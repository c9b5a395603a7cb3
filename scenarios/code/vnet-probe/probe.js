// S3.1: calls a scoring replica directly on 127.0.0.1:<argv[2]> — reachable only from compute in
// the replica's virtual network, whose members share one loopback — and logs what came back:
// reached 1 with the HTTP status and score, or reached 0 (nothing listens on this loopback).
const http = require('node:http');
const { Run } = require('@amlsim/run');

const run = Run.getContext();
const port = Number(process.argv[2] ?? 5001);
const body = JSON.stringify({ features: [1, 0, 1] });
const req = http.request(
  { host: '127.0.0.1', port, path: '/score', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: 5000 },
  (res) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (text += d));
    res.on('end', () => {
      run.log('reached', 1);
      run.log('status', res.statusCode);
      run.log('score', JSON.parse(text).score);
      console.log(`127.0.0.1:${port} answered ${res.statusCode}: ${text}`);
    });
  },
);
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  run.log('reached', 0);
  console.log(`127.0.0.1:${port} is not reachable: ${err.code ?? err.message}`);
});
req.end(body);
