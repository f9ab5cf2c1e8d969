import { GroupView, notLoopback, renderTerminal, startWebView } from '@synod/inspector';
import type { Transport } from '@synod/transport';
import { UsageError } from './usage.js';

export interface InspectOptions {
  readonly transport: Transport;
  readonly group: string;
  readonly json: boolean;
  /** Where to serve the web view (parseListen of --web). */
  readonly web: { readonly host: string; readonly port: number } | undefined;
  /** Resolves when the viewer is to stop (SIGINT, SIGTERM). */
  readonly stop: Promise<void>;
}

/** `HOST:PORT` or `[::1]:PORT` as host and port. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || !Number.isSafeInteger(port) || port > 65_535)
    throw new UsageError(`--web takes HOST:PORT, e.g. 127.0.0.1:8080, got ${text}`);
  const host = match[1]!.replace(/^\[|\]$/g, '');
  const refused = notLoopback(host);
  if (refused !== undefined) throw new UsageError(refused);
  return { host, port };
}

/**
 * `synod inspect --group G`: watches a group's actors until stopped.
 * - In a terminal: the view (renderTerminal) redrawn four times a second.
 * - `--json`: one JSON line per node summary and per event, for scripts.
 * - `--web HOST:PORT`: the web view; the terminal shows where.
 */
export async function inspect(o: InspectOptions): Promise<void> {
  const view = new GroupView({ transport: o.transport, group: o.group });
  const server = o.web === undefined ? undefined : await startWebView(view, o.web.host, o.web.port);
  let timer: ReturnType<typeof setInterval> | undefined;
  if (o.json) {
    view.onBatch((batch) => {
      const lines = [
        JSON.stringify({
          type: 'node',
          node: batch.node,
          at: batch.at,
          ...batch.summary,
          actors: batch.actors,
          dropped: batch.dropped,
        }),
        ...batch.events.map((e) => JSON.stringify({ type: 'event', node: batch.node, ...e })),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  } else {
    const draw = () => {
      const head = server === undefined ? '' : `web view: ${server.url}\n`;
      const width = process.stdout.columns ?? 120;
      const rows = process.stdout.rows ?? 40;
      // Clear the screen and draw from the top: one write, so it does not flicker.
      process.stdout.write(
        `\x1b[H\x1b[2J${head}${renderTerminal(view, { width, events: Math.max(5, rows - 12) })}`,
      );
    };
    draw();
    timer = setInterval(draw, 250);
  }
  await o.stop;
  if (timer !== undefined) clearInterval(timer);
  view.stop();
  await server?.stop();
}
