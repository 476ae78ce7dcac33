import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from './server';

/// A `redis-server` of the test's own on a free loopback port, keeping nothing on disk (scripts/test
/// installs Debian's package). Never the machine's Redis.
export class OwnRedis {
  private child?: ChildProcess;

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort());
    redis.child = spawn('redis-server', ['--port', String(redis.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 30_000;
    while (!(await accepts(redis.port))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not open port ${redis.port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
