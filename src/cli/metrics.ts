import { InvalidArgumentError } from 'commander';
import type { Metrics } from '../metrics/metrics.ts';
import { serveMetrics, type MetricsServer } from '../metrics/server.ts';
import type { Logger } from '../log/logger.ts';
import { progress } from './output.ts';

/** Help text of `--metrics-port`, the same on every long-running command. */
export const metricsPortHelp = 'serve Prometheus metrics at http://0.0.0.0:<port>/metrics while running (deploy/prometheus scrapes 9464; 0 = a free port)';

/** Parses `--metrics-port`: a whole number from 0 to 65535. */
export function metricsPort(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError(`expected a port from 0 to 65535, got "${value}"`);
  return n;
}

/**
 * Starts the /metrics endpoint for this process's registry when `--metrics-port`
 * was given, and says where; resolves to a `close()` that is safe to call
 * either way.
 */
export async function startMetricsServer(metrics: Metrics, port: number | undefined, logger: Logger): Promise<() => Promise<void>> {
  if (port === undefined) return async () => undefined;
  const server: MetricsServer = await serveMetrics({ registry: metrics.registry, port, logger });
  progress(`metrics served on port ${server.port} of every interface: ${server.url}`);
  return () => server.close();
}
