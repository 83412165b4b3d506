import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceName, ServicePorts, ServiceState, StackState } from './types.ts';

/**
 * A stack's record, `stack.json` in its state folder: what runs, on which
 * ports, under which pids. It outlives a stop, so the next start can bind
 * the same ports and every client configured with the old addresses still
 * finds the services.
 */

const stateFileName = 'stack.json';

export async function readStackState(stateDir: string): Promise<StackState | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, stateFileName), 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

/**
 * Written aside and renamed, so a reader never sees half a record. A secure
 * stack's record carries the admin's passwords in its endpoints: mode 0600.
 */
export async function writeStackState(state: StackState): Promise<void> {
  const file = join(state.dir, stateFileName);
  const mode = state.secure ? 0o600 : 0o644;
  await writeFile(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode });
  await chmod(`${file}.tmp`, mode);
  await rename(`${file}.tmp`, file);
}

/** The record of a stack that is meant to run (a stopped stack's record only keeps its ports). */
export function isRunningState(state: StackState | undefined): state is StackState & { stoppedAt: undefined } {
  return state !== undefined && state.stoppedAt === undefined;
}

/**
 * The port a service had, by role. State files written before ports were
 * recorded only have the address, which names the client port; a default
 * service (the machine's own Redis) was never ours to place.
 */
export function recordedPort(state: StackState | undefined, name: ServiceName, role: keyof ServicePorts): number | undefined {
  const service = state?.services.find((s) => s.name === name);
  if (!service || service.origin === 'default') return undefined;
  const port = service.ports?.[role];
  if (port !== undefined) return port;
  if (role !== 'client') return undefined;
  const parsed = Number(/:(\d+)(?:\/|$)/.exec(service.address)?.[1]);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : undefined;
}

/** The record a stop leaves: addresses and ports kept, processes forgotten. */
export function stoppedState(state: StackState, at: Date = new Date()): StackState {
  const services = state.services.map(({ pid: _pid, watchdogPid: _watchdog, ...rest }): ServiceState => rest);
  return { ...state, stoppedAt: at.toISOString(), services };
}
