import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Connections } from '../cli/connect.ts';
import { MabeamError } from '../errors.ts';
import { registerCatalog } from '../schemas/registry.ts';
import { environmentFor } from '../stack/endpoints.ts';
import { freePort } from '../stack/ports.ts';
import { cliPath } from '../supervisor/supervisor.ts';
import { applyTopics } from '../topics/index.ts';
import { Deployment, deploymentSpec, sessionTimeoutMs } from './deployment.ts';
import { runScenario, type ScenarioResult } from './scenario.ts';


export interface LiveDemoOptions {
  prefix: string;
  /** The live view's port (default 8080, or a free one when 8080 is taken). */
  viewPort?: number;
  /** One narrated line for a person. */
  say: (line: string) => void;
  /** Leave the deployment running after the scenario, until this resolves. */
  keepUntil?: () => Promise<unknown>;
}

export interface LiveDemoResult extends ScenarioResult {
  prefix: string;
  viewUrl: string;
  processes: Array<{ id: string; pid: number | undefined }>;
  replay: { rounds: number; identical: number; undecodable: number; exitCode: number };
  audit: string;
  seconds: number;
}

/**
 * The main job: a small, real deployment on the stack — agent processes,
 * two coordinators, a variable owner, an optimizer, a planner and the live
 * view, each its own OS process under the supervisor — and the scenario
 * narrated against it, then the log replayed and the first auction audited
 * with the CLI a user would run.
 */
export async function runLiveDemo(c: Connections, o: LiveDemoOptions): Promise<LiveDemoResult> {
  const started = Date.now();
  const { prefix, say } = o;
  const applied = await applyTopics(c.admin, c.definitions, { prefix });
  const count = (kind: string) => applied.changes.filter((ch) => ch.kind === kind).length;
  const registered = await registerCatalog(c.registry, c.registryTarget, c.catalog);
  say(`topics under "${prefix}": ${count('created')} created, ${count('unchanged')} unchanged; ${registered.length} event schemas registered`);

  const viewPort = o.viewPort ?? (await freePort(8080));
  const deployment = new Deployment(c, deploymentSpec(prefix, viewPort));
  try {
    deployment.start();
    const starting = Date.now();
    const view = await deployment.readyOf('view');
    const viewUrl = view.url ?? `http://127.0.0.1:${viewPort}/`;
    say(`live view: ${viewUrl}  (open it to watch)`);
    await deployment.ready();
    // Two replicas and two coordinators: the scenario kills one of each, so both must hold partitions.
    await waitForGroup(c, (await deployment.readyOf('dee-1')).groupId, 2, deployment);
    await waitForGroup(c, (await deployment.readyOf('coordinator-1')).groupId, 2, deployment);
    const processes = deployment.spec.children.map((child) => ({ id: child.id, pid: deployment.pidOf(child.id) }));
    say(`deployment: ${processes.length} processes under the supervisor, running in ${((Date.now() - starting) / 1000).toFixed(1)} s — ${processes.map((p) => `${p.id} (${p.pid})`).join(', ')}; session timeout ${sessionTimeoutMs / 1000} s`);

    const result = await runScenario(c, { prefix, deployment, say });

    say(`[8] the log replayed and the first auction audited, with the CLI`);
    const replayRun = await runCliCommand(c, ['replay', '--prefix', prefix, '--all', '--json']);
    const report = JSON.parse(replayRun.stdout.trim().split('\n').pop() ?? '{}') as { rounds?: Array<{ verdict: string }>; identical?: number; undecodable?: Array<{ key?: string }>; different?: number; contradictory?: number; duplicate?: number; incomplete?: number };
    const faults = (report.different ?? 0) + (report.contradictory ?? 0) + (report.duplicate ?? 0) + (report.incomplete ?? 0);
    const undecodable = report.undecodable ?? [];
    if (faults > 0 || !report.rounds) throw new MabeamError('DEMO_FAILED', `step 8: the log does not replay identically (mabeam replay --prefix ${prefix}): ${replayRun.stdout.slice(-400)}`);
    if (!undecodable.some((u) => u.key === result.garbage.key)) throw new MabeamError('DEMO_FAILED', `step 8: replay did not find the garbage of step 7 (key ${result.garbage.key}) among the records that do not decode`);
    const records = undecodable.length === 1 ? '1 record does' : `${undecodable.length} records do`;
    say(`    mabeam replay --prefix ${prefix}: ${report.rounds.length} rounds decided again from the log, ${report.identical} identical; ${records} not decode (step 7's garbage${undecodable.length > 1 ? ', and earlier runs\'' : ''}, dead-lettered), so it exits ${replayRun.code}`);
    const auditRun = await runCliCommand(c, ['audit', 'round', result.sealedRound, '--prefix', prefix]);
    if (auditRun.code !== 0) throw new MabeamError('DEMO_FAILED', `step 8: mabeam audit round ${result.sealedRound} exited ${auditRun.code}: ${auditRun.stderr.trim().split('\n').pop() ?? ''}`);
    say(`    mabeam audit round ${result.sealedRound}:`);
    for (const line of auditRun.stdout.trimEnd().split('\n')) say(`      ${line}`);

    const live: LiveDemoResult = {
      ...result,
      prefix,
      viewUrl,
      processes,
      replay: { rounds: report.rounds.length, identical: report.identical ?? 0, undecodable: undecodable.length, exitCode: replayRun.code },
      audit: auditRun.stdout,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
    if (o.keepUntil) {
      say(`the deployment and the view keep running (${viewUrl}); Ctrl-C stops them`);
      await o.keepUntil();
    }
    return live;
  } catch (error) {
    if (error instanceof MabeamError && error.code === 'DEMO_FAILED' && !/last lines/.test(error.message)) {
      const tails = deployment.tails();
      if (tails) throw new MabeamError('DEMO_FAILED', `${error.message}\nthe processes' last lines:\n${tails}`, { cause: error });
    }
    throw error;
  } finally {
    await deployment.stop();
  }
}

/** Waits for a consumer group of `members` members, stable. */
async function waitForGroup(c: Connections, groupId: string, members: number, deployment: Deployment, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [group] = (await c.admin.describeGroups([groupId])).groups;
    if (group?.state === 'Stable' && group.members.length === members) return;
    if (Date.now() > deadline) throw new MabeamError('DEMO_FAILED', `group ${groupId} did not settle to ${members} members in ${timeoutMs / 1000} s (${group?.state}, ${group?.members.length} members)\n${deployment.tails()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function runCliCommand(c: Connections, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cliPath, ...args], { env: { ...process.env, ...environmentFor(c.endpoints) }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
