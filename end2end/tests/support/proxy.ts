import http from 'node:http';
import net from 'node:net';

/// A TCP proxy on loopback that the test can cut and restore, to play a network outage between the
/// browser and the server while the server keeps running (and publishing).
export class CuttableProxy {
  private server?: net.Server;
  private sockets = new Set<net.Socket>();

  private constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  static async create(target: number): Promise<CuttableProxy> {
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)),
    );
    await new Promise((r) => probe.close(r));
    const proxy = new CuttableProxy(port, target);
    await proxy.restore();
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /// Accepts connections again.
  async restore(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', () => r()));
  }

  /// Drops every open connection and refuses new ones: no close frame reaches anyone.
  async cut(): Promise<void> {
    const closed = new Promise((r) => this.server?.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/// An HTTP proxy on loopback that plays a hostile network: it can refuse WebSocket upgrades (as a
/// proxy that does not speak them answers: 403) and SSE streams (502), and cut the streams open
/// through it, while everything else passes.
export class FilteringProxy {
  private server?: http.Server;
  /// Every connection through the proxy (both ends), to close them all at the end.
  private sockets = new Set<net.Socket>();
  /// Open SSE streams: the browser's socket and the request to the server.
  private streams = new Set<{ socket: net.Socket; upstream: http.ClientRequest }>();
  allowWebSocket = true;
  allowSse = true;
  /// Upgrades refused so far, for tests that check the client really tried.
  refusedUpgrades = 0;
  /// Bytes of the browser's connections that have closed (open ones are read live).
  private closedBytes = { toBrowser: 0, fromBrowser: 0 };
  private browserSockets = new Set<net.Socket>();

  private constructor(private readonly target: number) {}

  static async create(target: number, options: { webSocket?: boolean; sse?: boolean } = {}): Promise<FilteringProxy> {
    const proxy = new FilteringProxy(target);
    proxy.allowWebSocket = options.webSocket ?? true;
    proxy.allowSse = options.sse ?? true;
    proxy.server = http.createServer((req, res) => proxy.forward(req, res));
    proxy.server.on('connection', (socket) => {
      proxy.track(socket);
      proxy.browserSockets.add(socket);
      socket.on('close', () => {
        proxy.browserSockets.delete(socket);
        proxy.closedBytes.toBrowser += socket.bytesWritten;
        proxy.closedBytes.fromBrowser += socket.bytesRead;
      });
    });
    proxy.server.on('upgrade', (req, socket, head) => proxy.upgrade(req, socket as net.Socket, head));
    await new Promise<void>((r) => proxy.server!.listen(0, '127.0.0.1', () => r()));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as net.AddressInfo).port}`;
  }

  /// Bytes that crossed between the browser and the proxy so far, each way (TCP payload).
  bytes(): { toBrowser: number; fromBrowser: number } {
    let { toBrowser, fromBrowser } = this.closedBytes;
    for (const s of this.browserSockets) {
      toBrowser += s.bytesWritten;
      fromBrowser += s.bytesRead;
    }
    return { toBrowser, fromBrowser };
  }

  /// Refuses new SSE streams and drops the open ones (no `close` event reaches anyone).
  blockSse(): void {
    this.allowSse = false;
    for (const { socket, upstream } of this.streams) {
      socket.destroy();
      upstream.destroy();
    }
    this.streams.clear();
  }

  async close(): Promise<void> {
    const closed = new Promise((r) => this.server?.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private track(socket: net.Socket): void {
    if (this.sockets.has(socket)) return; // a kept-alive connection, reused
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const isStream = (req.url ?? '').startsWith('/api/stream/');
    if (isStream && !this.allowSse) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end('streams are not allowed here');
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: this.target, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    upstream.on('socket', (socket) => this.track(socket));
    if (isStream) {
      const stream = { socket: req.socket, upstream };
      this.streams.add(stream);
      req.socket.on('close', () => {
        this.streams.delete(stream);
        upstream.destroy();
      });
    }
    req.pipe(upstream);
  }

  private upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    if (!this.allowWebSocket) {
      this.refusedUpgrades += 1;
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.track(socket);
    const upstream = net.connect(this.target, '127.0.0.1', () => {
      const headers = Object.entries(req.headers).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}: ${x}`));
      upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`);
      upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    this.track(upstream);
    for (const s of [socket, upstream]) s.on('error', () => s.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
  }
}
