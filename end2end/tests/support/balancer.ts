import net from 'node:net';

/// Where one connection through the balancer went: the first line the browser sent on it (`GET
/// /api/ws HTTP/1.1`) and the backend's port.
export interface Routed {
  request: string;
  backend: number;
}

/// A round-robin TCP load balancer on loopback, as operators put in front of several nodes: no
/// sticky sessions, each new connection to the next backend, a backend that refuses a connection
/// skipped for the next. WebSocket upgrades pass through like any other bytes.
export class RoundRobin {
  private server?: net.Server;
  private sockets = new Set<net.Socket>();
  private next = 0;
  /// Every connection so far, in the order they were made.
  readonly routed: Routed[] = [];

  private constructor(private readonly backends: number[]) {}

  static async create(backends: number[]): Promise<RoundRobin> {
    const balancer = new RoundRobin(backends);
    balancer.server = net.createServer((client) => balancer.accept(client));
    await new Promise<void>((r) => balancer.server!.listen(0, '127.0.0.1', () => r()));
    return balancer;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as net.AddressInfo).port}`;
  }

  /// The backend of the latest connection whose request line starts with `prefix`.
  backendOf(prefix: string): number | undefined {
    return [...this.routed].reverse().find((r) => r.request.startsWith(prefix))?.backend;
  }

  async close(): Promise<void> {
    const closed = new Promise((r) => this.server?.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private accept(client: net.Socket): void {
    this.track(client);
    client.pause();
    // Read the request line first only to record where each request went; routing ignores it.
    client.once('readable', () => {
      const head: Buffer | null = client.read();
      if (head === null) {
        client.destroy(); // closed before it said anything
        return;
      }
      const request = head.toString('latin1').split('\r\n', 1)[0];
      this.connect(client, head, request, this.backends.length);
    });
  }

  private connect(client: net.Socket, head: Buffer, request: string, triesLeft: number): void {
    if (triesLeft === 0 || client.destroyed) {
      client.destroy();
      return;
    }
    const backend = this.backends[this.next++ % this.backends.length];
    const upstream = net.connect(backend, '127.0.0.1');
    let connected = false;
    upstream.on('error', () => {
      upstream.destroy();
      if (!connected) this.connect(client, head, request, triesLeft - 1); // refused: the next one
    });
    upstream.once('connect', () => {
      connected = true;
      this.track(upstream);
      this.routed.push({ request, backend });
      upstream.write(head);
      client.pipe(upstream).pipe(client);
      client.resume();
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  }
}
