import { pino, type Logger as PinoLogger } from 'pino';

/**
 * Structured logging with namespaces. Everything that logs takes a `Logger`
 * as a dependency; `createLogger` is the one place that decides where the
 * lines go (stderr, so command output on stdout stays clean).
 */
export type Logger = PinoLogger;

export interface LoggerOptions {
  level?: string;
  name?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env['MABEAM_LOG_LEVEL'] ?? 'warn';
  return pino({ name: options.name ?? 'mabeam', level, base: undefined }, pino.destination(2));
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export function child(logger: Logger, namespace: string): Logger {
  return logger.child({ ns: namespace });
}
