import { createServer, type Server, type ServerResponse } from 'node:http';
import type { GroupView } from './group-view.js';
import { PAGE } from './page.js';

/** What the page gets, as JSON: the view's nodes, leader and latest events. */
export function viewState(view: GroupView) {
  return {
    group: view.group,
    leader: view.leader(),
    malformed: view.malformed,
    nodes: view.nodes(),
    events: view.events().slice(-60),
  };
}

/**
 * Why `host` may not serve the web view, or undefined when it may: the page has no
 * authentication, so it is served on this machine only.
 */
export function notLoopback(host: string): string | undefined {
  return ['127.0.0.1', 'localhost', '::1'].includes(host)
    ? undefined
    : `--web serves on a loopback address only (127.0.0.1, ::1, localhost), not ${host}`;
}

export interface WebView {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * `synod inspect --web HOST:PORT`: one page (`/`) that draws the group live from a stream of
 * server-sent events (`/events`, a state at most every `intervalMs` while batches arrive), and
 * the state once as JSON (`/state`). Only loopback hosts are taken: the page has no
 * authentication.
 */
export async function startWebView(
  view: GroupView,
  host: string,
  port: number,
  intervalMs = 200,
): Promise<WebView> {
  const refused = notLoopback(host);
  if (refused !== undefined) throw new Error(refused);
  const streams = new Set<ServerResponse>();
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/') {
      response.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      });
      response.end(PAGE);
    } else if (path === '/state') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(viewState(view)));
    } else if (path === '/events') {
      response.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      response.write(`data: ${JSON.stringify(viewState(view))}\n\n`);
      streams.add(response);
      request.on('close', () => streams.delete(response));
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found\n');
    }
  });
  let due = false;
  const send = () => {
    due = false;
    const data = `data: ${JSON.stringify(viewState(view))}\n\n`;
    for (const stream of streams) stream.write(data);
  };
  const timer = setInterval(() => {
    if (due) send();
  }, intervalMs);
  const off = view.onBatch(() => {
    due = true;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`,
    async stop() {
      clearInterval(timer);
      off();
      for (const stream of streams) stream.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
