// The usage chart (transactions per day over the last 30 days, stacked by API) and the quota
// gauges, drawn as SVG from GET /account/usage and GET /account/quota.
//
// A usage row may break its day down by API (`apis: {"<API>": {requests, transactions}}`);
// from a server whose rows do not, the chart stacks each client's day total instead.

import { call } from './api.js';
import { el, svg, byId } from './dom.js';

/** Colours told apart with colour blindness (Okabe and Ito), then greys. */
const COLOURS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];
const OTHERS = '#999999';
const DAYS = 30;

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** The last `DAYS` UTC days, oldest first. */
function lastDays(now = new Date()) {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: DAYS }, (_, i) => isoDay(new Date(today - (DAYS - 1 - i) * 86400000)));
}

/**
 * The rows as series: { by: 'API' | 'client', names: [...], values: Map(name → Map(day → t)) }.
 */
export function seriesOf(rows, clientNames) {
  const byApi = rows.some((r) => r.apis && typeof r.apis === 'object');
  const values = new Map();
  const add = (name, day, t) => {
    if (!values.has(name)) values.set(name, new Map());
    const days = values.get(name);
    days.set(day, (days.get(day) || 0) + t);
  };
  for (const r of rows) {
    if (byApi) {
      for (const [api, use] of Object.entries(r.apis || {})) add(api, r.date, Number(use.transactions) || 0);
    } else {
      add(clientNames.get(r.client_id) || r.client_id, r.date, Number(r.transactions) || 0);
    }
  }
  const total = (name) => [...values.get(name).values()].reduce((a, b) => a + b, 0);
  for (const [name, days] of values) {
    if (![...days.values()].some((t) => t > 0)) values.delete(name);
  }
  const names = [...values.keys()].sort((a, b) => total(b) - total(a) || a.localeCompare(b));
  return { by: byApi ? 'API' : 'client', names, values };
}

/** A round step for an axis up to `max` in about four steps. */
function step(max) {
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough) || power;
}

function format(n) {
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 1);
}

function drawChart(days, series) {
  const width = 720;
  const height = 260;
  const left = 48;
  const bottom = 28;
  const top = 10;
  const plot = height - bottom - top;
  const shown = series.names.slice(0, COLOURS.length);
  const rest = series.names.slice(COLOURS.length);
  const groups = shown.map((name, i) => ({ name, colour: COLOURS[i], of: (day) => series.values.get(name).get(day) || 0 }));
  if (rest.length) {
    groups.push({ name: `${rest.length} more`, colour: OTHERS, of: (day) => rest.reduce((s, n) => s + (series.values.get(n).get(day) || 0), 0) });
  }
  const totals = days.map((day) => groups.reduce((s, g) => s + g.of(day), 0));
  const max = Math.max(...totals, 0);
  const tick = max > 0 ? step(max) : 1;
  const top_value = max > 0 ? Math.ceil(max / tick) * tick : 4;
  const y = (v) => top + plot - (v / top_value) * plot;
  const slot = (width - left - 8) / days.length;
  const total = totals.reduce((a, b) => a + b, 0);
  const label = total === 0
    ? 'No transactions in the last 30 days.'
    : `Transactions per day over the last 30 days by ${series.by}: ${format(total)} in all, at most ${format(max)} in a day.`;
  const drawing = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label, class: 'chart-svg' });
  for (let v = 0; v <= top_value + tick / 2; v += tick) {
    drawing.append(
      svg('line', { x1: left, x2: width - 8, y1: y(v), y2: y(v), class: 'grid-line' }),
      svg('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis', text: format(v) }),
    );
  }
  days.forEach((day, i) => {
    const x = left + i * slot + slot * 0.15;
    let base = 0;
    for (const g of groups) {
      const v = g.of(day);
      if (v <= 0) continue;
      drawing.append(svg('rect', { x, width: slot * 0.7, y: y(base + v), height: Math.max(y(base) - y(base + v), 0.5), fill: g.colour },
        svg('title', { text: `${day} · ${g.name}: ${format(v)}` })));
      base += v;
    }
    if (i % 5 === 4 || i === days.length - 1) {
      drawing.append(svg('text', { x: x + slot * 0.35, y: height - 8, 'text-anchor': 'middle', class: 'axis', text: day.slice(5) }));
    }
  });
  drawing.append(svg('line', { x1: left, x2: width - 8, y1: y(0), y2: y(0), class: 'base-line' }));
  byId('chart-drawing').replaceChildren(drawing);
  byId('chart-legend').replaceChildren(...groups.map((g) => el('li', {},
    svg('svg', { width: 12, height: 12, 'aria-hidden': 'true' }, svg('rect', { width: 12, height: 12, fill: g.colour })),
    ` ${g.name}`)));
  byId('chart-caption').textContent = series.by === 'API'
    ? 'Transactions per day, last 30 days, by API'
    : 'Transactions per day, last 30 days, by client (this server does not report usage by API)';
  const table = byId('chart-table');
  const head = el('tr', {}, el('th', { scope: 'col', text: 'Day' }), ...groups.map((g) => el('th', { scope: 'col', text: g.name })), el('th', { scope: 'col', text: 'Total' }));
  const rows = days.map((day, i) => el('tr', {}, el('th', { scope: 'row', text: day }), ...groups.map((g) => el('td', { text: format(g.of(day)) })), el('td', { text: format(totals[i]) })));
  table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
}

/** A half-ring gauge of `used` out of `limit`, with its words. */
function gauge(title, quota) {
  const share = quota.limit > 0 ? Math.min(quota.used / quota.limit, 1) : 1;
  const percent = Math.round(share * 100);
  const level = share >= 1 ? 'full' : share >= 0.8 ? 'high' : 'fine';
  const reset = new Date(quota.reset);
  const resets = Number.isNaN(reset.getTime()) ? quota.reset : `${reset.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const words = `${format(quota.used)} of ${quota.limit} transactions used (${percent} %), ${quota.remaining} left; resets ${resets}.`;
  const arc = 'M 10 60 A 50 50 0 0 1 110 60';
  return el('div', { class: `gauge ${level}` },
    el('h3', { text: title }),
    svg('svg', { viewBox: '0 0 120 70', role: 'img', 'aria-label': `${title}: ${words}`, class: 'gauge-svg' },
      svg('path', { d: arc, class: 'gauge-track', pathLength: 100 }),
      svg('path', { d: arc, class: 'gauge-value', pathLength: 100, 'stroke-dasharray': `${percent} 100` }),
      svg('text', { x: 60, y: 56, 'text-anchor': 'middle', class: 'gauge-figure', text: `${percent} %` })),
    el('p', { text: words }));
}

function drawQuota(quota) {
  const gauges = [];
  if (quota.limit === null || quota.limit === undefined) {
    gauges.push(el('div', { class: 'gauge' }, el('h3', { text: 'Today' }),
      el('p', { text: `No daily quota: ${format(quota.used)} transactions used today.` })));
  } else {
    gauges.push(gauge('Today', quota));
  }
  if (quota.monthly) gauges.push(gauge('This month', quota.monthly));
  byId('quota-gauges').replaceChildren(...gauges);
}

/** Reads usage and quota and draws both; `clients` name the client series. */
export async function refresh(clients) {
  const days = lastDays();
  const names = new Map(clients.map((c) => [c.id, c.name || c.id]));
  const [usage, quota] = await Promise.all([
    call('GET', `/usage?${new URLSearchParams({ from: days[0], to: days[days.length - 1] })}`),
    call('GET', '/quota'),
  ]);
  drawChart(days, seriesOf(usage.body.days, names));
  drawQuota(quota.body);
}

/** Forgets what was drawn (signing out). */
export function forget() {
  for (const id of ['chart-drawing', 'chart-legend', 'chart-table', 'quota-gauges']) byId(id).replaceChildren();
}
