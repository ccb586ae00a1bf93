// The demo client: N short HTTP connections to the VIP, C at a time; prints one JSON object (failures
// name the client port and when, for matching them against the LB's tables).
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
const failures = [];
const t0 = Date.now();
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
    let lport = 0;
    const started = Date.now() - t0;
    req.on('socket', (s) => s.on('connect', () => (lport = s.localPort)));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => {
      failed++;
      const why = e.code || e.message;
      errors[why] = (errors[why] || 0) + 1;
      if (failures.length < 20) failures.push({ port: lport || (req.socket && req.socket.localPort) || 0, why, started_ms: started });
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
Promise.all(Array.from({ length: C }, worker)).then(() => {
  process.stdout.write(JSON.stringify({ requests: N, ok, failed, backends, errors, failures, ms: Date.now() - t0 }) + '\n');
});
