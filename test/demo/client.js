// The demo client: N short HTTP connections to the VIP, C at a time; prints one JSON object.
'use strict';
const http = require('node:http');
const [host, port, total, concurrency] = process.argv.slice(2);
const N = Number(total);
const C = Number(concurrency);
const backends = {};
let ok = 0;
let failed = 0;
let next = 0;
const errors = {};
function one() {
  return new Promise((resolve) => {
    const req = http.get({ host, port: Number(port), path: '/', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const name = body.trim();
        backends[name] = (backends[name] || 0) + 1;
        ok++;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      failed++;
      errors[e.code || e.message] = (errors[e.code || e.message] || 0) + 1;
      resolve();
    });
  });
}
async function worker() {
  while (next < N) {
    next++;
    await one();
  }
}
const t0 = Date.now();
Promise.all(Array.from({ length: C }, worker)).then(() => {
  process.stdout.write(JSON.stringify({ requests: N, ok, failed, backends, errors, ms: Date.now() - t0 }) + '\n');
});
