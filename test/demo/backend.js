// A demo real server: answers every HTTP request with its name. Plain JS so it starts fast in the VM.
'use strict';
const http = require('node:http');
const [name, port] = process.argv.slice(2);
http
  .createServer((req, res) => {
    res.setHeader('connection', 'close');
    res.end(`${name}\n`);
  })
  .listen(Number(port), () => process.stdout.write(`backend ${name} listening on ${port}\n`));
