import { Counter, type Registry } from 'prom-client';

export interface MetricsOptions {
  /** The prom-client registry to register in (tests give each their own). */
  registry: Registry;
  /** Labels put on every metric, e.g. { service: 'coordinator' }. */
  labels?: Record<string, string>;
}

export interface Metrics {
  registry: Registry;
  deadLetters: Counter<'topic' | 'reason'>;
}

/** Creates the product's metrics in the given registry. */
export function createMetrics(options: MetricsOptions): Metrics {
  const { registry } = options;
  if (options.labels) registry.setDefaultLabels(options.labels);
  return {
    registry,
    deadLetters: new Counter({
      name: 'mabeam_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by source topic and reason code.',
      labelNames: ['topic', 'reason'],
      registers: [registry],
    }),
  };
}
