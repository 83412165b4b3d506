import type { StopsForGood } from '../runtime/stopped.ts';
import { MabeamError } from '../errors.ts';
import { explainKafkaError, loginHint } from '../security/kafkaErrors.ts';
import { progress } from './output.ts';

/**
 * Waits for SIGTERM / SIGINT (or, started over IPC, the parent going away), or
 * for any of `parts` to stop for good.
 * A signal resolves with its name (the command then shuts down and exits 0); a part that
 * stopped for good is said on stderr and the process exits with code 1, so
 * whatever runs it (systemd, Kubernetes, `mabeam supervise`) restarts it.
 * `cleanup` runs first, bounded by a few seconds.
 */
export async function untilSignalOrStopped(parts: StopsForGood[], cleanup: () => Promise<unknown>): Promise<string> {
  const signal = new Promise<{ signal: string }>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => resolve({ signal: s }));
    // Started by a parent over IPC (a supervisor, a test, a benchmark): when the parent is gone, stop too.
    if (process.send) process.once('disconnect', () => resolve({ signal: 'parent gone' }));
  });
  const stopped = parts.map((p) => p.stoppedForGood.then((error) => ({ error })));
  const first = await Promise.race([signal, ...stopped]);
  if ('signal' in first) return first.signal;
  const error = explainKafkaError(first.error, loginHint()) ?? first.error;
  progress(`stopped for good: ${error.message}${error instanceof MabeamError ? ` [${error.code}]` : ''}`);
  const bounded = new Promise((resolve) => setTimeout(resolve, 5_000).unref());
  await Promise.race([cleanup().catch(() => undefined), bounded]);
  return process.exit(1);
}
