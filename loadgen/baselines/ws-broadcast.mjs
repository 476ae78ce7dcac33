// The obvious Node.js broadcast server, for `loadgen fanout --targets node`: the `ws` package's
// WebSocketServer and a Set of sockets per topic. Like `baseline-axum` (whose module doc gives the
// protocol) it does only the fan-out: no sign-in, no history, no resume, no limits.
//
//   node loadgen/baselines/ws-broadcast.mjs --port 4001
import http from 'node:http';
import { WebSocketServer } from 'ws';

const portAt = process.argv.indexOf('--port');
const port = portAt > 0 ? Number(process.argv[portAt + 1]) : 4001;
const topics = new Map(); // name -> { offset, sockets: Set<WebSocket> }
const topic = (name) => {
  if (!topics.has(name)) topics.set(name, { offset: 0, sockets: new Set() });
  return topics.get(name);
};

const PUBLISH = '/api/v1/publish/';
const server = http.createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/healthz') return response.end('ok');
  if (request.method !== 'POST' || !request.url.startsWith(PUBLISH)) {
    response.statusCode = 404;
    return response.end();
  }
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      response.statusCode = 400;
      return response.end('not JSON');
    }
    const name = decodeURIComponent(request.url.slice(PUBLISH.length));
    const t = topic(name);
    t.offset += 1;
    const message = JSON.stringify({ topic: name, offset: t.offset, series: body.points ?? null });
    for (const socket of t.sockets) socket.send(message);
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ offset: t.offset }));
  });
});

const sockets = new WebSocketServer({ server, path: '/api/ws' });
sockets.on('connection', (socket) => {
  const joined = new Set();
  socket.on('message', (data) => {
    let request;
    try {
      request = JSON.parse(data.toString('utf8'));
    } catch {
      return;
    }
    if (request.type !== 'subscribe' || typeof request.topic !== 'string') return;
    const t = topic(request.topic);
    t.sockets.add(socket);
    joined.add(t);
    socket.send(JSON.stringify({ type: 'subscribed', topic: request.topic, offset: t.offset }));
  });
  socket.on('close', () => joined.forEach((t) => t.sockets.delete(socket)));
});

server.listen(port, '127.0.0.1');
