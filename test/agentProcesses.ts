import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { environmentFor } from '../src/stack/endpoints.ts';
import type { StackEndpoints } from '../src/stack/types.ts';
import { isChildMessage, type ChildMessage } from '../src/supervisor/messages.ts';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a short `mabeam …` command as a user would, against the test stack; resolves with its exit code and output (never rejects on a non-zero exit). */
export async function runCli(stack: StackEndpoints, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], {
      env: { ...process.env, ...environmentFor(stack), ...env },
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export interface AgentProcess {
  pid: number;
  ready: Promise<ChildMessage>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  process: ChildProcess;
  /** What it wrote to stderr at warning level or above, and its plain output, so far. */
  stderr(): string;
}

/** Runs `mabeam agent run <module>` as a separate OS process, as a user would. */
export function runAgentProcess(stack: StackEndpoints, module: string, args: string[], env: Record<string, string> = {}): AgentProcess {
  return runCliProcess(stack, ['agent', 'run', module, ...args], env);
}

/** A structured log line below warning level (pino: 30 info, 20 debug). */
function isBelowWarning(line: string): boolean {
  const level = /^\{"level":(\d+)/.exec(line)?.[1];
  return level !== undefined && Number(level) < 40;
}

/** How long a process may take to report ready before the test is told what it last printed. */
const readyTimeoutMs = 40_000;

/**
 * Runs a long-lived `mabeam …` command (one that reports ready over IPC) as a
 * separate OS process. Its stderr is passed through and its tail kept, so a
 * process that never gets ready fails the test with what it last said.
 * MABEAM_CHILD_LOG_DIR=dir keeps each process's debug log in dir/<pid>.log.
 */
export function runCliProcess(stack: StackEndpoints, args: string[], env: Record<string, string> = {}): AgentProcess {
  const logDir = process.env['MABEAM_CHILD_LOG_DIR'];
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, MABEAM_LOG_LEVEL: 'debug', ...environmentFor(stack), ...env },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  // The process logs at debug level: its last lines are kept for the error above, warnings and
  // plain output go to this run's stderr, and MABEAM_CHILD_LOG_DIR keeps the whole log.
  const tail: string[] = [];
  const said: string[] = [];
  const file = logDir ? createWriteStream(`${logDir}/${child.pid}.log`) : undefined;
  createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', (line) => {
    file?.write(`${line}\n`);
    tail.push(line);
    if (tail.length > 20) tail.shift();
    if (isBelowWarning(line)) return;
    said.push(line);
    process.stderr.write(`${line}\n`);
  });
  // On 'close', not 'exit': by then everything it wrote to stderr has been read.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<ChildMessage>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`mabeam ${args.slice(0, 2).join(' ')} (pid ${child.pid}) was not ready after ${readyTimeoutMs / 1000} s; it last printed:\n${tail.join('\n')}`)),
      readyTimeoutMs,
    );
    child.on('message', (m) => {
      if (!isChildMessage(m)) return;
      clearTimeout(timer);
      resolve(m);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`mabeam ${args.slice(0, 2).join(' ')} exited before it was ready (code ${code}, signal ${signal}); it last printed:\n${tail.join('\n')}`));
    });
  });
  ready.catch(() => undefined);
  return { pid: child.pid!, ready, exited, process: child, stderr: () => said.join('\n') };
}

/** Stops an agent process if it still runs: SIGTERM, then SIGKILL after a while. */
export async function stopAgentProcess(p: AgentProcess): Promise<void> {
  if (p.process.exitCode !== null || p.process.signalCode !== null) return;
  p.process.kill('SIGTERM');
  const timer = setTimeout(() => p.process.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(timer);
}
