import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Producer } from 'kafkajs';
import { z } from 'zod';
import type { EventCodec } from '../codec/codec.ts';
import { MabeamError, describeError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { LifecycleChanged } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import { EventProducer } from '../producer/eventProducer.ts';
import { topicName } from '../topics/names.ts';
import { isChildMessage, type ChildMessage } from './messages.ts';

/**
 * permanent — always restarted; transient — restarted only when it did not
 * exit normally (exit code 0); temporary — never restarted.
 */
export type RestartPolicy = 'permanent' | 'transient' | 'temporary';

const childSchema = z
  .object({
    /** Names the child; by convention the id of the agent it runs. */
    id: z.string().min(1),
    /** The agent module (see `mabeam agent run`). */
    module: z.string().min(1).optional(),
    /**
     * Or another long-running `mabeam` command, as its arguments (e.g.
     * `["coordinator", "run"]`): a coordinator, variable owner, optimizer,
     * planner or live view. `--prefix` is added. It runs no agents, so no
     * lifecycle transitions are written for it.
     */
    command: z.array(z.string().min(1)).min(1).optional(),
    pool: z.string().min(1).optional(),
    restart: z.enum(['permanent', 'transient', 'temporary']).default('permanent'),
    /** More than this many restarts within `periodMs` and the child is left failed and stopped. */
    maxRestarts: z.number().int().nonnegative().default(3),
    periodMs: z.number().int().positive().default(60_000),
    backoff: z
      .object({ initialMs: z.number().int().nonnegative().default(200), factor: z.number().min(1).default(2), maxMs: z.number().int().positive().default(10_000) })
      .default({ initialMs: 200, factor: 2, maxMs: 10_000 }),
    /** A graceful stop (SIGTERM) gets this long before SIGKILL. */
    stopTimeoutMs: z.number().int().positive().default(10_000),
    /** Extra arguments for `mabeam agent run` (or the command). */
    args: z.array(z.string()).default([]),
    /** Environment variables for this child, over the supervisor's. */
    env: z.record(z.string(), z.string()).default({}),
  })
  .strict()
  .refine((c) => (c.module === undefined) !== (c.command === undefined), { message: 'a child runs either an agent module or a command, not both and not neither' })
  .refine((c) => c.backoff.initialMs <= c.backoff.maxMs, { message: 'backoff.initialMs must not exceed backoff.maxMs' });

export const supervisorSpecSchema = z
  .object({
    prefix: z.string().min(1).default('mabeam'),
    children: z.array(childSchema).min(1),
  })
  .strict()
  .refine((s) => new Set(s.children.map((c) => c.id)).size === s.children.length, { message: 'child ids must be unique' });

export type ChildSpec = z.output<typeof childSchema>;
export type SupervisorSpec = z.output<typeof supervisorSpecSchema>;

export function parseSupervisorSpec(raw: unknown, source = 'supervisor spec'): SupervisorSpec {
  const parsed = supervisorSpecSchema.safeParse(raw);
  if (!parsed.success) {
    throw new MabeamError('INVALID_OPTIONS', `${source}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** Delay before the n-th restart (1-based) within the current period. */
export function backoffDelay(spec: Pick<ChildSpec, 'backoff'>, restartNumber: number): number {
  return Math.min(spec.backoff.initialMs * spec.backoff.factor ** Math.max(0, restartNumber - 1), spec.backoff.maxMs);
}

export type ChildStatus = 'starting' | 'running' | 'restarting' | 'exited' | 'failed' | 'stopped';

export interface ChildState {
  spec: ChildSpec;
  status: ChildStatus;
  /** The lifecycle state of its agents as this supervisor last knew or reported it. */
  lifecycle: 'starting' | 'running' | 'failed' | null;
  pid?: number;
  ready?: ChildMessage;
  restarts: number[];
  lastExit?: { code: number | null; signal: NodeJS.Signals | null };
}

export type SupervisorEvent =
  | { type: 'spawned'; id: string; pid: number }
  | { type: 'ready'; id: string; pid: number; message: ChildMessage }
  | { type: 'exit'; id: string; pid: number; code: number | null; signal: NodeJS.Signals | null; decision: 'restart' | 'not-restarted' | 'gave-up' | 'stopping'; delayMs?: number };

export interface SupervisorOptions {
  spec: SupervisorSpec;
  producer: Producer;
  codec: EventCodec;
  logger: Logger;
  /** Environment of the children (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL, …). */
  env?: NodeJS.ProcessEnv;
  /** The CLI that runs an agent module; this package's by default. */
  cli?: string;
  /**
   * The children's stdout and stderr: passed through (default), or piped and
   * handed out as an 'output' event (id, ChildProcess) for each spawn.
   */
  stdio?: 'inherit' | 'pipe';
}

// The CLI beside this module: main.ts in the repository, main.js in the built package.
export const cliPath = fileURLToPath(new URL(`../cli/main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/**
 * Runs agents as child OS processes (`mabeam agent run`), and any other
 * long-running `mabeam` command (a coordinator, an owner, …), and restarts them
 * by policy, within a restart budget, after an exponential backoff. A child
 * that dies without stopping itself cannot report it, so the supervisor
 * writes its `failed` lifecycle transition (with the exit code or signal,
 * and whether it will restart) before acting on it; the restarted process
 * reports starting and running itself.
 *
 * Emits 'event' with a SupervisorEvent for everything it does.
 */
export class Supervisor extends EventEmitter {
  private readonly options: SupervisorOptions;
  private readonly children = new Map<string, ChildState & { process?: ChildProcess; timer?: NodeJS.Timeout }>();
  private readonly events: EventProducer;
  private readonly log: Logger;
  private stopping = false;
  readonly id = `supervisor:${hostname()}-${process.pid}`;

  constructor(options: SupervisorOptions) {
    super();
    this.options = options;
    this.events = new EventProducer(options.producer, options.codec);
    this.log = options.logger.child({ ns: 'supervisor' });
    for (const spec of options.spec.children) this.children.set(spec.id, { spec, status: 'starting', lifecycle: null, restarts: [] });
  }

  status(): ChildState[] {
    return [...this.children.values()].map(({ process: _p, timer: _t, ...state }) => state);
  }

  child(id: string): ChildState | undefined {
    return this.status().find((c) => c.spec.id === id);
  }

  start(): void {
    for (const id of this.children.keys()) this.spawnChild(id);
  }

  private spawnChild(id: string, restart = false): void {
    const child = this.children.get(id)!;
    const { spec } = child;
    const args = [
      this.options.cli ?? cliPath,
      ...(spec.command ?? ['agent', 'run', spec.module!]),
      '--prefix',
      this.options.spec.prefix,
      ...(spec.pool ? ['--pool', spec.pool] : []),
      ...(restart && !spec.command ? ['--starting-reported'] : []),
      ...spec.args,
    ];
    const proc = spawn(process.execPath, args, { env: { ...(this.options.env ?? process.env), ...spec.env }, stdio: ['ignore', this.options.stdio ?? 'inherit', this.options.stdio ?? 'inherit', 'ipc'] });
    if (this.options.stdio === 'pipe') this.emit('output', id, proc);
    child.process = proc;
    child.status = 'starting';
    delete child.ready;
    if (proc.pid !== undefined) {
      child.pid = proc.pid;
      this.emit('event', { type: 'spawned', id, pid: proc.pid } satisfies SupervisorEvent);
    }
    proc.on('message', (message) => {
      if (!isChildMessage(message)) return;
      child.ready = message;
      child.status = 'running';
      child.lifecycle = 'running';
      this.emit('event', { type: 'ready', id, pid: proc.pid!, message } satisfies SupervisorEvent);
    });
    proc.on('error', (error) => this.log.error({ child: id, error: describeError(error) }, 'could not start the child process'));
    proc.once('exit', (code, signal) => void this.onExit(id, proc, code, signal).catch((error: unknown) => this.emit('error', error)));
  }

  private async onExit(id: string, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    const child = this.children.get(id)!;
    const { spec } = child;
    const pid = proc.pid ?? -1;
    child.lastExit = { code, signal };
    delete child.process;
    // A process that stopped itself reported its own transitions.
    if (code === 0 && signal === null) child.lifecycle = null;
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    const normal = code === 0 && signal === null;

    if (this.stopping) {
      child.status = 'stopped';
      this.emit('event', { type: 'exit', id, pid, code, signal, decision: 'stopping' } satisfies SupervisorEvent);
      return;
    }
    const wanted = spec.restart === 'permanent' || (spec.restart === 'transient' && !normal);
    if (!wanted) {
      child.status = normal ? 'exited' : 'failed';
      if (!normal) await this.reportFailed(child, `process ${pid} ${how}; ${spec.restart} agents are not restarted`);
      this.log.info({ child: id, pid, how }, 'child exited; not restarted by policy');
      this.emit('event', { type: 'exit', id, pid, code, signal, decision: 'not-restarted' } satisfies SupervisorEvent);
      return;
    }
    const now = Date.now();
    child.restarts = child.restarts.filter((t) => now - t < spec.periodMs);
    if (child.restarts.length >= spec.maxRestarts) {
      child.status = 'failed';
      await this.reportFailed(child, `process ${pid} ${how}; restart budget exhausted (${child.restarts.length} restarts in ${spec.periodMs} ms): left stopped`);
      this.log.error({ child: id, pid, how, restarts: child.restarts.length }, 'restart budget exhausted; child left stopped');
      this.emit('event', { type: 'exit', id, pid, code, signal, decision: 'gave-up' } satisfies SupervisorEvent);
      return;
    }
    child.restarts.push(now);
    const delayMs = backoffDelay(spec, child.restarts.length);
    if (!normal) await this.reportFailed(child, `process ${pid} ${how}; restart ${child.restarts.length} of ${spec.maxRestarts} in ${delayMs} ms`);
    child.status = 'restarting';
    this.log.warn({ child: id, pid, how, delayMs }, 'restarting child');
    this.emit('event', { type: 'exit', id, pid, code, signal, decision: 'restart', delayMs } satisfies SupervisorEvent);
    child.timer = setTimeout(() => {
      delete child.timer;
      if (this.stopping) return;
      this.report(child, 'starting', `restart ${child.restarts.length} of ${spec.maxRestarts} after ${delayMs} ms`)
        .then(() => this.spawnChild(id, true))
        .catch((error: unknown) => this.emit('error', error));
    }, delayMs);
  }

  /** The `failed` transition a dead child could not write itself. */
  private reportFailed(child: ChildState, reason: string): Promise<void> {
    return this.report(child, 'failed', reason);
  }

  /** A lifecycle transition the supervisor makes for the agents of a child (failed, or starting on a restart). */
  private async report(child: ChildState, to: 'failed' | 'starting', reason: string): Promise<void> {
    if (child.spec.command) return; // a coordinator, owner, … is no agent: its group's rebalance is its record
    const agents = child.ready?.agents ?? [child.spec.id];
    for (const agentId of agents) {
      const event: LifecycleChanged = {
        envelope: newEnvelope('LifecycleChanged', this.id, { correlationId: agentId }),
        agentId,
        instanceId: to === 'failed' ? (child.ready?.instanceId ?? null) : null,
        from: child.lifecycle,
        to,
        reason,
        host: hostname(),
      };
      await this.events.send(topicName(this.options.spec.prefix, 'lifecycle'), agentId, 'LifecycleChanged', event);
    }
    child.lifecycle = to;
  }

  /** Stops every child: SIGTERM (the agent stops itself), then SIGKILL after its stop timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(async (child) => {
        clearTimeout(child.timer);
        const proc = child.process;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) {
          if (child.status === 'restarting' || child.status === 'starting') child.status = 'stopped';
          return;
        }
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), child.spec.stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
