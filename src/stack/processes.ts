import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { MabeamError, describeError } from '../errors.ts';

/**
 * Service processes of the local stack. They always run in their own process
 * group with their output in a log file, never on an inherited pipe: a JVM
 * must not be able to hold a terminal or a CI job open.
 */

export interface SpawnedService {
  pid: number;
  watchdogPid?: number;
}

export interface SpawnServiceOptions {
  command: string;
  args: string[];
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /**
   * When set, a small watchdog process ends the service as soon as this
   * process id is gone (ephemeral stacks: a killed test run leaves nothing).
   */
  ownerPid?: number;
}

export async function spawnService(options: SpawnServiceOptions): Promise<SpawnedService> {
  const log = await open(options.logFile, 'a');
  try {
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid as number));
      child.once('error', reject);
    });
    child.unref();
    if (options.ownerPid === undefined) return { pid };
    return { pid, watchdogPid: spawnWatchdog(options.ownerPid, pid) };
  } finally {
    await log.close();
  }
}

function spawnWatchdog(ownerPid: number, servicePid: number): number {
  const script =
    `while kill -0 ${ownerPid} 2>/dev/null && kill -0 ${servicePid} 2>/dev/null; do sleep 1; done; ` +
    `kill -TERM ${servicePid} 2>/dev/null; i=0; while kill -0 ${servicePid} 2>/dev/null && [ $i -lt 10 ]; do sleep 1; i=$((i+1)); done; ` +
    `kill -KILL ${servicePid} 2>/dev/null; exit 0`;
  const watchdog = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  return watchdog.pid as number;
}

/**
 * True while the process exists and has not exited. A zombie (exited, not yet
 * reaped by its parent) still answers signal 0, but it holds no port and will
 * never serve again, so it counts as gone.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // Gone since the signal, or a system without /proc, where signal 0 is all there is.
    return !existsSync('/proc/self/stat');
  }
}

/** True when `pid` is alive and its command line contains `marker` (guards against pid reuse). */
export async function isOurProcess(pid: number, marker: string): Promise<boolean> {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(marker);
  } catch {
    return true; // no /proc: trust the pid
  }
}

/** SIGTERM, wait up to `timeoutMs`, then SIGKILL. Resolves once the process is gone. */
export async function stopProcess(pid: number, timeoutMs: number): Promise<'stopped' | 'killed' | 'not-running'> {
  if (!isAlive(pid)) return 'not-running';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'not-running';
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'stopped';
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone in between
  }
  while (isAlive(pid)) await sleep(50);
  return 'killed';
}

export async function tailFile(path: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The lines of a service log that explain a failure (errors and their causes), else its tail. */
export async function errorLines(path: string, max = 12): Promise<string> {
  const tail = await tailFile(path, 400);
  const lines = tail.split('\n').filter((l) => /ERROR|FATAL|Caused by|Exception:|# /.test(l));
  return (lines.length > 0 ? lines.slice(0, max) : tail.split('\n').slice(-max)).join('\n');
}

export interface ReadinessCheck {
  /** What is being waited for, as a person would name it ("Kafka at 127.0.0.1:9092"). */
  what: string;
  timeoutMs: number;
  /** One real client call; resolves true when the service answers as it should. */
  probe: () => Promise<boolean>;
  intervalMs?: number;
  /** The service's process and log: a process that exits fails the wait at once, quoting its log. */
  pid?: number;
  logFile?: string;
}

/**
 * A probe that has not answered by the deadline counts as "not ready": a
 * stopped (SIGSTOP) or hung service accepts the TCP connection and then never
 * replies, and its client may wait far longer than the caller asked.
 */
async function withinTime(probe: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(ms, 0));
  });
  probe.catch(() => undefined);
  try {
    return await Promise.race([probe, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` until it answers, the process dies, or the time is up. */
export async function waitUntilReady(check: ReadinessCheck): Promise<void> {
  const deadline = Date.now() + check.timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (check.pid !== undefined && !isAlive(check.pid)) {
      const log = check.logFile ? await errorLines(check.logFile) : '';
      throw new MabeamError('STACK_START_FAILED', `${check.what} exited during start (log: ${check.logFile ?? 'none'}):\n${log}`);
    }
    try {
      if (await withinTime(check.probe(), deadline - Date.now())) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(check.intervalMs ?? 200);
  }
  throw new MabeamError('STACK_START_FAILED', `${check.what} was not ready within ${check.timeoutMs} ms${lastError ? `: ${describeError(lastError)}` : ''}`);
}
