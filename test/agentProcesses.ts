import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StackEndpoints } from '../src/stack/types.ts';
import { isChildMessage, type ChildMessage } from '../src/supervisor/messages.ts';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

export interface AgentProcess {
  pid: number;
  ready: Promise<ChildMessage>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  process: ChildProcess;
}

/** Runs `mabeam agent run <module>` as a separate OS process, as a user would. */
export function runAgentProcess(stack: StackEndpoints, module: string, args: string[], env: Record<string, string> = {}): AgentProcess {
  return runCliProcess(stack, ['agent', 'run', module, ...args], env);
}

/** Runs a long-lived `mabeam …` command (one that reports ready over IPC) as a separate OS process. */
export function runCliProcess(stack: StackEndpoints, args: string[], env: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, KAFKA_BROKERS: stack.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: stack.schemaRegistryUrl, REDIS_URL: stack.redisUrl, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<ChildMessage>((resolve, reject) => {
    child.on('message', (m) => isChildMessage(m) && resolve(m));
    void exited.then(({ code, signal }) => reject(new Error(`agent process exited before it was ready (code ${code}, signal ${signal})`)));
  });
  ready.catch(() => undefined);
  return { pid: child.pid!, ready, exited, process: child };
}

/** Stops an agent process if it still runs: SIGTERM, then SIGKILL after a while. */
export async function stopAgentProcess(p: AgentProcess): Promise<void> {
  if (p.process.exitCode !== null || p.process.signalCode !== null) return;
  p.process.kill('SIGTERM');
  const timer = setTimeout(() => p.process.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(timer);
}
