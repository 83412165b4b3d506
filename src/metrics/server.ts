import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { describeError, MabeamError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';

/** The port Prometheus scrapes by default (deploy/prometheus/prometheus.yml). */
export const defaultMetricsPort = 9464;

export interface ServeMetricsOptions {
  /** The registry whose metrics `GET /metrics` answers. */
  registry: Registry;
  /** Port to listen on (default 9464); 0 picks a free one. */
  port?: number;
  /** Address to listen on (default 0.0.0.0, every IPv4 interface). */
  host?: string;
  logger?: Logger;
}

export interface MetricsServer {
  /** The port actually bound (the free one chosen when asked for port 0). */
  port: number;
  /** Where the metrics can be fetched, e.g. http://127.0.0.1:9464/metrics. */
  url: string;
  /** Stops listening and ends open connections (Prometheus keeps them alive). */
  close(): Promise<void>;
}

/**
 * Serves a registry over HTTP: `GET /metrics` (Prometheus text format),
 * `GET /healthz` (200 `ok`), 404 for anything else. Resolves once listening;
 * rejects with `PORT_IN_USE` when the port is taken, `INVALID_OPTIONS` when
 * the port or address cannot be used at all.
 */
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsServer> {
  const { registry, logger } = options;
  const port = options.port ?? defaultMetricsPort;
  const host = options.host ?? '0.0.0.0';
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new MabeamError('INVALID_OPTIONS', `The metrics port must be a whole number from 0 to 65535, not ${String(port)}.`, { details: { port } });
  }

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const readable = request.method === 'GET' || request.method === 'HEAD';
    if (readable && path === '/metrics') {
      const body = await registry.metrics();
      response.writeHead(200, { 'content-type': registry.contentType });
      response.end(body);
    } else if (readable && path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('ok');
    } else {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('not found: the metrics are at GET /metrics\n');
    }
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      logger?.warn({ ns: 'metrics', error: describeError(error) }, 'could not collect metrics');
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`could not collect metrics: ${describeError(error)}\n`);
    });
  });

  await new Promise<void>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      server.off('listening', listening);
      if (error.code === 'EADDRINUSE') {
        reject(new MabeamError('PORT_IN_USE', `Cannot serve metrics on ${host}:${port}: the port is already in use. Choose another with --metrics-port (0 picks a free one).`, { cause: error, details: { host, port } }));
      } else if (error.code === 'EACCES' || error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(new MabeamError('INVALID_OPTIONS', `Cannot serve metrics on ${host}:${port}: ${error.message}.`, { cause: error, details: { host, port } }));
      } else {
        reject(error);
      }
    };
    const listening = (): void => {
      server.off('error', failed);
      resolve();
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen(port, host);
  });
  server.on('error', (error: Error) => logger?.warn({ ns: 'metrics', error: error.message }, 'metrics server error'));

  const bound = (server.address() as AddressInfo).port;
  const url = `http://${reachableHost(host)}:${bound}/metrics`;
  logger?.info({ ns: 'metrics', url }, 'serving metrics');

  let closing: Promise<void> | undefined;
  return {
    port: bound,
    url,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      })),
  };
}

/** A host name a client on this machine can use for a listening address. */
function reachableHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
