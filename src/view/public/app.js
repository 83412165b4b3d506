// The live view: one page over the view server's JSON API (/api/…) and its
// event stream (/api/events). Plain DOM, no framework: every section is
// rendered from `state` by its own function, and each event updates `state`
// and renders what it touched. Text goes in through text nodes only.

const state = {
  overview: null,
  agents: new Map(),
  rounds: new Map(),
  variables: new Map(),
  studies: new Map(),
  deadLetters: { counts: [], latest: [] },
  selected: { round: null, variable: null, study: null },
  filters: { capability: '', role: '', protocol: '' },
  agentsLoaded: false,
  /** Rows to flash on their next render (something changed in them). */
  fresh: new Set(),
};

const roundLimit = 100;
const healthOrder = ['dead', 'unresponsive', 'lagging', 'alive'];
const stateOrder = ['running', 'starting', 'migrating', 'registered', 'stopping', 'stopped', 'failed'];

// ---------------------------------------------------------------- helpers

const $ = (selector, root = document) => root.querySelector(selector);

/** An element: h('td', { class: 'num', dataset: { field: 'price' } }, 'text', child, …). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const svgNs = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svgNs, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') for (const [k, v] of Object.entries(value)) { if (v !== undefined && v !== null) el.dataset[k] = String(v); }
    else if (key === 'on') for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

async function api(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.error ? `${body.error}${body.code ? ` [${body.code}]` : ''}` : `${path}: HTTP ${response.status}`);
  return body;
}

let toastTimer;
function toast(message) {
  const el = $('#toast');
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

/** Runs fn at most once per `ms`, the last call winning (for refreshes that events trigger). */
function throttle(fn, ms) {
  let timer = null;
  let again = false;
  return () => {
    if (timer) { again = true; return; }
    fn();
    timer = setTimeout(function done() {
      timer = null;
      if (again) { again = false; fn(); timer = setTimeout(done, ms); }
    }, ms);
  };
}

function age(ms) {
  if (ms === null || ms === undefined) return '–';
  const d = Math.max(0, Date.now() - ms);
  if (d < 1000) return 'now';
  if (d < 60_000) return `${Math.floor(d / 1000)} s ago`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)} min ago`;
  if (d < 86_400_000) return `${Math.floor(d / 3_600_000)} h ago`;
  return `${Math.floor(d / 86_400_000)} d ago`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

function num(v, digits = 4) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en');
  return String(Number(v.toPrecision(digits)));
}

function clock(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false }) + `.${String(ms % 1000).padStart(3, '0')}`;
}

function json(v, max = 80) {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  if (text === undefined) return '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function short(id, max = 18) {
  if (!id) return '';
  return id.length > max ? `${id.slice(0, max - 1)}…` : id;
}

/** A live age: the ticker keeps its text current. */
function since(ms) {
  return h('span', { class: 'since', dataset: ms ? { since: ms } : {}, title: ms ? new Date(ms).toISOString() : '' }, age(ms));
}

function badge(kind, text, title) {
  return h('span', { class: `badge ${kind}`, title }, text);
}

function emptyState(section, isEmpty) {
  const p = $(`#${section} > .empty`);
  if (p) p.hidden = !isEmpty;
}

function flashIf(tr, key) {
  if (state.fresh.delete(key)) tr.classList.add('flash');
}

function fillSelect(select, values, current) {
  const options = ['', ...[...values].sort()];
  const now = [...select.options].map((o) => o.value);
  if (now.join('\n') === options.join('\n')) return;
  select.replaceChildren(...options.map((v) => h('option', { value: v, selected: v === current }, v || 'all')));
}

// ---------------------------------------------------------------- header

function renderOverview() {
  const o = state.overview;
  if (!o) return;
  $('#prefix').textContent = o.prefix;
  document.title = `MABEAM · ${o.prefix}`;
  for (const el of document.querySelectorAll('#overview [data-count]')) {
    const value = o[el.dataset.count];
    const text = typeof value === 'number' ? value.toLocaleString('en') : '–';
    if (el.textContent !== text) {
      el.textContent = text;
      el.classList.remove('bump');
      void el.offsetWidth;
      el.classList.add('bump');
    }
  }
  $('#overview [data-count="deadLetters"]').closest('.count').classList.toggle('alarm', (o.deadLetters ?? 0) > 0);
}

// ---------------------------------------------------------------- agents

function renderAgents() {
  const section = $('#agents');
  const table = $('table', section);
  const all = [...state.agents.values()];
  fillSelect($('#agent-capability'), new Set(all.flatMap((a) => a.capabilities)), state.filters.capability);
  fillSelect($('#agent-role'), new Set(all.map((a) => a.role).filter(Boolean)), state.filters.role);
  const shown = all.filter((a) => (!state.filters.capability || a.capabilities.includes(state.filters.capability)) && (!state.filters.role || a.role === state.filters.role));

  const summary = $('#agent-health-summary');
  const byHealth = new Map();
  for (const a of shown) byHealth.set(a.health, (byHealth.get(a.health) ?? 0) + 1);
  summary.replaceChildren(...healthOrder.slice().reverse().filter((k) => byHealth.has(k)).map((k) => badge(k, `${byHealth.get(k)} ${k}`)));

  const groups = new Map();
  for (const a of shown) {
    const key = a.state ?? 'unknown';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  const rank = (k) => { const i = stateOrder.indexOf(k); return i < 0 ? stateOrder.length : i; };
  const bodies = [...groups.keys()].sort((x, y) => rank(x) - rank(y) || x.localeCompare(y)).map((key) => {
    const rows = groups.get(key).sort((x, y) => healthOrder.indexOf(x.health) - healthOrder.indexOf(y.health) || x.agentId.localeCompare(y.agentId));
    return h('tbody', { dataset: { state: key } },
      h('tr', { class: 'group' }, h('th', { colspan: 6 }, h('span', { class: `state ${key}` }, key), h('span', { class: 'muted' }, ` · ${rows.length}`))),
      rows.map(agentRow));
  });
  for (const b of table.querySelectorAll('tbody')) b.remove();
  table.append(...bodies);
  emptyState('agents', all.length === 0);
}

function agentRow(a) {
  const mb = a.memoryRssBytes === null ? null : a.memoryRssBytes / 1_048_576;
  const tr = h('tr', { dataset: { agentId: a.agentId, health: a.health, state: a.state ?? 'unknown', role: a.role } },
    h('td', {}, h('div', { class: 'agent-id', title: a.instanceId ? `instance ${a.instanceId}${a.host ? ` on ${a.host}` : ''}` : '' }, a.agentId),
      h('div', { class: 'caps' }, a.capabilities.map((c) => h('span', { class: 'cap' }, c)), a.host ? h('span', { class: 'muted host' }, a.host) : null)),
    h('td', {}, a.role),
    h('td', {}, badge(a.health, a.health, a.healthReason)),
    h('td', { class: 'num', dataset: { field: 'memory' } }, mb === null ? '–' : `${mb.toFixed(mb < 10 ? 1 : 0)} MB`),
    h('td', { class: 'num', dataset: { field: 'lag' } }, a.consumerLag === null ? '–' : num(a.consumerLag)),
    h('td', { class: 'num', dataset: { field: 'heartbeat' } }, since(a.lastHeartbeat)),
  );
  flashIf(tr, `agent:${a.agentId}`);
  return tr;
}

function upsertAgent(a) {
  const before = state.agents.get(a.agentId);
  if (before ? before.health !== a.health || before.state !== a.state : state.agentsLoaded) state.fresh.add(`agent:${a.agentId}`);
  state.agents.set(a.agentId, a);
}

// ---------------------------------------------------------------- rounds

const roundTime = (r) => r.openedAt ?? r.decidedAt ?? 0;

function renderRounds() {
  const rounds = [...state.rounds.values()].sort((x, y) => roundTime(y) - roundTime(x));
  fillSelect($('#round-protocol'), new Set(rounds.map((r) => r.protocol)), state.filters.protocol);
  const shown = rounds.filter((r) => !state.filters.protocol || r.protocol === state.filters.protocol);
  const byStatus = new Map();
  for (const r of shown) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
  $('#round-status-summary').replaceChildren(...['open', 'decided', 'no-decision', 'failed'].filter((k) => byStatus.has(k)).map((k) => badge(k, `${byStatus.get(k)} ${k}`)));
  $('#rounds tbody').replaceChildren(...shown.map(roundRow));
  emptyState('rounds', rounds.length === 0);
}

function roundRow(r) {
  const tr = h('tr', {
    class: `clickable${state.selected.round === r.roundId ? ' selected' : ''}`,
    dataset: { roundId: r.roundId, status: r.status, protocol: r.protocol, kind: r.kind },
    title: r.reason ?? '',
    on: { click: () => selectRound(r.roundId) },
  },
  h('td', { title: r.roundId },
    h('div', { class: 'mono' }, short(r.roundId, 22)),
    h('div', { class: 'sub-line' }, h('span', { class: `proto ${r.kind}`, dataset: { field: 'protocol' } }, r.protocol), h('span', { class: 'muted small' }, r.openedAt ? since(r.openedAt) : ''))),
  h('td', {}, badge(r.status, r.status, r.reason ?? '')),
  h('td', { dataset: { field: 'winners' } }, r.winners.length ? r.winners.map((w) => h('span', { class: 'winner' }, w))
    // A consensus decides a value, not a winner: its reason says which.
    : r.kind === 'consensus' && r.status === 'decided' && r.reason ? h('span', { class: 'muted small' }, short(r.reason, 26))
    : h('span', { class: 'muted' }, '–')),
  h('td', { class: 'num', dataset: { field: 'price' } }, num(r.price)),
  h('td', { class: 'num', dataset: { field: 'latency' } }, latencyBar(r.latencyMs)),
  h('td', { class: 'num', dataset: { field: 'answers' } }, r.answers));
  flashIf(tr, `round:${r.roundId}`);
  return tr;
}

function latencyBar(ms) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, '–');
  // A log scale from 10 ms to 60 s: a glance says which rounds were slow.
  const pct = Math.max(4, Math.min(100, (Math.log10(Math.max(ms, 10)) - 1) / (Math.log10(60_000) - 1) * 100));
  return h('span', { class: 'latency' }, h('i', { style: `width:${pct.toFixed(0)}%` }), duration(ms));
}

function upsertRound(r) {
  state.fresh.add(`round:${r.roundId}`);
  state.rounds.set(r.roundId, r);
  if (state.rounds.size > roundLimit * 2) {
    const oldest = [...state.rounds.values()].sort((x, y) => roundTime(x) - roundTime(y)).slice(0, state.rounds.size - roundLimit * 2);
    for (const o of oldest) if (o.roundId !== state.selected.round) state.rounds.delete(o.roundId);
  }
}

async function selectRound(roundId, { scroll = true } = {}) {
  state.selected.round = roundId;
  setHash();
  for (const tr of document.querySelectorAll('#rounds tbody tr')) tr.classList.toggle('selected', tr.dataset.roundId === roundId);
  const section = $('#round-detail');
  section.hidden = false;
  section.dataset.roundId = roundId;
  section.dataset.loading = 'true';
  $('#round-detail-id').textContent = roundId;
  if (scroll) section.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  await loadRound(roundId);
}

async function loadRound(roundId) {
  const section = $('#round-detail');
  try {
    const audit = await api(`/api/rounds/${encodeURIComponent(roundId)}`);
    if (state.selected.round !== roundId) return;
    renderRoundDetail(audit);
  } catch (error) {
    if (state.selected.round !== roundId) return;
    $('#sequence-wrap').replaceChildren(h('p', { class: 'error' }, error.message));
  } finally {
    if (state.selected.round === roundId) section.dataset.loading = 'false';
  }
}

function renderRoundDetail(audit) {
  const o = audit.outcome;
  const q = audit.request;
  const counted = audit.answers.filter((a) => a.verdict === 'counted').length;
  const refused = audit.answers.filter((a) => a.verdict === 'refused').length;
  const latency = o && q ? o.eventTime - q.eventTime : null;
  const facts = [
    ['protocol', h('span', { class: `proto ${audit.kind ?? ''}` }, audit.protocol ?? '–')],
    ['state', badge(audit.state, audit.state)],
    audit.kind !== 'consensus' ? ['winner', o?.winners?.length ? o.winners.map((w) => h('span', { class: 'winner' }, w)) : '–'] : null,
    audit.kind !== 'consensus' ? ['price', num(o?.price ?? null)] : null,
    o && o.value !== null && o.value !== undefined ? ['value', json(o.value, 40)] : null,
    ['answers', `${counted} counted${refused ? `, ${refused} refused` : ''}`],
    ['latency', duration(latency)],
    q ? ['subject', h('code', { title: JSON.stringify(q.subject) }, json(q.subject, 48))] : null,
    ['partition', String(audit.partition)],
  ].filter(Boolean);
  $('#round-detail-facts').replaceChildren(...facts.map(([k, v]) => h('div', { class: 'fact' }, h('span', { class: 'k' }, k), h('span', { class: 'v' }, v))));
  $('#round-detail-reason').textContent = o ? `Why: ${o.reason}` : audit.state === 'open' ? 'Open: no outcome yet.' : '';
  $('#sequence-wrap').replaceChildren(sequenceSvg(audit));
}

// ---------------------------------------------------------------- the sequence view

/**
 * The round as a sequence diagram, in the spirit of JADE's Sniffer: one
 * lifeline per participant (the requester, the coordinator, each bidder or
 * voter), and one arrow per message in log-time order — the request
 * (multicast to the coordinator and the eligible agents), each answer
 * (green counted, red refused with its reason code, grey neither), each
 * stage the coordinator opened, its closings, the outcome back to the
 * requester and the directives to the winners.
 */
function sequenceSvg(audit) {
  const coordinator = 'coordinator';
  const requester = audit.request?.sentBy ?? audit.requests[0]?.sentBy ?? 'requester';
  const answerer = audit.kind === 'consensus' ? 'voter' : 'bidder';
  const agents = [];
  const addAgent = (id) => { if (id && id !== coordinator && id !== requester && !agents.includes(id)) agents.push(id); };
  for (const q of audit.requests) for (const id of q.eligible) addAgent(id);
  for (const a of audit.answers) addAgent(a.agentId);
  for (const d of audit.directives) addAgent(d.agentId);
  for (const o of audit.outcomes) for (const w of o.winners) addAgent(w);
  const winners = new Set(audit.outcome?.winners ?? []);
  const lanes = [
    { id: requester, role: 'requester' },
    { id: coordinator, role: 'coordinator' },
    ...agents.map((id) => ({ id, role: answerer })),
  ];
  const lane = new Map(lanes.map((l, i) => [l.id, i]));

  // Messages in log-time order; ties in the order a round goes.
  const rank = { request: 0, answer: 1, refusal: 2, close: 3, stage: 4, outcome: 5, directive: 6 };
  const messages = [];
  // A later stage is opened by the closing of the one before (in one transaction): drawn after it, whatever its own time.
  const closedAt = new Map(audit.stages.filter((st) => st.closed).map((st) => [st.stage, st.closed.eventTime]));
  for (const q of audit.requests) {
    const targets = q.stage === 0 ? [coordinator, ...(q.eligible.length ? q.eligible : agents)] : q.eligible.length ? q.eligible : agents;
    const from = q.stage === 0 ? requester : coordinator;
    messages.push({
      kind: q.stage === 0 ? 'request' : 'stage', from, to: [...new Set(targets)].filter((t) => lane.has(t) && t !== from), at: q.eventTime,
      order: q.stage > 0 ? Math.max(q.eventTime, closedAt.get(q.stage - 1) ?? 0) : q.eventTime,
      label: q.stage === 0 ? `${q.type} · ${q.protocol}${q.reservePrice !== null ? ` · reserve ${num(q.reservePrice)}` : ''}` : `stage ${q.stage}`,
      title: `${q.type} ${q.eventId}\nsubject ${JSON.stringify(q.subject)}\ndeadline ${new Date(q.deadline).toISOString()}${q.refused ? `\nrefused ${q.refused.reasonCode}: ${q.refused.reason}` : ''}`,
      verdict: q.refused ? 'refused' : undefined,
    });
    if (q.refused) messages.push({ kind: 'refusal', from: coordinator, to: [from], at: q.refused.eventTime, label: `✕ ${q.refused.reasonCode}`, title: q.refused.reason, verdict: 'refused' });
  }
  for (const a of audit.answers) {
    const text = a.type === 'Vote' ? `vote ${a.answer}` : a.pass ? 'pass' : `bid ${a.answer}`;
    const label = a.verdict === 'refused' ? `${text} ✕ ${a.refusal?.reasonCode ?? 'refused'}` : text;
    const title = a.verdict === 'counted' ? `${a.type} ${a.answer}: counted at stage ${a.countedAt?.stage ?? 0}`
      : a.verdict === 'refused' ? `${a.type} ${a.answer}: refused ${a.refusal?.reasonCode}: ${a.refusal?.reason}`
      : `${a.type} ${a.answer}: not counted (${a.note ?? 'no closing counted it'})`;
    messages.push({ kind: 'answer', from: a.agentId, to: [coordinator], at: a.eventTime, label, title, verdict: a.verdict, agentId: a.agentId, reasonCode: a.refusal?.reasonCode });
  }
  for (const f of audit.otherRefusals) {
    messages.push({ kind: 'refusal', from: coordinator, to: [lane.has(f.agentId) ? f.agentId : requester], at: f.eventTime, label: `✕ ${f.reasonCode}`, title: f.reason, verdict: 'refused', reasonCode: f.reasonCode });
  }
  for (const st of audit.stages) {
    if (!st.closed) continue;
    const c = st.closed;
    messages.push({
      kind: 'close', from: coordinator, to: [coordinator], at: c.eventTime,
      label: `${c.final ? 'closed' : `stage ${c.stage} closed`} · ${c.cause} · ${c.countedEventIds.length} counted`,
      title: `RoundClosed (${c.cause})${c.final ? '' : ', another stage follows'}\ncounted: ${c.countedAgents.map((x) => x ?? '?').join(', ') || 'none'}`,
    });
  }
  for (const o of audit.outcomes) {
    const what = o.status === 'decided'
      ? `${o.winners.length ? o.winners.join(', ') : 'decided'}${o.price !== null ? ` @ ${num(o.price)}` : ''}${o.value !== null && o.value !== undefined && o.kind !== 'auction' ? ` = ${json(o.value, 24)}` : ''}`
      : o.status;
    messages.push({ kind: 'outcome', from: coordinator, to: [requester], at: o.eventTime, label: `outcome · ${what}`, title: `RoundOutcome ${o.status}: ${o.reason}`, verdict: o.status });
  }
  for (const d of audit.directives) {
    const price = d.parameters && typeof d.parameters === 'object' && 'price' in d.parameters ? ` ${num(d.parameters.price)}` : '';
    messages.push({ kind: 'directive', from: coordinator, to: [d.agentId], at: d.eventTime, label: `${d.action}${price}`, title: `Directive ${d.action} to ${d.agentId}\n${JSON.stringify(d.parameters)}`, agentId: d.agentId });
  }
  for (const w of audit.missingDirectives) {
    messages.push({ kind: 'directive', from: coordinator, to: [w], at: audit.outcome?.eventTime ?? 0, label: 'award missing', title: `The decision should have told ${w} (an award), but no directive is in the log`, verdict: 'refused', agentId: w });
  }
  const orderOf = (m) => m.order ?? m.at;
  messages.sort((x, y) => orderOf(x) - orderOf(y) || rank[x.kind] - rank[y.kind]);

  const laneW = 168;
  const gutter = 76;
  const top = 64;
  const rowH = 42;
  const width = gutter + laneW * lanes.length + 16;
  const height = top + rowH * (messages.length + 1) + 12;
  const x = (id) => gutter + laneW * lane.get(id) + laneW / 2;
  const t0 = audit.request?.eventTime ?? messages[0]?.at ?? 0;

  const colours = ['request', 'stage', 'counted', 'refused', 'neither', 'outcome', 'directive', 'close', 'failed'];
  const defs = s('defs', {}, colours.map((c) => s('marker', { id: `arrow-${c}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', class: `m-${c}` }, s('path', { d: 'M0,0 L10,5 L0,10 z' }))));
  const svg = s('svg', { id: 'sequence', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `sequence of round ${audit.roundId}`, dataset: { roundId: audit.roundId, messages: messages.length } }, defs);

  // The coordinator is busy from the request to the last closing: an activation bar.
  const firstRow = messages.findIndex((m) => m.kind === 'request');
  const lastClose = messages.map((m) => m.kind).lastIndexOf('close');
  const lastOut = Math.max(lastClose, messages.map((m) => m.kind).lastIndexOf('outcome'));

  lanes.forEach((l, i) => {
    const cx = gutter + laneW * i + laneW / 2;
    const won = winners.has(l.id);
    const g = s('g', { class: `lifeline ${l.role}${won ? ' winner' : ''}`, dataset: { lifeline: l.id, role: l.role } },
      s('title', {}, `${l.role}: ${l.id}${won ? ' (winner)' : ''}`),
      s('line', { x1: cx, y1: top, x2: cx, y2: height - 8, class: 'life' }),
      s('rect', { x: cx - laneW / 2 + 10, y: 8, width: laneW - 20, height: 40, rx: 8, class: 'head' }),
      s('text', { x: cx, y: 25, class: 'name' }, `${won ? '★ ' : ''}${short(l.id, 19)}`),
      s('text', { x: cx, y: 40, class: 'role' }, l.role));
    svg.append(g);
  });
  if (firstRow >= 0 && lastOut > firstRow) {
    const cx = x(coordinator);
    svg.append(s('rect', { x: cx - 5, y: top + rowH * (firstRow + 1) - 4, width: 10, height: rowH * (lastOut - firstRow) + 8, rx: 3, class: 'activation' }));
  }

  messages.forEach((m, i) => {
    const y = top + rowH * (i + 1);
    const colour = m.kind === 'answer' ? m.verdict : m.kind === 'refusal' ? 'refused' : m.kind === 'outcome' && m.verdict !== 'decided' ? 'failed' : m.verdict === 'refused' ? 'refused' : m.kind;
    const g = s('g', { class: `msg ${m.kind} ${colour}`, dataset: { message: m.kind, verdict: m.verdict, agentId: m.agentId, from: m.from, to: m.to.join(','), reasonCode: m.reasonCode } }, s('title', {}, `${m.label}\n${m.title}`));
    g.append(s('text', { x: gutter - 10, y: y + 4, class: 'time' }, `+${duration(Math.max(0, m.at - t0))}`));
    const x1 = x(m.from);
    if (m.kind === 'close' || m.to.length === 0) {
      // A note on the coordinator's lifeline.
      const w = Math.min(laneW * 1.8, 14 + m.label.length * 6.4);
      g.append(s('rect', { x: x1 + 10, y: y - 13, width: w, height: 24, rx: 6, class: 'note' }), s('text', { x: x1 + 18, y: y + 3, class: 'label left' }, m.label));
    } else {
      const xs = m.to.map(x);
      const far = xs.reduce((a, b) => (Math.abs(b - x1) > Math.abs(a - x1) ? b : a), xs[0]);
      const dir = far >= x1 ? 1 : -1;
      g.append(s('line', { x1: x1 + dir * 6, y1: y, x2: far - dir * 6, y2: y, class: 'arrow', 'marker-end': `url(#arrow-${colour})` }));
      // A multicast: a dot where each other receiver reads it.
      for (const xi of xs) if (xi !== far) g.append(s('circle', { cx: xi, cy: y, r: 3.5, class: 'dot' }));
      const mid = m.to.length > 1 ? x1 + dir * (laneW / 2 + 8) : (x1 + far) / 2;
      const anchor = m.to.length > 1 ? (dir > 0 ? 'left' : 'right') : 'mid';
      const label = s('text', { x: mid, y: y - 7, class: `label ${anchor}` }, m.label);
      g.append(label);
    }
    svg.append(g);
  });
  return svg;
}

// ---------------------------------------------------------------- variables

function renderVariables() {
  const rows = [...state.variables.values()].sort((x, y) => x.variableId.localeCompare(y.variableId));
  $('#variables tbody').replaceChildren(...rows.map((v) => {
    const tr = h('tr', { class: `clickable${state.selected.variable === v.variableId ? ' selected' : ''}`, dataset: { variableId: v.variableId, version: v.version }, on: { click: () => selectVariable(v.variableId) } },
      h('td', { class: 'mono' }, v.variableId),
      h('td', { dataset: { field: 'value' } }, h('code', { class: 'value', title: JSON.stringify(v.value) }, json(v.value, 60))),
      h('td', { class: 'num' }, h('span', { class: 'version' }, `v${v.version}`)),
      h('td', { class: 'num' }, since(v.updatedAt)));
    flashIf(tr, `variable:${v.variableId}`);
    return tr;
  }));
  emptyState('variables', rows.length === 0);
}

async function selectVariable(variableId, { scroll = true } = {}) {
  state.selected.variable = variableId;
  setHash();
  for (const tr of document.querySelectorAll('#variables tbody tr')) tr.classList.toggle('selected', tr.dataset.variableId === variableId);
  const el = $('#lineage');
  el.hidden = false;
  el.dataset.variableId = variableId;
  el.dataset.loading = 'true';
  if (scroll) el.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  try {
    const audit = await api(`/api/variables/${encodeURIComponent(variableId)}`);
    if (state.selected.variable === variableId) renderLineage(audit);
  } catch (error) {
    if (state.selected.variable === variableId) el.replaceChildren(h('p', { class: 'error' }, error.message));
  } finally {
    if (state.selected.variable === variableId) el.dataset.loading = 'false';
  }
}

function renderLineage(audit) {
  const el = $('#lineage');
  const def = audit.definition;
  const type = def && typeof def === 'object' ? [def.type, def.valueType?.kind, def.valueType && 'min' in def.valueType ? `${def.valueType.min}…${def.valueType.max}` : null].filter(Boolean).join(' · ') : '';
  const entries = [
    ...audit.versions.map((v) => ({ at: v.eventTime, el: h('li', { class: `version-step ${v.cause.kind}`, dataset: { version: v.version } },
      h('div', { class: 'v' }, `v${v.version}`),
      h('div', { class: 'body' },
        h('div', {}, v.previousValue !== null && v.version > 1 ? [h('code', { class: 'prev' }, json(v.previousValue, 30)), ' → '] : null, h('code', { class: 'value' }, json(v.value, 60))),
        h('div', { class: 'muted' }, `${v.cause.summary} · by ${v.writerId} · ${clock(v.eventTime)}`))) })),
    ...audit.refused.map((r) => ({ at: r.eventTime, el: h('li', { class: 'version-step refused', dataset: { refused: r.reasonCode } },
      h('div', { class: 'v' }, '✕'),
      h('div', { class: 'body' },
        h('div', {}, h('code', { class: 'value' }, json(r.attemptedValue, 40)), ' ', badge('refused', r.reasonCode, r.reason)),
        h('div', { class: 'muted' }, `${r.reason} · asked by ${r.requesterId} · ${clock(r.eventTime)}`))) })),
    ...audit.unanswered.map((r) => ({ at: r.eventTime, el: h('li', { class: 'version-step pending', dataset: { pending: r.eventId } },
      h('div', { class: 'v' }, '…'),
      h('div', { class: 'body' }, h('div', {}, h('code', { class: 'value' }, json(r.value, 40)), ' not answered yet'), h('div', { class: 'muted' }, `${r.cause} · asked by ${r.requesterId} · ${clock(r.eventTime)}`))) })),
  ].sort((a, b) => a.at - b.at);
  el.replaceChildren(
    h('div', { class: 'card-head sub' }, h('h3', {}, 'Lineage of ', h('code', {}, audit.variableId)), h('span', { class: 'muted' }, type), h('button', { type: 'button', class: 'close', title: 'close', on: { click: () => closeDetail('lineage') } }, '×')),
    h('ol', { class: 'timeline' }, entries.map((e) => e.el)));
}

// ---------------------------------------------------------------- studies

function renderStudies() {
  const rows = [...state.studies.values()].sort((x, y) => x.studyId.localeCompare(y.studyId));
  $('#studies > .scroll tbody').replaceChildren(...rows.map((st) => {
    const pct = st.trials > 0 ? Math.round((st.finished / st.trials) * 100) : 0;
    const tr = h('tr', { class: `clickable${state.selected.study === st.studyId ? ' selected' : ''}`, dataset: { studyId: st.studyId, completed: String(st.completed) }, on: { click: () => selectStudy(st.studyId) } },
      h('td', {}, h('div', { class: 'agent-id' }, st.name ?? st.studyId), st.name ? h('div', { class: 'muted mono small' }, st.studyId) : null),
      h('td', {}, h('span', { class: 'proto' }, st.searcher)),
      h('td', { class: 'num' }, st.trials),
      h('td', {}, h('span', { class: 'progress', title: `${st.finished} of ${st.trials} trials finished` }, h('i', { style: `width:${pct}%` }), `${st.finished}/${st.trials}`)),
      h('td', { class: 'num', dataset: { field: 'best' } }, st.best ? st.best.map((b) => num(b)).join(', ') : '–'),
      h('td', {}, st.completed ? badge('decided', 'completed') : badge('open', 'running')));
    flashIf(tr, `study:${st.studyId}`);
    return tr;
  }));
  emptyState('studies', rows.length === 0);
}

const plots = { history: null, intermediate: null };

async function selectStudy(studyId, { scroll = true } = {}) {
  state.selected.study = studyId;
  setHash();
  for (const tr of document.querySelectorAll('#studies > .scroll tbody tr')) tr.classList.toggle('selected', tr.dataset.studyId === studyId);
  const el = $('#study-detail');
  const first = el.hidden || el.dataset.studyId !== studyId;
  el.hidden = false;
  el.dataset.studyId = studyId;
  el.dataset.loading = 'true';
  $('#study-detail-id').textContent = studyId;
  if (scroll && first) el.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  await loadStudy(studyId);
}

async function loadStudy(studyId) {
  const el = $('#study-detail');
  try {
    const detail = await api(`/api/studies/${encodeURIComponent(studyId)}`);
    if (state.selected.study === studyId) renderStudyDetail(detail);
  } catch (error) {
    if (state.selected.study === studyId) toast(error.message);
  } finally {
    if (state.selected.study === studyId) el.dataset.loading = 'false';
  }
}

function renderStudyDetail(detail) {
  const st = detail.status;
  const objective = st.objectives?.[0] ?? { name: 'value', direction: 'minimize' };
  const states = Object.entries(st.states ?? {}).map(([k, v]) => badge(trialBadge(k), `${v} ${k}`));
  const facts = [
    ['searcher', `${st.searcher}${st.pruner && st.pruner !== 'none' ? ` · ${st.pruner}` : ''}`],
    ['objective', `${objective.direction} ${objective.name}${st.objectives?.length > 1 ? ` (+${st.objectives.length - 1})` : ''}`],
    ['trials', `${st.finished} of ${st.budget?.trials ?? st.proposed} finished`],
    ['states', states.length ? states : '–'],
    ['best', st.best?.length ? st.best.map((b) => b.values.map((v) => num(v)).join(', ')).join(' | ') : '–'],
    ['state', st.completed ? `completed: ${st.completed.reason}` : 'running'],
  ];
  $('#study-detail-facts').replaceChildren(...facts.map(([k, v]) => h('div', { class: 'fact' }, h('span', { class: 'k' }, k), h('span', { class: 'v' }, v))));

  const trials = [...detail.trials].sort((a, b) => a.number - b.number);
  $('#study-trials tbody').replaceChildren(...trials.slice().reverse().map((t) => h('tr', { dataset: { trial: t.number, state: t.state } },
    h('td', { class: 'num' }, t.number),
    h('td', {}, badge(trialBadge(t.state), t.state)),
    h('td', { class: 'mono' }, t.agentId ?? '–'),
    h('td', { class: 'num' }, t.values ? t.values.map((v) => num(v)).join(', ') : t.intermediate?.length ? h('span', { class: 'muted', title: 'last intermediate value' }, num(t.intermediate.at(-1)[1])) : '–'),
    h('td', { class: 'params' }, Object.entries(t.params ?? {}).map(([k, v]) => h('span', { class: 'param' }, `${k}=${json(typeof v === 'number' ? num(v) : v, 28)}`))))));

  drawHistory(trials, objective.direction);
  drawIntermediate(trials);
}

function trialBadge(s) {
  return { complete: 'alive', running: 'open', assigned: 'open', waiting: 'neutral', pruned: 'lagging', failed: 'dead' }[s] ?? 'neutral';
}

const plotColours = { grid: 'rgba(148,163,184,0.12)', axis: '#8b95b0', best: '#60a5fa', point: '#34d399', pruned: '#fbbf24' };

function axes() {
  const axis = { stroke: plotColours.axis, grid: { stroke: plotColours.grid, width: 1 }, ticks: { stroke: plotColours.grid, width: 1 } };
  return [{ ...axis }, { ...axis, size: 56 }];
}

function plotWidth(el) {
  return Math.max(280, el.clientWidth || el.parentElement.clientWidth || 480);
}

/** Best-so-far over trial number (a step line) and every completed trial's value (points). */
function drawHistory(trials, direction) {
  const el = $('#study-history');
  plots.history?.destroy();
  plots.history = null;
  el.replaceChildren();
  const xs = [];
  const values = [];
  const pruned = [];
  const best = [];
  let b = null;
  for (const t of trials) {
    const v = t.state === 'complete' && t.values ? t.values[0] : null;
    if (v !== null && (b === null || (direction === 'maximize' ? v > b : v < b))) b = v;
    xs.push(t.number);
    values.push(v);
    // A pruned trial has no value: its last report shows where it stood when it was stopped.
    pruned.push(t.state === 'pruned' && t.intermediate?.length ? t.intermediate.at(-1)[1] : null);
    best.push(b);
  }
  const anyPruned = pruned.some((v) => v !== null);
  el.dataset.points = String(values.filter((v) => v !== null).length);
  if (!window.uPlot || xs.length === 0) { el.append(h('p', { class: 'muted' }, 'No trials yet.')); return; }
  plots.history = new window.uPlot({
    width: plotWidth(el), height: 240,
    scales: { x: { time: false } },
    axes: axes(),
    cursor: { points: { size: 7 } },
    legend: { live: true },
    series: [
      { label: 'trial' },
      { label: `best so far (${direction})`, stroke: plotColours.best, width: 2, paths: window.uPlot.paths.stepped({ align: 1 }), spanGaps: true, points: { show: false } },
      { label: 'trial value', stroke: plotColours.point, fill: plotColours.point, paths: () => null, points: { show: true, size: 7, stroke: plotColours.point, fill: 'rgba(52,211,153,0.35)' } },
      ...(anyPruned ? [{ label: 'pruned (last report)', stroke: plotColours.pruned, paths: () => null, points: { show: true, size: 5, stroke: plotColours.pruned, fill: 'rgba(251,191,36,0.25)' } }] : []),
    ],
  }, anyPruned ? [xs, best, values, pruned] : [xs, best, values], el);
}

/** Each trial's intermediate values over its steps: pruned trials stop early. */
function drawIntermediate(trials) {
  const el = $('#study-intermediate');
  plots.intermediate?.destroy();
  plots.intermediate = null;
  el.replaceChildren();
  const reporting = trials.filter((t) => t.intermediate && t.intermediate.length > 0).slice(-40);
  el.dataset.series = String(reporting.length);
  if (!window.uPlot || reporting.length === 0) { el.append(h('p', { class: 'muted empty-plot' }, 'No intermediate values reported.')); return; }
  const steps = [...new Set(reporting.flatMap((t) => t.intermediate.map(([step]) => step)))].sort((a, b) => a - b);
  const data = [steps, ...reporting.map((t) => {
    const at = new Map(t.intermediate);
    return steps.map((step) => (at.has(step) ? at.get(step) : null));
  })];
  plots.intermediate = new window.uPlot({
    width: plotWidth(el), height: 240,
    scales: { x: { time: false } },
    axes: axes(),
    legend: { show: false },
    cursor: { points: { size: 5 } },
    series: [
      { label: 'step' },
      ...reporting.map((t, i) => ({
        label: `#${t.number}`,
        stroke: t.state === 'pruned' ? 'rgba(251,191,36,0.7)' : `hsla(${(200 + i * 37) % 360}, 80%, 65%, 0.9)`,
        width: t.state === 'pruned' ? 1 : 1.6,
        spanGaps: true,
        points: { show: true, size: 3 },
      })),
    ],
  }, data, el);
}

// ---------------------------------------------------------------- dead letters

function renderDeadLetters() {
  const { counts, latest } = state.deadLetters;
  const total = counts.reduce((n, c) => n + c.count, 0);
  $('#dead-letter-total').replaceChildren(total ? badge('dead', `${total} total`) : badge('alive', 'none'));
  const max = Math.max(1, ...counts.map((c) => c.count));
  $('#dead-letter-counts').replaceChildren(...counts.slice().sort((a, b) => b.count - a.count || a.reasonCode.localeCompare(b.reasonCode)).map((c) =>
    h('div', { class: 'bar', dataset: { reason: c.reasonCode, topic: c.topic, n: c.count } },
      h('span', { class: 'bar-label' }, h('b', {}, c.reasonCode), h('span', { class: 'muted' }, ` ${c.topic}`)),
      h('span', { class: 'bar-track' }, h('i', { style: `width:${((c.count / max) * 100).toFixed(1)}%` })),
      h('span', { class: 'bar-count' }, c.count))));
  $('#dead-letter-latest tbody').replaceChildren(...latest.map((d) => {
    const tr = h('tr', { dataset: { reason: d.reasonCode, topic: d.topic, offset: `${d.partition}:${d.offset}` } },
      h('td', { class: 'nowrap' }, since(d.at)),
      h('td', {}, badge('refused', d.reasonCode), h('div', { class: 'reason-text' }, d.reason)),
      h('td', { class: 'mono small' }, `${d.topic}@${d.partition}:${d.offset}`));
    flashIf(tr, `dead:${d.topic}:${d.partition}:${d.offset}`);
    return tr;
  }));
  $('#dead-letter-latest').hidden = latest.length === 0;
  emptyState('dead-letters', total === 0 && latest.length === 0);
}

function addDeadLetter(d) {
  const key = `${d.topic}:${d.partition}:${d.offset}`;
  const { counts, latest } = state.deadLetters;
  if (latest.some((x) => `${x.topic}:${x.partition}:${x.offset}` === key)) return;
  latest.unshift(d);
  latest.length = Math.min(latest.length, 50);
  const c = counts.find((x) => x.topic === d.topic && x.reasonCode === d.reasonCode);
  if (c) c.count += 1;
  else counts.push({ topic: d.topic, reasonCode: d.reasonCode, count: 1 });
  state.fresh.add(`dead:${key}`);
}

// ---------------------------------------------------------------- loading and live updates

const loaders = {
  overview: async () => { state.overview = await api('/api/overview'); renderOverview(); },
  agents: async () => {
    const rows = await api('/api/agents');
    const seen = new Set(rows.map((a) => a.agentId));
    for (const id of state.agents.keys()) if (!seen.has(id)) state.agents.delete(id);
    for (const a of rows) upsertAgent(a);
    state.agentsLoaded = true;
    renderAgents();
  },
  rounds: async () => {
    const rows = await api(`/api/rounds?limit=${roundLimit}`);
    for (const r of rows) {
      const before = state.rounds.get(r.roundId);
      if (before && JSON.stringify(before) === JSON.stringify(r)) continue;
      if (before || state.rounds.size > 0) state.fresh.add(`round:${r.roundId}`);
      state.rounds.set(r.roundId, r);
    }
    renderRounds();
  },
  variables: async () => {
    const rows = await api('/api/variables');
    state.variables = new Map(rows.map((v) => [v.variableId, v]));
    renderVariables();
  },
  studies: async () => {
    const rows = await api('/api/studies');
    state.studies = new Map(rows.map((st) => [st.studyId, st]));
    renderStudies();
  },
  deadLetters: async () => { state.deadLetters = await api('/api/dead-letters'); renderDeadLetters(); },
};

async function load(names) {
  const results = await Promise.allSettled(names.map((n) => loaders[n]()));
  const failed = results.map((r, i) => (r.status === 'rejected' ? `${names[i]}: ${r.reason.message}` : null)).filter(Boolean);
  if (failed.length) toast(`Could not load ${failed.join('; ')}`);
}

const refreshOverview = throttle(() => void load(['overview']), 1000);
const refreshStudies = throttle(() => void load(['studies']), 1000);
const refreshStudy = throttle(() => { if (state.selected.study) void loadStudy(state.selected.study); }, 1500);
const refreshRound = throttle(() => { if (state.selected.round) void loadRound(state.selected.round); }, 800);
const refreshLineage = throttle(() => { if (state.selected.variable) void selectVariable(state.selected.variable, { scroll: false }); }, 800);

const handlers = {
  round: (r) => {
    upsertRound(r);
    renderRounds();
    refreshOverview();
    if (state.selected.round === r.roundId) refreshRound();
  },
  agent: (a) => {
    upsertAgent(a);
    renderAgents();
    refreshOverview();
  },
  variable: (v) => {
    state.fresh.add(`variable:${v.variableId}`);
    state.variables.set(v.variableId, v);
    renderVariables();
    refreshOverview();
    if (state.selected.variable === v.variableId) refreshLineage();
  },
  study: ({ studyId }) => {
    state.fresh.add(`study:${studyId}`);
    refreshStudies();
    refreshOverview();
    if (state.selected.study === studyId) refreshStudy();
  },
  'dead-letter': (d) => {
    addDeadLetter(d);
    renderDeadLetters();
    refreshOverview();
  },
};

function setLive(status) {
  document.body.dataset.live = status;
  $('#live-text').textContent = { open: 'live', connecting: 'connecting…', closed: 'offline, retrying' }[status];
}

let source = null;
let retryMs = 1000;
let missed = false;

/**
 * The event stream. EventSource reconnects by itself after a dropped
 * connection; when the server refused it (readyState CLOSED) a new one is
 * made after a backoff. After any gap everything is loaded again, since
 * events sent meanwhile are lost.
 */
function connect() {
  source = new EventSource('/api/events');
  source.onopen = () => {
    setLive('open');
    retryMs = 1000;
    if (missed) { missed = false; void load(Object.keys(loaders)); }
  };
  source.onerror = () => {
    missed = true;
    if (source.readyState === EventSource.CLOSED) {
      setLive('closed');
      source.close();
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15_000);
    } else setLive('connecting');
  };
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      handle(data);
    });
  }
}

// ---------------------------------------------------------------- selection in the address

function setHash() {
  const parts = Object.entries(state.selected).filter(([, v]) => v).map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
  history.replaceState(null, '', parts.length ? `#${parts.join('&')}` : location.pathname);
}

function selectionFromHash() {
  const hash = location.hash.slice(1);
  if (!hash.includes('=')) return {};
  return Object.fromEntries(hash.split('&').map((p) => p.split('=')).filter(([k, v]) => k && v).map(([k, v]) => [k, decodeURIComponent(v)]));
}

function closeDetail(id) {
  const el = document.getElementById(id);
  el.hidden = true;
  if (id === 'round-detail') { state.selected.round = null; renderRounds(); }
  if (id === 'lineage') { state.selected.variable = null; renderVariables(); }
  if (id === 'study-detail') {
    state.selected.study = null;
    plots.history?.destroy(); plots.intermediate?.destroy();
    plots.history = plots.intermediate = null;
    renderStudies();
  }
  setHash();
}

// ---------------------------------------------------------------- start

function wire() {
  $('#agent-capability').addEventListener('change', (e) => { state.filters.capability = e.target.value; renderAgents(); });
  $('#agent-role').addEventListener('change', (e) => { state.filters.role = e.target.value; renderAgents(); });
  $('#round-protocol').addEventListener('change', (e) => { state.filters.protocol = e.target.value; renderRounds(); });
  for (const b of document.querySelectorAll('[data-close]')) b.addEventListener('click', () => closeDetail(b.dataset.close));
  // Ages tick every second.
  setInterval(() => {
    for (const el of document.querySelectorAll('[data-since]')) {
      const text = age(Number(el.dataset.since));
      if (el.textContent !== text) el.textContent = text;
    }
  }, 1000);
  // Heartbeats, memory and lag move without a state change (no event): agents are read again every few seconds.
  setInterval(() => { if (document.visibilityState === 'visible') void load(['agents']); }, 3000);
  setInterval(() => { if (document.visibilityState === 'visible') void load(['overview']); }, 10_000);
  let resizeTimer;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [key, id] of [['history', 'study-history'], ['intermediate', 'study-intermediate']]) plots[key]?.setSize({ width: plotWidth(document.getElementById(id)), height: 240 });
    }, 150);
  });
}

async function start() {
  wire();
  connect();
  await load(Object.keys(loaders));
  const wanted = selectionFromHash();
  const opening = [];
  if (wanted.round) opening.push(selectRound(wanted.round, { scroll: false }));
  if (wanted.variable) opening.push(selectVariable(wanted.variable, { scroll: false }));
  if (wanted.study) opening.push(selectStudy(wanted.study, { scroll: false }));
  await Promise.all(opening);
  document.body.dataset.ready = 'true';
}

void start();
