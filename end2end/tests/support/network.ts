import http from 'node:http';
import net from 'node:net';

/// What the network between the browser and the server does right now.
export type Fault =
  /// Everything passes.
  | 'none'
  /// Every connection is dropped and new ones are refused at once (an unplugged cable on a LAN).
  | 'cut'
  /// Nothing passes either way and nothing closes: open connections go silent, new requests are
  /// never answered (a half-open path: a NAT that forgot the flow, a dead Wi-Fi access point).
  | 'blackhole'
  /// Every byte arrives `latencyMs` late, each way.
  | 'latency';

/// A programmable HTTP proxy on loopback between the browser and a livedash server, for playing
/// the networks a user meets: cut, half-open black hole, high latency, and proxies that refuse
/// WebSocket upgrades, SSE streams or let polls hang. Everything it forwards goes through one gate
/// per direction, so a fault applies at once to open connections and new ones alike.
export class FaultyNetwork {
  private server?: http.Server;
  private sockets = new Set<net.Socket>();
  /// Open SSE responses, to drop when SSE becomes refused.
  private streams = new Set<http.ServerResponse>();
  fault: Fault = 'none';
  latencyMs = 2_000;
  /// Answer WebSocket upgrades with 403 (a proxy that does not speak WebSocket).
  refuseUpgrades = false;
  /// Answer SSE requests with 502 (a proxy that buffers or forbids streams).
  refuseSse = false;
  /// Never answer polls (`/api/v1/dashboards/{id}/updates`), nor close them.
  hangPolls = false;
  /// Requests of each kind seen, for tests that check the client really tried.
  readonly seen = { upgrades: 0, streams: 0, polls: 0 };
  /// Writes the latency holds back, in the order they were made, and the timer that sends them.
  private late: { due: number; write: () => void }[] = [];
  private lateTimer?: NodeJS.Timeout;

  private constructor(private readonly target: number) {}

  static async create(target: number): Promise<FaultyNetwork> {
    const network = new FaultyNetwork(target);
    const server = http.createServer((req, res) => network.forward(req, res));
    server.keepAliveTimeout = 60_000;
    server.on('connection', (socket) => {
      if (network.fault === 'cut') {
        socket.destroy();
        return;
      }
      network.track(socket);
    });
    server.on('upgrade', (req, socket, head) => network.upgrade(req, socket as net.Socket, head));
    network.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return network;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as net.AddressInfo).port}`;
  }

  /// Sets the fault. A cut drops every open connection (no close frame reaches anyone); so does the
  /// end of a black hole, as a NAT that forgot the flows answers their next packet with a reset.
  set(fault: Fault): void {
    const was = this.fault;
    this.fault = fault;
    if (fault === 'cut' || (was === 'blackhole' && fault !== 'blackhole')) this.dropAll();
  }

  /// Drops every open connection, whatever the fault.
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
    for (const res of this.streams) res.destroy();
    this.streams.clear();
  }

  /// Refuses new SSE streams and drops the open ones.
  blockSse(): void {
    this.refuseSse = true;
    for (const res of this.streams) res.destroy();
    this.streams.clear();
  }

  async close(): Promise<void> {
    const closed = new Promise((r) => this.server?.close(r));
    clearTimeout(this.lateTimer);
    this.late = [];
    this.dropAll();
    await closed;
  }

  /// Passes `chunk` on as the fault says: at once, late, or never; always in the order written.
  private gate(write: () => void): void {
    switch (this.fault) {
      case 'none':
        // Nothing overtakes what the latency still holds back: a write that went out before a
        // delayed one would reorder the stream (a body chunk before its response's headers).
        if (this.late.length === 0) return write();
        return this.delay(write, 0);
      case 'latency':
        return this.delay(write, this.latencyMs);
      default:
        return; // cut (the connection is going anyway) or black hole: lost
    }
  }

  /// Queues `write` to go out `ms` from now, never before what was queued earlier: one queue,
  /// drained in order by one timer (timers of different delays are not ordered by Node).
  private delay(write: () => void, ms: number): void {
    const last = this.late.length > 0 ? this.late[this.late.length - 1].due : 0;
    this.late.push({ due: Math.max(Date.now() + ms, last), write });
    this.drainLate();
  }

  private drainLate(): void {
    if (this.lateTimer !== undefined || this.late.length === 0) return;
    this.lateTimer = setTimeout(() => {
      this.lateTimer = undefined;
      while (this.late.length > 0 && this.late[0].due <= Date.now()) this.late.shift()!.write();
      this.drainLate();
    }, Math.max(0, this.late[0].due - Date.now()));
  }

  private relay(from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk) => this.gate(() => to.write(chunk)));
    from.on('end', () => this.gate(() => to.end()));
  }

  private track(socket: net.Socket): void {
    if (this.sockets.has(socket)) return;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    const isStream = url.startsWith('/api/stream/');
    const isPoll = /^\/api\/v1\/dashboards\/\d+\/updates/.test(url);
    if (isStream) this.seen.streams += 1;
    if (isPoll) this.seen.polls += 1;
    if (this.fault === 'blackhole' || (isPoll && this.hangPolls)) {
      req.resume(); // read it, answer never
      return;
    }
    if (isStream && this.refuseSse) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end('streams are not allowed here');
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: this.target, method: req.method, path: url, headers: req.headers, agent: false },
      (answer) => {
        this.gate(() => res.writeHead(answer.statusCode ?? 502, answer.headers));
        answer.on('data', (chunk) => this.gate(() => res.write(chunk)));
        answer.on('end', () => this.gate(() => res.end()));
      },
    );
    upstream.on('error', () => res.destroy());
    upstream.on('socket', (socket) => this.track(socket));
    if (isStream) {
      this.streams.add(res);
      res.on('close', () => {
        this.streams.delete(res);
        upstream.destroy();
      });
    }
    req.on('data', (chunk) => this.gate(() => upstream.write(chunk)));
    req.on('end', () => this.gate(() => upstream.end()));
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    this.seen.upgrades += 1;
    this.track(socket);
    if (this.fault === 'blackhole') return; // never answered
    if (this.refuseUpgrades) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const upstream = net.connect(this.target, '127.0.0.1', () => {
      const headers = Object.entries(req.headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`));
      upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`);
      upstream.write(head);
      this.relay(socket, upstream);
      this.relay(upstream, socket);
    });
    this.track(upstream);
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
  }
}
