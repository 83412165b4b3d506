import { Presets, SingleBar } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { MabeamError, isMabeamError } from '../../errors.ts';
import type { Logger } from '../../log/logger.ts';
import { loadProtocolModules } from '../../protocols/modules.ts';
import type { ProtocolRegistry } from '../../protocols/registry.ts';
import { counterfactual, type CounterfactualDecision, type CounterfactualReport } from '../../replay/counterfactual.ts';
import type { Difference } from '../../replay/outcomes.ts';
import { defaultReplayWorkers, parallelReplay } from '../../replay/parallelReplay.ts';
import { readHistory } from '../../replay/readHistory.ts';
import { faultVerdicts, replayHistory, roundsJudged, settleAsRead, type ReplayReport, type RoundFilter, type RoundReplay } from '../../replay/replayRounds.ts';
import { parseBound } from '../../replay/window.ts';
import { writeCounterfactual } from '../../replay/writeCounterfactual.ts';
import { loadKeyDirectory } from '../../security/directoryFollower.ts';
import { signaturesRequired } from '../../security/signing.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix } from '../../topics/index.ts';
import { positiveInt } from './topics.ts';
import { connect } from '../connect.ts';
import { out, table } from '../output.ts';

/** Exit codes of `mabeam replay`: 0 every round identical (or a counterfactual report), 3 anything not identical, 2 bad input, 1 other errors. */
export const replayExitCodes = { ok: 0, error: 1, badInput: 2, notIdentical: 3 } as const;

interface ReplayOptions {
  prefix: string;
  round: string[];
  protocol: string[];
  since?: string;
  until?: string;
  with?: string;
  protocols: string[];
  writeTo?: string;
  json?: boolean;
  all?: boolean;
  progress: boolean;
  workers: number;
  requireSignatures?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').filter(Boolean)];

export function registerReplayCommand(program: Command, logger: () => Logger): void {
  program
    .command('replay')
    .description('re-run recorded rounds from the topics and report, per round and in total, whether the log replays identically')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--round <id>', 'only this round (repeatable, or comma-separated); reads only its partition', collect, [])
    .option('--protocol <name>', 'only rounds of this protocol (repeatable)', collect, [])
    .option('--since <when>', 'only rounds requested at or after: an ISO time, epoch ms, an age (30m, 2h, 7d), offset:N or partition:offset pairs')
    .option('--until <when>', 'only rounds requested before (same forms as --since)')
    .option('--with <protocol>', 'counterfactual: decide the recorded rounds again under this protocol (a name, or a module that exports or registers one)')
    .option('--protocols <module>', 'modules that add protocols (repeatable)', collect, [])
    .option('--write-to <prefix>', 'with --with: write the counterfactual rounds as a history under this other prefix')
    .option('--json', 'one JSON report on stdout')
    .option('--all', 'list every round, not only those that are not identical (or that change)')
    .option('--workers <n>', 'threads that read and decide, each a share of the partitions (1: in this thread)', positiveInt, defaultReplayWorkers())
    .option('--no-progress', 'no progress bar on stderr')
    .option('--require-signatures', 'check every answer\'s signature as a coordinator that requires them does; a counted answer that fails makes its round different (also MABEAM_REQUIRE_SIGNATURES=1)')
    .addHelpText('after', '\nExit codes: 0 identical (or a counterfactual report), 3 something is not identical, 2 bad input, 1 other errors.')
    // A usage error (an unknown flag, a bad number) is bad input too: exit 2, before anything runs.
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : replayExitCodes.badInput))
    .action(async (opts: ReplayOptions) => {
      let filter: RoundFilter;
      try {
        filter = parseFilter(opts);
        if (opts.writeTo !== undefined && opts.with === undefined) throw new MabeamError('INVALID_OPTIONS', '--write-to writes a counterfactual history: give the rule with --with.');
        if (opts.writeTo !== undefined && opts.writeTo === opts.prefix) throw new MabeamError('INVALID_OPTIONS', `--write-to must name another prefix than --prefix (${opts.prefix}): the recorded log is never written to.`);
      } catch (error) {
        return badInput(error);
      }
      let rule: string | undefined;
      let protocols: ProtocolRegistry;
      try {
        const modules = [...opts.protocols];
        const withModule = opts.with !== undefined && /[/\\]|\.(m?[jt]s)$/.test(opts.with);
        if (withModule) modules.push(opts.with!);
        const loaded = await loadProtocolModules(modules);
        protocols = loaded.protocols;
        const { added } = loaded;
        if (opts.with !== undefined) {
          rule = withModule ? added[added.length - 1] : opts.with;
          if (!rule || !protocols.get(rule)) throw new MabeamError('INVALID_OPTIONS', withModule ? `${opts.with} added no protocol.` : `No protocol "${opts.with}" (known: ${protocols.names().join(', ')}).`);
        }
      } catch (error) {
        return badInput(error);
      }
      const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
      const c = await connect(endpoints, logger(), 'mabeam-replay', { redis: false });
      const started = Date.now();
      const bar = opts.progress ? progressBar() : undefined;
      try {
        const onProgress = bar ? { onProgress: (read: number, total: number) => bar.update(read, total) } : {};
        if (rule !== undefined) {
          const history = await readHistory({ kafka: c.kafka, codec: c.codec, prefix: opts.prefix, filter, timeoutMs: 600_000, ...onProgress });
          bar?.stop();
          const seconds = (Date.now() - started) / 1000;
          const decided: CounterfactualDecision[] = [];
          const report = counterfactual(history, protocols, rule, filter, opts.writeTo ? (d) => decided.push(d) : undefined);
          const written = opts.writeTo ? await writeCounterfactual({ admin: c.admin, producer: c.producer, codec: c.codec, definitions: c.definitions, sourcePrefix: opts.prefix, prefix: opts.writeTo }, decided) : undefined;
          printCounterfactual(report, opts, seconds, written);
          process.exitCode = replayExitCodes.ok;
          return;
        }
        // The rounds printed: only those that fail unless --all.
        const keep = opts.all ? 'all' : 'faults';
        const verify = signaturesRequired(opts.requireSignatures || undefined);
        const keys = verify && opts.workers <= 1 ? { keys: await loadKeyDirectory(c.kafka, c.codec, opts.prefix, { timeoutMs: 600_000 }) } : {};
        const report =
          opts.workers > 1
            ? await parallelReplay({ kafka: c.kafka, endpoints, prefix: opts.prefix, filter, protocolModules: opts.protocols, workers: opts.workers, timeoutMs: 600_000, keep, requireSignatures: verify, ...onProgress })
            : replayHistory(await readHistory({ kafka: c.kafka, codec: c.codec, prefix: opts.prefix, filter, timeoutMs: 600_000, onComplete: settleAsRead(protocols), ...keys, ...onProgress }), protocols, filter, { keep });
        bar?.stop();
        printReplay(report, opts, (Date.now() - started) / 1000);
        process.exitCode = report.ok ? replayExitCodes.ok : replayExitCodes.notIdentical;
      } catch (error) {
        // A prefix without the round topics is bad input, like a bad flag.
        if (isMabeamError(error) && error.code === 'INVALID_OPTIONS') return badInput(error);
        throw error;
      } finally {
        bar?.stop();
        await c.close();
      }
    });
}

function badInput(error: unknown): void {
  process.stderr.write(`mabeam replay: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = replayExitCodes.badInput;
}

function parseFilter(opts: ReplayOptions): RoundFilter {
  const filter: RoundFilter = {};
  if (opts.round.length > 0) filter.roundIds = new Set(opts.round);
  if (opts.protocol.length > 0) filter.protocols = new Set(opts.protocol);
  for (const [name, text] of [['since', opts.since], ['until', opts.until]] as const) {
    if (text === undefined) continue;
    const bound = parseBound(text);
    if ('time' in bound) filter[name] = bound.time;
    else filter[name === 'since' ? 'sinceOffset' : 'untilOffset'] = bound.offsets;
  }
  if (filter.since !== undefined && filter.until !== undefined && filter.until <= filter.since) throw new InvalidArgumentError('--until must be after --since.');
  return filter;
}

/** A progress bar of records read / to read, with the rate, on stderr (a line every 2 s when stderr is not a terminal). */
function progressBar(): { update(read: number, total: number): void; stop(): void } {
  const bar = new SingleBar(
    { stream: process.stderr, format: 'reading the log {bar} {percentage}% | {value}/{total} records | {rate}/s | eta {eta_formatted}', noTTYOutput: true, notTTYSchedule: 2_000, hideCursor: true, etaBuffer: 50 },
    Presets.shades_classic,
  );
  const started = Date.now();
  let running = false;
  return {
    update(read, total) {
      const rate = Math.round(read / Math.max(0.001, (Date.now() - started) / 1000));
      if (!running) {
        running = true;
        bar.start(total, read, { rate });
        return;
      }
      bar.setTotal(total);
      bar.update(read, { rate });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

const count = (n: number) => n.toLocaleString('en-US');
const show = (v: unknown) => (v === undefined ? '—' : JSON.stringify(v));
const describeDifferences = (ds: readonly Difference[]) => ds.slice(0, 3).map((d) => `${d.field}: ${show(d.recorded)} → ${show(d.replayed)}`).join('; ') + (ds.length > 3 ? ` (+${ds.length - 3} more)` : '');

function detail(r: RoundReplay): string {
  switch (r.verdict) {
    case 'different':
      if (r.forged) return `counted answers refused for their signature: ${r.forged.map((f) => `${f.agentId} ${f.reasonCode}`).join(', ')}; recorded → replayed: ${describeDifferences(r.differences)}`;
      return `recorded → replayed: ${describeDifferences(r.differences)}`;
    case 'contradictory':
      return `${r.outcomes} outcomes; they differ in ${describeDifferences(r.differences)}`;
    case 'duplicate':
      return `the same outcome ${r.outcomes} times`;
    case 'incomplete':
      return `missing: ${r.missing.slice(0, 3).join(', ')}${r.missing.length > 3 ? ` (+${r.missing.length - 3} more)` : ''}`;
    case 'refused':
      return `${r.refusal?.reasonCode}: ${r.refusal?.reason}`;
    case 'open':
      return 'not closed when the log was read';
    case 'identical':
      return `${r.recorded?.status}${r.recorded?.winners.length ? ` ${r.recorded.winners.join(',')}` : ''}${r.recorded?.price !== null && r.recorded?.price !== undefined ? ` at ${r.recorded.price}` : ''}`;
  }
}

function printReplay(report: ReplayReport, opts: ReplayOptions, seconds: number): void {
  const listed = opts.all ? report.rounds : report.rounds.filter((r) => faultVerdicts.includes(r.verdict));
  if (opts.json) {
    out(JSON.stringify({ prefix: opts.prefix, seconds, eventsPerSecond: Math.round(report.events / Math.max(seconds, 0.001)), ...report, rounds: listed }));
    return;
  }
  const judged = roundsJudged(report);
  out(`replayed ${count(judged)} round${judged === 1 ? '' : 's'} from ${count(report.events)} events under ${opts.prefix} in ${seconds.toFixed(1)} s (${count(Math.round(report.events / Math.max(seconds, 0.001)))} events/s)`);
  out(table([
    ['identical', count(report.identical)],
    ['different', count(report.different)],
    ['contradictory', count(report.contradictory)],
    ['duplicate', count(report.duplicate)],
    ['incomplete', count(report.incomplete)],
    ['open', count(report.open)],
    ['refused', count(report.refused)],
    ['undecodable records', count(report.undecodable.length)],
  ].map(([a, b]) => [`  ${a}`, b!.padStart(8)])));
  if (listed.length > 0) {
    out();
    out(table([['ROUND', 'PROTOCOL', 'VERDICT', 'DETAIL'], ...listed.map((r) => [r.roundId, r.protocol, r.verdict, detail(r)])]));
  }
  for (const id of report.notFound) out(`round ${id}: not in the log`);
  if (report.undecodable.length > 0) {
    out();
    out(table([['UNDECODABLE AT', 'REASON', 'MESSAGE'], ...report.undecodable.map((u) => [`${u.topic}/${u.partition}@${u.offset}`, u.code, u.message])]));
  }
  out();
  const roundsFine = faultVerdicts.every((v) => report[v as 'different'] === 0) && report.notFound.length === 0;
  const unread = report.undecodable.length;
  out(report.ok ? 'the log replays identically' : roundsFine ? `every round replays identically, but ${count(unread)} record${unread === 1 ? '' : 's'} of the log do${unread === 1 ? 'es' : ''} not decode (listed above; their consumers dead-lettered them)` : 'the log does NOT replay identically');
}

function printCounterfactual(report: CounterfactualReport, opts: ReplayOptions, seconds: number, written: number | undefined): void {
  const listed = opts.all ? report.rounds : report.rounds.filter((r) => r.verdict !== 'same');
  if (opts.json) {
    out(JSON.stringify({ prefix: opts.prefix, seconds, ...report, rounds: listed, ...(written !== undefined ? { written: { prefix: opts.writeTo, records: written } } : {}) }));
    return;
  }
  out(`decided ${count(report.considered)} recorded ${report.kind} round${report.considered === 1 ? '' : 's'} again under ${report.protocol} (${count(report.events)} events under ${opts.prefix}, ${seconds.toFixed(1)} s)`);
  out(`  same ${count(report.same)}, changed ${count(report.changed)}, not comparable ${count(report.notComparable)}, left out (another kind, or incomplete) ${count(report.skipped)}`);
  if (report.firstChanged) {
    const f = report.firstChanged;
    out(`  first round that changes: ${f.roundId}${f.request ? ` (${f.request.topic}/${f.request.partition}@${f.request.offset})` : ''}: ${describeDifferences(f.differences)}`);
  } else out('  no round changes');
  if (report.auctions) {
    const a = report.auctions;
    out(`  auctions: price total ${count(a.priceTotalRecorded)} → ${count(a.priceTotalCounterfactual)}; decided ${count(a.decidedRecorded)} → ${count(a.decidedCounterfactual)}; winners changed in ${count(a.winnersChanged)}, prices in ${count(a.pricesChanged)}`);
  }
  if (report.consensus) {
    const k = report.consensus;
    out(`  consensus: decided ${count(k.decidedRecorded)} → ${count(k.decidedCounterfactual)}; decisions flipped ${count(k.decisionsFlipped)}; status changed ${count(k.statusChanged)}`);
  }
  if (listed.length > 0) {
    out();
    out(table([['ROUND', 'RECORDED UNDER', 'VERDICT', 'DETAIL'], ...listed.map((r) => [r.roundId, r.recordedProtocol, r.verdict, r.verdict === 'not-comparable' ? r.reason ?? '' : describeDifferences(r.differences)])]));
  }
  if (written !== undefined) {
    out();
    out(`wrote ${count(written)} records under ${opts.writeTo} (replay them: mabeam replay --prefix ${opts.writeTo})`);
  }
}
