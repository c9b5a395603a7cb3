// What the hostile scripts share: a raw control-plane call and a search for unix sockets.
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const ownSocket = process.env.AZUREML_SERVICE_ENDPOINT.replace('unix://', '');

/** One control-plane call, with any token on any socket; resolves with the HTTP status and error code. */
const call = (socketPath, route, token, body = {}) =>
  new Promise((resolve) => {
    const req = http.request({ socketPath, path: route, method: 'POST', agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let code;
        try {
          code = JSON.parse(text).error?.code;
        } catch {}
        resolve({ status: res.statusCode, code });
      });
    });
    req.on('error', (e) => resolve({ status: 0, code: e.code }));
    req.end(JSON.stringify(body));
  });

/** Every unix socket on this machine's file system that is not our own (proc and sys aside). */
const otherSockets = () => {
  const found = [];
  const walk = (dir, depth) => {
    if (depth > 8) return;
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (p === '/proc' || p === '/sys' || p === '/dev') continue;
      if (e.isSocket() && p !== ownSocket) found.push(p);
      else if (e.isDirectory()) walk(p, depth + 1);
    }
  };
  walk('/', 0);
  return found;
};

/** 1 when `fn` throws (the attempt was refused), 0 when it worked. */
const refused = (fn) => {
  try {
    fn();
    return 0;
  } catch {
    return 1;
  }
};

module.exports = { call, otherSockets, ownSocket, refused };
