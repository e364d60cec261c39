// Peer: Node's `net` TCP echo and `dgram` UDP echo on 127.0.0.1.
// Prints "tcp PORT udp PORT" when ready.
'use strict';
const net = require('net');
const dgram = require('dgram');
const server = net.createServer((c) => {
  c.setNoDelay(true);
  c.on('data', (d) => { if (!c.write(d)) { c.pause(); c.once('drain', () => c.resume()); } });
  c.on('error', () => {});
});
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  const port = server.address().port;
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(m, r.port, r.address));
  u.bind(port, '127.0.0.1', () => console.log(`tcp ${port} udp ${port}`));
});
