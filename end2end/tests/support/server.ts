import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/// A livedash server of the test's own, for tests that stop and restart it.
export class OwnServer {
  private child?: ChildProcess;
  /// The API key per demo tenant, as the server printed them at its last start.
  readonly keys = new Map<string, string>();
  readonly database = path.join(os.tmpdir(), `livedash-e2e-own-${process.pid}-${Date.now()}.db`);

  private constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  /// Serves the site at `root` from the next start on: a deploy of another build.
  useSite(root: string): void {
    this.env.LEPTOS_SITE_ROOT = root;
  }

  /// `env` adds to or overrides the server's environment (e.g. smaller snapshots); `port` is a
  /// free one unless given.
  static async create(env: Record<string, string> = {}, port?: number): Promise<OwnServer> {
    return new OwnServer(port ?? (await freePort()), env);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /// CPU time the server process has used so far (user + system), in ms, from /proc.
  async cpuMs(): Promise<number> {
    const { readFile } = await import('node:fs/promises');
    const stat = await readFile(`/proc/${this.child!.pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // Linux reports clock ticks of 1/100 s (USER_HZ)
  }

  /// Starts the binary the suite was built with, on the same port and database every time.
  async start(): Promise<void> {
    this.child = spawn(process.env.LIVEDASH_BIN ?? '../target/debug/livedash', [], {
      env: {
        ...process.env,
        LEPTOS_SITE_ROOT: process.env.LEPTOS_SITE_ROOT ?? '../target/site',
        LEPTOS_SITE_ADDR: `127.0.0.1:${this.port}`,
        LIVEDASH_DATABASE: this.database,
        LIVEDASH_DEMO: 'on',
        // Every test signs in from 127.0.0.1: the per-address sign-in throttle is for attackers.
        LIVEDASH_LOGINS_PER_MIN_PER_ADDRESS: '100000',
        // Metrics on a loopback port of their own, free whatever else runs beside.
        LIVEDASH_METRICS_ADDR: '127.0.0.1:0',
        RUST_LOG: 'warn',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      for (const match of chunk.matchAll(/^\s+([a-z0-9-]+)\s+(ld_[0-9a-f]{16}_[0-9a-f]{32})$/gm)) {
        this.keys.set(match[1], match[2]);
      }
    });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        // Ready, not only alive: a node of a deployment is linked to its Redis by then.
        if ((await fetch(`${this.url}/readyz`)).ok) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the server did not become ready within 30 s');
  }

  /// Publishes `body` to `topic` with `tenant`'s API key (waiting until the server has printed it);
  /// returns the HTTP status.
  async publish(tenant: string, topic: string, body: unknown): Promise<number> {
    const deadline = Date.now() + 10_000;
    while (!this.keys.has(tenant)) {
      if (Date.now() > deadline) throw new Error(`no API key printed for ${tenant}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const response = await fetch(`${this.url}/api/v1/publish/${topic}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.keys.get(tenant)}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return response.status;
  }

  /// Stops it the way an operator does (SIGTERM: sockets get 1001) and waits until it has exited.
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
