import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AssignerProtocol, type Admin } from 'kafkajs';
import type { Connections } from '../cli/connect.ts';
import { MabeamError } from '../errors.ts';
import { environmentFor } from '../stack/endpoints.ts';
import type { ChildMessage } from '../supervisor/messages.ts';
import { parseSupervisorSpec, Supervisor, type SupervisorEvent, type SupervisorSpec } from '../supervisor/supervisor.ts';

// The agent module beside this one: .ts in the repository, .js in the built package.
const memberModule = fileURLToPath(new URL(`./agents/member${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** How soon a killed member's partitions move to the others (the group's session timeout). */
export const sessionTimeoutMs = 3_000;

/** How long the supervisor waits before it restarts a crashed process. */
export const restartAfterMs = 4_000;

/**
 * The demo's deployment, as a supervisor spec: the live view, two
 * coordinators, a variable owner, an optimizer, a planner and five agent
 * processes — ada, bo and cy, and dee twice (two replicas of one agent:
 * its group splits dee's requests between them).
 */
export function deploymentSpec(prefix: string, viewPort: number): SupervisorSpec {
  // A crashed process is restarted after its group has given its work to the others (the session timeout).
  const backoff = { initialMs: restartAfterMs, factor: 2, maxMs: 4 * restartAfterMs };
  const service = (id: string, command: string[], args: string[] = []) => ({ id, command, args, restart: 'permanent', maxRestarts: 5, backoff });
  const groupArgs = ['--session-timeout-ms', String(sessionTimeoutMs)];
  const agent = (id: string, agentId: string) => ({
    id, module: memberModule, env: { DEMO_AGENT: agentId }, restart: 'permanent', maxRestarts: 5, backoff, args: [...groupArgs, '--heartbeat-ms', '1000'],
  });
  return parseSupervisorSpec({
    prefix,
    children: [
      service('view', ['view'], ['--port', String(viewPort)]),
      service('coordinator-1', ['coordinator', 'run'], groupArgs),
      service('coordinator-2', ['coordinator', 'run'], groupArgs),
      service('owner', ['orchestrator', 'run']),
      service('optimizer', ['optimizer', 'run']),
      service('planner', ['planner', 'run']),
      agent('ada', 'ada'),
      agent('bo', 'bo'),
      agent('cy', 'cy'),
      agent('dee-1', 'dee'),
      agent('dee-2', 'dee'),
    ],
  }, 'the demo deployment');
}

/** A child as the deployment knows it: its process and what it last said. */
interface Member {
  ready?: ChildMessage;
  pid?: number;
  tail: string[];
  waiters: Array<() => void>;
  /** The instance ids of its processes so far. */
  instances: string[];
  /** The supervisor gave up on it (its restart budget is spent). */
  gaveUp?: boolean;
}

/**
 * Runs the deployment under the project's supervisor as separate OS
 * processes, keeps each one's last log lines (for an error that names
 * them), and finds which process holds a partition of a group.
 */
export class Deployment {
  readonly supervisor: Supervisor;
  readonly spec: SupervisorSpec;
  private readonly members = new Map<string, Member>();

  constructor(c: Connections, spec: SupervisorSpec) {
    this.spec = spec;
    this.supervisor = new Supervisor({ spec, producer: c.producer, codec: c.codec, logger: c.logger, env: { ...process.env, MABEAM_LOG_LEVEL: 'info', ...environmentFor(c.endpoints) }, stdio: 'pipe' });
    for (const child of spec.children) this.members.set(child.id, { tail: [], waiters: [], instances: [] });
    this.supervisor.on('output', (id: string, proc: ChildProcess) => {
      const member = this.members.get(id)!;
      for (const stream of [proc.stdout, proc.stderr]) {
        if (!stream) continue;
        createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
          member.tail.push(line);
          if (member.tail.length > 8) member.tail.shift();
        });
      }
    });
    this.supervisor.on('event', (e: SupervisorEvent) => {
      const member = this.members.get(e.id)!;
      if (e.type === 'spawned') {
        member.pid = e.pid;
        delete member.ready;
      } else if (e.type === 'exit' && e.decision === 'gave-up') {
        member.gaveUp = true;
        for (const wake of member.waiters.splice(0)) wake();
      } else if (e.type === 'ready') {
        member.ready = e.message;
        member.instances.push(e.message.instanceId);
        for (const wake of member.waiters.splice(0)) wake();
      }
    });
  }

  start(): void {
    this.supervisor.start();
  }

  /** Resolves when every child named (default all) is running; a child the supervisor gave up on fails it, with its last lines. */
  async ready(ids: readonly string[] = [...this.members.keys()], timeoutMs = 90_000): Promise<void> {
    await Promise.all(ids.map((id) => this.readyOf(id, timeoutMs)));
  }

  /** What a child told its supervisor when it got ready (waits for it). */
  async readyOf(id: string, timeoutMs = 90_000): Promise<ChildMessage> {
    const member = this.member(id);
    if (member.ready) return member.ready;
    if (member.gaveUp) throw this.failure(id, `${id} kept failing and the supervisor gave up on it`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(this.failure(id, `${id} was not running after ${timeoutMs / 1000} s`)), timeoutMs);
      member.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (!member.ready) throw this.failure(id, `${id} kept failing and the supervisor gave up on it`);
    return member.ready;
  }

  /** The child whose current (or last) process is the instance `instanceId`. */
  childOfInstance(instanceId: string | undefined): string | undefined {
    for (const [id, member] of this.members) if (member.instances.includes(instanceId ?? '')) return id;
    return undefined;
  }

  pidOf(id: string): number | undefined {
    return this.member(id).pid;
  }

  /** Kills a child with SIGKILL, as a crash would; resolves with its pid. */
  kill(id: string): number {
    const pid = this.member(id).pid;
    if (pid === undefined) throw this.failure(id, `${id} has no process to kill`);
    delete this.member(id).ready;
    process.kill(pid, 'SIGKILL');
    return pid;
  }

  /** An error naming a child and its last log lines. */
  failure(id: string, what: string): MabeamError {
    const lines = this.member(id).tail;
    return new MabeamError('DEMO_FAILED', `${what}${lines.length ? `; its last lines:\n  ${lines.join('\n  ')}` : ' (it printed nothing)'}`);
  }

  /** Every child's last lines, for a step that failed without naming one. */
  tails(): string {
    return [...this.members.entries()].filter(([, m]) => m.tail.length > 0).map(([id, m]) => `${id}:\n  ${m.tail.slice(-3).join('\n  ')}`).join('\n');
  }

  /**
   * The child whose consumer in `groupId` holds `partition` of `topic`:
   * group members are told apart by their client id, which names their
   * process (mabeam-agent-<pid>, mabeam-coordinator-<pid>).
   */
  async holderOf(admin: Admin, groupId: string, topic: string, partition: number): Promise<string | undefined> {
    const [group] = (await admin.describeGroups([groupId])).groups;
    for (const m of group?.members ?? []) {
      const assignment = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      if (!assignment?.assignment[topic]?.includes(partition)) continue;
      const pid = Number(/-(\d+)$/.exec(m.clientId)?.[1]);
      for (const [id, member] of this.members) if (member.pid === pid) return id;
    }
    return undefined;
  }

  stop(): Promise<void> {
    return this.supervisor.stop();
  }

  private member(id: string): Member {
    const member = this.members.get(id);
    if (!member) throw new MabeamError('INVALID_OPTIONS', `The deployment has no ${id}.`);
    return member;
  }
}
