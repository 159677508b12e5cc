#!/usr/bin/env node
/*
 * pouch.js - drive PouchDB 9 (Node, leveldb adapter) for the Python tests.
 *
 * Usage: node tests/peers/pouch.js '<json command>'   (or the command on stdin)
 * Prints ONE JSON result on stdout and exits 0; on failure prints a message on
 * stderr and exits 1. A "db" / "source" / "target" is either a filesystem path
 * (an on-disk leveldb PouchDB) or an http:// URL (a remote CouchDB-protocol
 * database; credentials may be given in the URL).
 *
 * Commands:
 *   {"op": "replicate", "source": S, "target": T}
 *       One-shot PouchDB.replicate(S, T).
 *       -> {"ok", "status", "docs_read", "docs_written", "doc_write_failures", "errors"}
 *   {"op": "replicate", "source": S, "target": T, "live": true, "wait_for": N,
 *    "then_write": [...], "timeout_ms": 30000}
 *       Live replication (live: true, retry: true). Once it first pauses (caught
 *       up), writes the optional "then_write" docs into the source with
 *       new_edits: false, so they travel through the live feed. Waits until the
 *       target holds N document ids (deleted ones included) and the replication
 *       is paused again, or until the timeout; then cancels it.
 *       -> the fields above plus {"reached": bool, "count": ids on the target}
 *   {"op": "replicate_stats", "source": S, "target": T, "keepalive": true,
 *    "options": {...}}
 *       One-shot replication timed inside Node, every HTTP request counted.
 *       Remote databases get a fetch through one http.Agent: with keepalive
 *       (the default) it keeps connections open and allows 6 per host, as a
 *       browser does; without it node-fetch sends "Connection: close" (PouchDB's
 *       default in Node: one connection per request). Like a browser, a request
 *       that fails on a kept-alive socket the server has just closed ("socket
 *       hang up") is sent once more on a new connection.
 *       -> the "replicate" fields plus {"seconds", "requests", "retried", "methods"}
 *   {"op": "bulk", "db": D, "docs": [...], "new_edits": true}
 *       db.bulkDocs(docs, {new_edits}) -> its result array.
 *   {"op": "dump", "db": D}
 *       Every document id seen in changes(style=all_docs, since 0), mapped to
 *       {"winner": doc, "leaves": [{"rev": rev, "doc": doc}, ...]}:
 *       - winner: get(id, {revs, conflicts, attachments}); when the winner is
 *         deleted (404 "deleted") the leaf CouchDB would pick instead.
 *       - leaves: get(id, {open_revs: "all", revs, attachments}), sorted by rev.
 *       Attachments keep content_type, digest, revpos and data (base64);
 *       _conflicts is sorted. tests/peers/couch_dump.py builds the same dump
 *       from any CouchDB-protocol HTTP server, so the two compare with ==.
 */
'use strict';

const PouchDB = require('pouchdb');

const POLL_MS = 200;
const ATTACHMENT_FIELDS = ['content_type', 'digest', 'revpos', 'data'];

/** Read the command from argv[2] or, when absent, from stdin. */
async function readCommand() {
  if (process.argv[2]) {
    return JSON.parse(process.argv[2]);
  }
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** Describe an error in one line: status, name and message. */
function errText(err) {
  return [err.status, err.name, err.reason || err.message].filter((x) => x !== undefined).join(' ');
}

/** Keep the fields of a replication result that the tests look at. */
function summary(result) {
  return {
    ok: result.ok,
    status: result.status,
    docs_read: result.docs_read,
    docs_written: result.docs_written,
    doc_write_failures: result.doc_write_failures,
    errors: (result.errors || []).map(errText),
  };
}

/** Every document id of db, deleted documents included. */
async function allIds(db) {
  const changes = await db.changes({since: 0, style: 'all_docs'});
  return [...new Set(changes.results.map((row) => row.id))].sort();
}

/** One-shot replication. */
async function replicateOnce(cmd) {
  const result = await PouchDB.replicate(cmd.source, cmd.target, cmd.options || {});
  return summary(result);
}

/** Live replication until the target holds wait_for ids and is caught up. */
async function replicateLive(cmd) {
  const target = new PouchDB(cmd.target);
  const deadline = Date.now() + (cmd.timeout_ms || 30000);
  let paused = false;
  let last = {};
  const problems = [];  // errors that live replication retries past: report them too
  const rep = PouchDB.replicate(cmd.source, cmd.target, {live: true, retry: true});
  rep.on('change', (info) => { last = info; paused = false; });
  rep.on('active', () => { paused = false; });
  rep.on('paused', (err) => { paused = !err; if (err) problems.push(err); });
  rep.on('denied', (err) => problems.push(err));
  const done = new Promise((resolve) => rep.on('complete', resolve));
  let count = 0;
  let pending = cmd.then_write || [];
  while (Date.now() < deadline) {
    if (paused && pending.length) {
      await new PouchDB(cmd.source).bulkDocs(pending, {new_edits: false});
      [pending, paused] = [[], false];
    }
    count = (await allIds(target)).length;
    if (count >= cmd.wait_for && paused && !pending.length) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  rep.cancel();
  const final = await done;
  const result = summary({...last, ...final});
  result.errors.push(...problems.map(errText));
  return {...result, reached: count >= cmd.wait_for, count};
}

/** A PouchDB for a path or URL; remote ones fetch through a counting, optionally keep-alive, agent. */
function countedDb(name, stats, agent) {
  if (!/^https?:/.test(name)) return new PouchDB(name);
  const nodeFetch = require('node-fetch');
  const fetch = async (url, opts) => {
    stats.requests += 1;
    const method = (opts && opts.method) || 'GET';
    const parts = new URL(url).pathname.split('/').filter(Boolean);  // [db, doc or _endpoint, attachment]
    const what = parts.length < 2 ? (parts.length ? '(db)' : '/')
      : parts[1].startsWith('_') && parts[1] !== '_design' ? parts[1] : parts.length > 2 ? '(attachment)' : '(doc)';
    const key = `${method} ${what}`;
    stats.methods[key] = (stats.methods[key] || 0) + 1;
    try {
      return await nodeFetch(url, {...opts, agent});
    } catch (err) {
      // A kept-alive socket the server closed while idle ("socket hang up" before any
      // response byte): a browser silently retries the request once on a new connection.
      if (!agent || !(err.code === 'ECONNRESET' || /socket hang up/.test(err.message))) throw err;
      stats.requests += 1;
      stats.retried += 1;
      return nodeFetch(url, {...opts});  // no agent: a fresh connection
    }
  };
  return new PouchDB(name, {fetch});
}

/** One-shot replication, timed, with its HTTP requests counted. */
async function replicateStats(cmd) {
  const http = require('http');
  const agent = cmd.keepalive === false ? undefined : new http.Agent({keepAlive: true, maxSockets: 6});
  const stats = {requests: 0, retried: 0, methods: {}};
  const source = countedDb(cmd.source, stats, agent);
  const target = countedDb(cmd.target, stats, agent);
  const started = process.hrtime.bigint();
  let result;
  try {
    result = summary(await PouchDB.replicate(source, target, cmd.options || {}));
  } catch (err) {
    result = {ok: false, status: 'error', errors: [errText(err)]};
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {...result, seconds, requests: stats.requests, retried: stats.retried, methods: stats.methods};
}

/** Keep the comparable attachment fields; sort _conflicts. */
function normalize(doc) {
  const out = {...doc};
  if (out._attachments) {
    out._attachments = {};
    for (const [name, att] of Object.entries(doc._attachments)) {
      out._attachments[name] = Object.fromEntries(
        ATTACHMENT_FIELDS.filter((k) => k in att).map((k) => [k, att[k]]));
    }
  }
  if (out._conflicts) {
    out._conflicts = [...out._conflicts].sort();
  }
  return out;
}

/** CouchDB's winner among leaves: not deleted, then generation, then rev. */
function pickWinner(leaves) {
  const key = (leaf) => [leaf.doc._deleted ? 0 : 1, parseInt(leaf.rev, 10), leaf.rev];
  const better = (a, b) => {
    const [ka, kb] = [key(a), key(b)];
    for (let i = 0; i < 3; i++) {
      if (ka[i] !== kb[i]) return ka[i] > kb[i] ? a : b;
    }
    return a;
  };
  return leaves.reduce(better);
}

/** The winner and the sorted leaves of one document. */
async function dumpDoc(db, id) {
  const open = await db.get(id, {open_revs: 'all', revs: true, attachments: true});
  const leaves = open.filter((row) => row.ok)
    .map((row) => ({rev: row.ok._rev, doc: normalize(row.ok)}))
    .sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0));
  let winner;
  try {
    winner = normalize(await db.get(id, {revs: true, conflicts: true, attachments: true}));
  } catch (err) {
    // Only a deleted winner may answer 404; any other 404 is a real error.
    if (err.status !== 404 || !leaves.length || !pickWinner(leaves).doc._deleted) throw err;
    winner = pickWinner(leaves).doc;
  }
  return {winner, leaves};
}

/** The dump described at the top of this file. */
async function dump(cmd) {
  const db = new PouchDB(cmd.db);
  const out = {};
  for (const id of await allIds(db)) {
    out[id] = await dumpDoc(db, id);
  }
  return out;
}

/** bulkDocs with new_edits as given (default true). */
async function bulk(cmd) {
  const db = new PouchDB(cmd.db);
  return db.bulkDocs(cmd.docs, {new_edits: cmd.new_edits !== false});
}

const OPS = {
  replicate: (cmd) => (cmd.live ? replicateLive(cmd) : replicateOnce(cmd)),
  replicate_stats: replicateStats,
  bulk,
  dump,
};

/** Run one command and exit. */
async function main() {
  const cmd = await readCommand();
  const op = OPS[cmd.op];
  if (!op) throw new Error(`unknown op: ${cmd.op}`);
  const result = await op(cmd);
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`pouch.js: ${errText(err)}\n${err.stack || ''}\n`);
  process.exit(1);
});
