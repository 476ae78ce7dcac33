import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
};

/// A plain static file server, as a CDN or another web server would serve the static build: files
/// as they are, and `index.html` for any other path (the app routes in the browser).
export class StaticSite {
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async serve(root: string, host: string, port: number): Promise<StaticSite> {
    const server = http.createServer(async (request, response) => {
      const wanted = path.normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname));
      let file = path.join(root, wanted);
      const isFile = await stat(file).then((s) => s.isFile(), () => false);
      if (!file.startsWith(root) || !isFile) file = path.join(root, 'index.html');
      response.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
      createReadStream(file).pipe(response);
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return new StaticSite(server, `http://${host}:${port}`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
