#!/usr/bin/env node
/*
 * phones.js - N members' phones at a cell meeting, each doing what the web app does
 * (kiosk_client/static/db.js): sign in with a PIN (POST /_session), then a live pull of the
 * handbook, a live pull and a live push of the cell database (PouchDB 9, with the app's own
 * replication options from kiosk_client/static/sync.mjs), through one keep-alive agent per phone with at most 6 sockets, as a
 * browser keeps them. Each phone has its own source address (127.0.x.y), as each phone on the
 * village Wi-Fi has its own. Used by bench/bench_phones.py and tests/integration/test_phones.py (through
 * tests/peers/phones.py).
 *
 * Usage: node tests/peers/phones.js '<json>'  with
 *   {"url": "http://127.0.0.1:PORT", "handbook": "handbook", "cell_db": "cell-...",
 *    "phones": [{"name": ..., "pin": ..., "member_no": ...}], "expect": {"handbook": N, "cell": M},
 *    "meeting": "meeting:...", "cell": "TQ...", "checkins": K,
 *    "catchup_timeout_ms": 90000, "checkin_timeout_ms": 20000}
 * Prints one JSON object: sign-in and caught-up times (ms from the start), check-in latencies
 * (ms per check-in and phone, null when never seen), errors and retries.
 *
 * A request that fails on a kept-alive socket the kiosk has just closed is sent again once on a
 * new connection, as a browser does; those are counted as "retried", not as errors.
 */
'use strict';

const http = require('http');
const nodeFetch = require('node-fetch');
const PouchDB = require('pouchdb');
PouchDB.plugin(require('pouchdb-adapter-memory'));

const POLL_MS = 50;

const cmd = JSON.parse(process.argv[2]);
const errors = [];
let retried = 0;
let requests = 0;
const statuses = {};

let stopping = false;  // set when the phones leave: the aborts of their open feeds are no errors

function note(phone, what) {
  if (stopping) return;
  if (errors.length < 200) errors.push(`phone ${phone}: ${what}`);
  else errors.push('...');
}

/** A browser-like fetch for one phone: its own keep-alive agent (6 sockets) and source address. */
function phoneFetch(index, agent, cookie) {
  return async (url, opts = {}) => {
    const headers = Object.assign({}, plainHeaders(opts.headers));
    if (cookie.value) headers.Cookie = cookie.value;
    const init = Object.assign({}, opts, {headers, agent});
    requests += 1;
    const began = Date.now();
    const key = `${opts.method || 'GET'} ${endpoint(url)}`;
    let response;
    try {
      response = await nodeFetch(url, init);
    } catch (err) {
      if (!(err.code === 'ECONNRESET' || /socket hang up/.test(err.message))) {
        note(index, `${opts.method || 'GET'} ${shortUrl(url)}: ${err.message}`);
        throw err;
      }
      retried += 1;
      requests += 1;
      try {
        response = await nodeFetch(url, init);
      } catch (again) {
        note(index, `${opts.method || 'GET'} ${shortUrl(url)} (retried): ${again.message}`);
        throw again;
      }
    }
    statuses[response.status] = (statuses[response.status] || 0) + 1;
    const took = Date.now() - began;  // until the headers: a waiting feed counts its wait
    const row = timings[key] || (timings[key] = {n: 0, ms: 0, max: 0});
    row.n += 1; row.ms += took; row.max = Math.max(row.max, took);
    if (response.status >= 500 || response.status === 401 || response.status === 403) {
      note(index, `${opts.method || 'GET'} ${shortUrl(url)}: HTTP ${response.status}`);
    }
    return response;
  };
}

function plainHeaders(h) {
  if (!h) return {};
  if (typeof h.forEach === 'function' && !Array.isArray(h)) {
    const out = {};
    h.forEach((v, k) => { out[k] = v; });
    return out;
  }
  return h;
}

function shortUrl(url) {
  const u = new URL(url);
  return u.pathname.split('/').slice(0, 3).join('/') + (u.searchParams.get('feed') ? `?feed=${u.searchParams.get('feed')}` : '');
}

const timings = {};

function endpoint(url) {
  const parts = new URL(url).pathname.split('/').filter(Boolean);
  const feed = new URL(url).searchParams.get('feed');
  return (parts.length < 2 ? parts.join('/') || '/' : parts[1].startsWith('_') ? parts[1] : '(doc)') + (feed ? `?${feed}` : '');
}

function address(i) { return `127.0.${1 + Math.floor(i / 250)}.${2 + (i % 250)}`; }

async function signIn(phone) {
  const started = Date.now();
  const response = await phone.fetch(`${cmd.url}/_session`, {
    method: 'POST', headers: {'Content-Type': 'application/json', Accept: 'application/json'},
    body: JSON.stringify({name: phone.name, password: phone.pin}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`sign-in HTTP ${response.status} ${text.slice(0, 200)}`);
  const setCookie = response.headers.raw()['set-cookie'] || [];
  const found = setCookie.map((c) => c.split(';')[0]).find((c) => c.startsWith('AuthSession='));
  if (!found) throw new Error('sign-in gave no AuthSession cookie');
  phone.cookie.value = found;
  phone.signinMs = Date.now() - started;
}

function startSync(phone) {
  const remote = (name) => new PouchDB(`${cmd.url}/${encodeURIComponent(name)}`, {skip_setup: true, fetch: phone.fetch});
  // A member's phone, as db.js describes the signed-in member (no secretary, no kiosk admin).
  const {pull, push} = app.syncOptions({secretary: false, kioskAdmin: false, memberId: `member:${cmd.cell}:${phone.member_no}`});
  const watch = (rep, what) => {
    rep.on('paused', (err) => {
      if (err) note(phone.index, `${what} paused with ${err.status || ''} ${err.message || err}`);
      else phone.paused[what] = true;
    });
    rep.on('active', () => { phone.paused[what] = false; });
    rep.on('denied', (err) => note(phone.index, `${what} denied ${err && err.message}`));
    rep.on('error', (err) => note(phone.index, `${what} error ${err && (err.status || '')} ${err && err.message}`));
    return rep;
  };
  phone.handbook = new PouchDB(`h${phone.index}`, {adapter: 'memory'});
  phone.cell = new PouchDB(`c${phone.index}`, {adapter: 'memory'});
  phone.reps = [
    watch(PouchDB.replicate(remote(cmd.handbook), phone.handbook, pull), 'handbook'),
    watch(PouchDB.replicate(remote(cmd.cell_db), phone.cell, pull), 'pull'),
    watch(PouchDB.replicate(phone.cell, remote(cmd.cell_db), push), 'push'),
  ];
  phone.feed = phone.cell.changes({since: 'now', live: true}).on('change', (change) => {
    const pending = checkins.get(change.id);
    if (pending && pending.seen[phone.index] === undefined) pending.seen[phone.index] = Date.now() - pending.at;
  });
}

async function caughtUp(phone) {
  const [h, c] = await Promise.all([phone.handbook.info(), phone.cell.info()]);
  return h.doc_count >= cmd.expect.handbook && c.doc_count >= cmd.expect.cell
    && phone.paused.handbook && phone.paused.pull && phone.paused.push;
}

const checkins = new Map();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let app = null;  // the web app's replication options (an ES module)

async function main() {
  app = await import(require('url').pathToFileURL(
    require('path').join(__dirname, '..', '..', 'kiosk_client', 'static', 'sync.mjs')).href);
  const t0 = Date.now();
  const phones = cmd.phones.map((p, index) => {
    const agent = new http.Agent({keepAlive: true, maxSockets: 6, localAddress: address(index)});
    const cookie = {value: null};
    return {...p, index, agent, cookie, fetch: phoneFetch(index, agent, cookie), paused: {}, caughtAt: null};
  });
  // Everyone opens the app together: sign in, then sync.
  await Promise.all(phones.map(async (phone) => {
    try {
      await signIn(phone);
      startSync(phone);
    } catch (err) {
      note(phone.index, err.message);
    }
  }));
  const signedIn = Date.now() - t0;
  // Caught up: both local databases hold what the kiosk has and the three replications are idle.
  const deadline = t0 + cmd.catchup_timeout_ms;
  let waiting = phones.filter((p) => p.reps);
  while (waiting.length && Date.now() < deadline) {
    const done = await Promise.all(waiting.map(caughtUp));
    const now = Date.now() - t0;
    waiting.forEach((p, i) => { if (done[i]) p.caughtAt = now; });
    waiting = waiting.filter((p) => p.caughtAt === null);
    if (waiting.length) await sleep(POLL_MS);
  }
  // Check-ins: one phone after another writes its member's attendance; every other phone waits for it.
  const live = phones.filter((p) => p.reps);
  const rounds = [];
  for (let k = 0; k < cmd.checkins && live.length > 1; k += 1) {
    const writer = live[Math.floor(k * live.length / cmd.checkins) % live.length];
    const id = `attendance:${cmd.meeting}:${writer.member_no}`;
    const entry = {at: Date.now(), seen: {}};
    checkins.set(id, entry);
    entry.seen[writer.index] = 0;
    try {
      await writer.cell.put({_id: id, type: 'attendance', cell: cmd.cell, meeting: cmd.meeting,
        member: `member:${cmd.cell}:${writer.member_no}`, status: 'present', scheduled: cmd.scheduled,
        checked_in_at: cmd.checked_in_at});
    } catch (err) {
      note(writer.index, `check-in write: ${err.message}`);
    }
    const until = Date.now() + cmd.checkin_timeout_ms;
    while (Object.keys(entry.seen).length < live.length && Date.now() < until) await sleep(10);
    rounds.push(live.filter((p) => p !== writer).map((p) => (entry.seen[p.index] === undefined ? null : entry.seen[p.index])));
    await sleep(300);
  }
  stopping = true;
  phones.forEach((p) => {
    if (p.feed) p.feed.cancel();
    (p.reps || []).forEach((r) => r.cancel());
  });
  await sleep(200);
  phones.forEach((p) => p.agent.destroy());
  const result = {
    phones: phones.length, signed_in_ms: signedIn, signin_ms: phones.map((p) => p.signinMs || null),
    caught_up_ms: phones.map((p) => p.caughtAt), checkins: rounds, errors, retried, requests, statuses,
    timings,
    node_cpu_s: (process.cpuUsage().user + process.cpuUsage().system) / 1e6, wall_s: (Date.now() - t0) / 1000,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`phones.js: ${err.stack || err}\n`);
  process.exit(1);
});
