import type { Command } from 'commander';
import { auditAgent, auditRound, auditVariable } from '../../audit/index.ts';
import type { AgentAudit, AuditConnection, LogPosition, RoundAudit, RoundRequestInfo, VariableAudit, WrittenBy } from '../../audit/index.ts';
import { codecFor } from '../../codec/codec.ts';
import { kafkaFor } from '../../kafka/client.ts';
import type { Logger } from '../../log/logger.ts';
import type { UndecodableRecord } from '../../replay/scanLog.ts';
import { loadCatalog } from '../../schemas/catalog.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix, loadTopicDefinitions } from '../../topics/index.ts';
import { out, table } from '../output.ts';

interface AuditOptions {
  prefix: string;
  json?: boolean;
}

export function registerAuditCommands(program: Command, logger: () => Logger): void {
  const audit = program
    .command('audit')
    .description('the story of a round, a variable or an agent, read from the log (read-only)')
    .addHelpText('after', '\nExit codes: 0 found, 1 not in the log [NOT_IN_LOG] or another error.');

  /** An audit's connection: Kafka and the registry only (an audit writes nothing and needs no Redis). */
  const withConnection = async <T>(prefix: string, work: (conn: AuditConnection) => Promise<T>): Promise<T> => {
    const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
    const kafka = kafkaFor(endpoints, 'mabeam-audit', logger());
    const [catalog, definitions] = await Promise.all([loadCatalog(), loadTopicDefinitions()]);
    const codec = codecFor(endpoints, catalog);
    return work({ kafka, codec, prefix, definitions });
  };

  const command = <T>(name: string, description: string, run: (conn: AuditConnection, id: string) => Promise<T>, story: (audit: T) => string) =>
    audit
      .command(`${name} <id>`)
      .description(description)
      .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
      .option('--json', 'print the audit as one JSON object')
      .action(async (id: string, opts: AuditOptions) => {
        const result = await withConnection(opts.prefix, (conn) => run(conn, id));
        out(opts.json ? JSON.stringify(result, null, 2) : story(result));
      });

  command('round', "a round's request, every answer (counted or refused, and why), its stages, closing, outcome and directives; reads only its partition", auditRound, roundStory);
  command('variable', 'every version of a variable (values, writer, cause, the request behind it) and every refused change', auditVariable, variableStory);
  command('agent', "an agent's lifecycle, restarts and migrations, its bids and votes, rounds won, directives and handler failures", auditAgent, agentStory);
}

// ---- the stories ----

const time = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));
const json = (value: unknown): string => (value === null || value === undefined ? '—' : typeof value === 'string' ? value : JSON.stringify(value));
const list = (items: readonly string[], none = '—'): string => (items.length > 0 ? items.join(', ') : none);
const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export function where(p: LogPosition): string {
  const moved = p.forwardedFrom ? ` (moved here from partition ${p.forwardedFrom.partition} offset ${p.forwardedFrom.offset})` : '';
  return `${p.topic}/${p.partition}@${p.offset}${moved}`;
}

const transaction = (w: WrittenBy | null): string =>
  w === null ? 'writer not reported' : w.transactional ? `transaction of producer ${w.producerId}, epoch ${w.producerEpoch}` : `producer ${w.producerId} (not in a transaction)`;

const indent = (lines: string, by = '  '): string => lines.split('\n').map((l) => `${by}${l}`).join('\n');

function undecodableLines(records: readonly UndecodableRecord[], where: string): string[] {
  if (records.length === 0) return [];
  const shown = records.slice(0, 20).map((u) => `  ${u.topic}/${u.partition}@${u.offset}  ${u.code}  ${u.message}`);
  return ['', `Undecodable records on ${where}: ${records.length} (dead-lettered by their consumers)`, ...shown, ...(records.length > 20 ? [`  … ${records.length - 20} more (--json lists them all)`] : [])];
}

function requestLine(q: RoundRequestInfo): string {
  const who = q.kind === 'auction' ? 'bidders' : 'voters';
  const parts = [
    `${q.kind === 'auction' ? 'item' : 'subject'} ${json(q.subject)}`,
    `${who} ${list(q.eligible, 'anyone')}`,
    ...(q.requiredCapabilities.length > 0 ? [`capabilities ${q.requiredCapabilities.join(', ')}`] : []),
    ...(q.kind === 'auction' ? [`reserve ${q.reservePrice ?? 'none'}`] : [`options ${list(q.options)}`]),
    ...(q.quorum !== null ? [`quorum ${q.quorum}`] : []),
    ...(Object.keys(q.weights).length > 0 ? [`weights ${JSON.stringify(q.weights)}`] : []),
    `deadline ${time(q.deadline)}`,
    ...(q.parameters !== null ? [`parameters ${json(q.parameters)}`] : []),
  ];
  return parts.join('; ');
}

export function roundStory(a: RoundAudit): string {
  const o = a.outcome;
  const headline = o
    ? o.status === 'decided'
      ? `${o.winners.length > 0 ? `${list(o.winners)} won` : 'decided'}${o.price !== null ? ` at ${o.price}` : ''}${o.value !== null && o.price === null ? ` (${json(o.value)})` : ''} — ${o.reason}`
      : `${o.status} — ${o.reason}`
    : a.state === 'open'
      ? 'open: no outcome yet'
      : a.state === 'refused'
        ? `refused: ${a.request?.refused?.reasonCode} — ${a.request?.refused?.reason}`
        : 'never opened: the log holds no request for it';
  const lines = [`Round ${a.roundId}: ${a.protocol ?? 'unknown protocol'}${a.kind ? ` ${a.kind}` : ''}, ${a.state}`, `  ${headline}`];

  if (a.request) {
    const q = a.request;
    lines.push('', `Request   ${q.type} ${q.eventId} from ${q.sentBy} at ${time(q.eventTime)}`, `          ${requestLine(q)}`, `          at ${where(q.position)}`);
    if (q.refused) lines.push(`          refused ${q.refused.reasonCode}: ${q.refused.reason}`);
  }
  const others = a.requests.filter((q) => q !== a.request && (q.stage === 0 || q.refused));
  for (const q of others) lines.push(`Request   ${q.type} ${q.eventId} (stage ${q.stage}) from ${q.sentBy} at ${where(q.position)}${q.refused ? `: refused ${q.refused.reasonCode} — ${q.refused.reason}` : ': opened the round again'}`);

  lines.push('', `Answers (${a.answers.length})`);
  if (a.answers.length > 0) {
    const staged = a.stages.length > 1;
    lines.push(
      indent(
        table([
          ['AGENT', 'ANSWER', ...(staged ? ['STAGE'] : []), 'TIME', 'VERDICT', 'POSITION'],
          ...a.answers.map((x) => [
            x.agentId,
            x.answer,
            ...(staged ? [x.stage === null ? '—' : String(x.stage)] : []),
            time(x.eventTime),
            x.verdict === 'refused' ? `refused ${x.refusal!.reasonCode}` : x.verdict === 'counted' ? 'counted' : 'neither',
            `${where(x.position)}${x.duplicates.length > 0 ? ` +${x.duplicates.length} cop${x.duplicates.length === 1 ? 'y' : 'ies'}` : ''}`,
          ]),
        ]),
      ),
    );
    const refused = a.answers.filter((x) => x.verdict === 'refused');
    if (refused.length > 0) lines.push('  Refused:', ...refused.map((x) => `    ${x.agentId} (${x.answer}): ${x.refusal!.reasonCode} — ${x.refusal!.reason}`));
    const neither = a.answers.filter((x) => x.verdict === 'neither');
    if (neither.length > 0) lines.push('  Neither counted nor refused:', ...neither.map((x) => `    ${x.agentId} (${x.answer}): ${x.note ?? ''}`));
    const copies = a.answers.flatMap((x) => x.duplicateRefusals.map((f) => `    ${x.agentId}: a copy of ${x.eventId} refused ${f.reasonCode} at ${where(f.position)}`));
    if (copies.length > 0) lines.push('  Copies:', ...copies);
  }

  if (a.stages.length > 1) {
    lines.push('', `Stages (${a.stages.length})`);
    for (const s of a.stages) {
      const q = s.request;
      const asked = q ? `request ${q.eventId} from ${q.sentBy} at ${where(q.position)}${q.stage > 0 ? `, ${transaction(q.writtenBy)}` : ''}; parameters ${json(q.parameters)}` : 'no request in the log';
      const closed = s.closed ? `closed ${s.closed.cause}${s.closed.final ? ' (final)' : ''}, ${s.counted} counted (${list(s.closed.countedAgents.map((x) => x ?? '?'))}), ${s.refused} refused` : 'not closed';
      lines.push(`  stage ${s.stage}: ${asked}`, `           ${closed}`);
    }
  }

  if (a.closed) {
    const c = a.closed;
    lines.push('', `Closed    ${c.cause}${a.stages.length > 1 ? ` at stage ${c.stage}` : ''}; ${c.countedEventIds.length} answer${c.countedEventIds.length === 1 ? '' : 's'} counted (${list(c.countedAgents.map((x) => x ?? '?'))})`, `          RoundClosed ${c.eventId} at ${where(c.position)}, ${transaction(c.writtenBy)}`);
  }
  for (const [i, x] of a.outcomes.entries()) {
    lines.push(
      '',
      `${i === 0 ? 'Outcome' : 'Outcome+'}   ${x.status}: winners ${list(x.winners, 'none')}; price ${x.price ?? '—'}; value ${json(x.value)}`,
      `          why: ${x.reason}`,
      ...(x.details !== null && !(typeof x.details === 'object' && Object.keys(x.details as object).length === 0) ? [`          details: ${json(x.details)}`] : []),
      `          RoundOutcome ${x.eventId} at ${where(x.position)}, ${transaction(x.writtenBy)}`,
    );
  }
  if (a.outcomes.length > 1) lines.push(`          the log holds ${a.outcomes.length} outcomes of this round`);

  if (a.directives.length > 0 || a.missingDirectives.length > 0) {
    lines.push('', 'Directives');
    for (const d of a.directives) lines.push(`  ${d.action} to ${d.agentId} ${json(d.parameters)}: ${d.eventId}${d.expectedId ? '' : ' (not the id the coordinator derives)'} at ${where(d.position)}, ${transaction(d.writtenBy)}`);
    for (const w of a.missingDirectives) lines.push(`  award to ${w}: not in the log (read partitions ${a.read.directivePartitions.join(', ')} of directives)`);
  }
  if (a.otherRefusals.length > 0) lines.push('', 'Other refusals', ...a.otherRefusals.map((f) => `  ${f.rejectedEventId ?? '—'}${f.agentId ? ` (${f.agentId})` : ''}: ${f.reasonCode} — ${f.reason} at ${where(f.position)}`));
  if (a.ignored.length > 0) lines.push('', 'Not taken by the coordinator', ...a.ignored.map((x) => `  ${x.type} ${x.eventId ?? ''} at ${where(x.position)}: ${x.why}`));
  lines.push(...undecodableLines(a.undecodable, `partition ${a.partition}`));
  lines.push(
    '',
    `Read partition ${a.read.partition} of ${a.read.topics.join(', ')} (${count(a.read.records, 'record')})${a.read.directivePartitions.length > 0 ? `; ${a.read.directivePartitions.length === 1 ? 'partition' : 'partitions'} ${a.read.directivePartitions.join(', ')} of directives (${count(a.read.directiveRecords, 'record')})` : ''}.`,
  );
  return lines.join('\n');
}

export function variableStory(a: VariableAudit): string {
  const lines = [`Variable ${a.variableId}: ${a.current ? `version ${a.current.version}, value ${json(a.current.value)}` : 'no version applied'}`];
  const def = a.definition as { type?: unknown; valueType?: unknown; affectedAgents?: unknown } | null;
  if (def && typeof def === 'object') lines.push(`  defined as ${json(def.type)} ${json(def.valueType)}${Array.isArray(def.affectedAgents) && def.affectedAgents.length > 0 ? `; affected agents ${def.affectedAgents.join(', ')}` : ''}`);
  lines.push('', `Versions (${a.versions.length})`);
  if (a.versions.length > 0) {
    lines.push(indent(table([
      ['VERSION', 'VALUE', 'PREVIOUS', 'WRITER', 'CAUSE', 'TIME', 'POSITION'],
      ...a.versions.map((v) => [String(v.version), json(v.value), json(v.previousValue), v.writerId, v.cause.summary, time(v.eventTime), where(v.position)]),
    ])));
  }
  lines.push('', `Refused changes (${a.refused.length})`);
  if (a.refused.length > 0) {
    lines.push(indent(table([
      ['CODE', 'ATTEMPTED', 'REQUESTER', 'CAUSE', 'TIME', 'POSITION'],
      ...a.refused.map((f) => [f.reasonCode, json(f.attemptedValue), f.requesterId, f.cause?.summary ?? '—', time(f.eventTime), where(f.position)]),
    ])));
    lines.push('  Why:', ...a.refused.map((f) => `    ${f.reasonCode}: ${f.reason}`));
  }
  if (a.unanswered.length > 0) lines.push('', `Requests not answered (${a.unanswered.length})`, ...a.unanswered.map((q) => `  ${q.eventId} from ${q.requesterId}: ${json(q.value)} (${q.cause}) at ${where(q.position)}`));
  lines.push(...undecodableLines(a.undecodable, 'the partitions read'));
  lines.push('', `Read ${Object.entries(a.read.partitions).map(([t, p]) => `${t}/${p}`).join(', ')} (${count(a.read.records, 'record')}).`);
  return lines.join('\n');
}

export function agentStory(a: AgentAudit): string {
  const r = a.registration;
  const lines = [`Agent ${a.agentId}${r ? `: ${r.role}, capabilities ${list(r.capabilities)}, consumer group ${r.consumerGroup}` : ' (no registration in the log)'}`];
  const counted = a.answers.filter((x) => x.verdict === 'counted').length;
  const refused = a.answers.filter((x) => x.verdict === 'refused').length;
  lines.push(`  ${count(a.answers.length, 'answer')} (${counted} counted, ${refused} refused), ${count(a.roundsWon.length, 'round')} won, ${count(a.directives.length, 'directive')}, ${count(a.handlerFailures.length, 'handler failure')}, ${count(a.restarts.length, 'restart')}, ${count(a.migrations.length, 'migration')}`);

  lines.push('', `Lifecycle (${a.lifecycle.length})`);
  if (a.lifecycle.length > 0) {
    lines.push(indent(table([['TIME', 'FROM', 'TO', 'INSTANCE', 'HOST', 'REASON'], ...a.lifecycle.map((l) => [time(l.eventTime), l.from ?? '—', l.to, l.instanceId ?? '—', l.host ?? '—', l.reason])])));
  }
  for (const x of a.restarts) lines.push(`  restart at ${time(x.at)}: ${x.instanceId ?? 'a new instance'} after ${x.after}${x.previousInstanceId ? ` of ${x.previousInstanceId}` : ''} (${x.reason})`);
  for (const m of a.migrations) lines.push(`  migration at ${time(m.at)} from ${m.fromInstanceId ?? '?'}${m.resumedAt !== null ? ` to ${m.toInstanceId ?? 'a new instance'} at ${time(m.resumedAt)}` : ', not resumed yet'} (${m.reason})`);

  lines.push('', `Answers (${a.answers.length})`);
  if (a.answers.length > 0) {
    lines.push(indent(table([
      ['ROUND', 'TYPE', 'ANSWER', 'TIME', 'VERDICT', 'POSITION'],
      ...a.answers.map((x) => [x.roundId, x.type, x.answer, time(x.eventTime), x.verdict === 'refused' ? `refused ${x.refusal!.reasonCode}` : x.verdict, where(x.position)]),
    ])));
    const why = a.answers.filter((x) => x.verdict !== 'counted');
    if (why.length > 0) lines.push('  Why not counted:', ...why.map((x) => `    ${x.roundId}: ${x.refusal ? `${x.refusal.reasonCode} — ${x.refusal.reason}` : (x.note ?? '')}`));
  }
  lines.push('', `Rounds won (${a.roundsWon.length})`);
  if (a.roundsWon.length > 0) {
    lines.push(indent(table([['ROUND', 'PROTOCOL', 'PRICE', 'VALUE', 'WHY', 'POSITION'], ...a.roundsWon.map((w) => [w.roundId, w.protocol, w.price === null ? '—' : String(w.price), json(w.value), w.reason, where(w.position)])])));
  }
  lines.push('', `Directives (${a.directives.length})`);
  if (a.directives.length > 0) {
    lines.push(indent(table([
      ['ACTION', 'ABOUT', 'FROM', 'TIME', 'HANDLED', 'POSITION'],
      ...a.directives.map((d) => [d.action, d.roundId ? `round ${d.roundId}` : d.variableId ? `variable ${d.variableId}` : '—', d.sentBy, time(d.eventTime), d.handling, where(d.position)]),
    ])));
  }
  if (a.handlerFailures.length > 0) {
    lines.push('', `Handler failures (${a.handlerFailures.length})`);
    lines.push(indent(table([['TIME', 'HANDLER', 'ABOUT', 'INSTANCE', 'ERROR'], ...a.handlerFailures.map((f) => [time(f.eventTime), f.handler, f.subjectId, f.instanceId, f.error])])));
  }
  lines.push(...undecodableLines(a.undecodable, 'the partitions read'));
  lines.push('', `Read ${a.read.topics.join(', ')} (partition ${a.read.agentPartition} of the agent-keyed topics; ${count(a.read.records, 'record')}).`);
  return lines.join('\n');
}
