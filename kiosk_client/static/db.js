// The only module that knows PouchDB and the kiosk's URL (STYLE.md: kiosk_client/db.js).
//
// The phone keeps two local databases in the browser (IndexedDB): the handbook,
// pulled from the kiosk (read-only), and the member's cell database, synced both
// ways. Both replications are live and retry for ever, so the app keeps working
// when the kiosk is out of reach and catches up when it is back.
/* global PouchDB */
import { syncOptions } from './sync.mjs';

const KIOSK = location.origin; // the app is served by the kiosk itself: same origin
const HANDBOOK_DB = 'handbook';
const SESSION_KEY = 'phs.session';
const STATUS_KEY = 'phs.status';
// A paired phone's device token ({token, deviceId, name}), kept in localStorage: it is sent as
// `Authorization: Bearer` on every request to the kiosk instead of the AuthSession cookie.
// Anyone who can read this browser's storage can use it until the kiosk admin revokes it.
const DEVICE_KEY = 'phs.device';
// The kiosk's own cell (GET /_app/kiosk.json), kept for signing in with the kiosk out of reach.
const KIOSK_KEY = 'phs.kiosk';

const listeners = new Set();
let replications = [];
let localHandbook = null;
let localCell = null;
let generation = 0; // events of replications cancelled by a restart are ignored

export const status = loadStatus();

function loadStatus() {
  const saved = JSON.parse(localStorage.getItem(STATUS_KEY) || '{}');
  return { reachable: null, lastSync: saved.lastSync || null, pushedSeq: saved.pushedSeq || 0,
           waiting: 0, conflicts: 0, kiosk: saved.kiosk || null, needsSignIn: Boolean(saved.unpaired || saved.sessionEnded),
           active: false, unpaired: Boolean(saved.unpaired), sessionEnded: Boolean(saved.sessionEnded) };
}

function saveStatus() {
  localStorage.setItem(STATUS_KEY, JSON.stringify(
    { lastSync: status.lastSync, pushedSeq: status.pushedSeq, kiosk: status.kiosk, unpaired: status.unpaired,
      sessionEnded: status.sessionEnded }));
}

/** Call fn() whenever the sync status or the local data changes. */
export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }

function changed() { saveStatus(); listeners.forEach((fn) => fn(status)); }

function remote(name) {
  // A paired phone sends its device token; otherwise the AuthSession cookie (same origin,
  // said explicitly so PouchDB's fetch always sends it).
  return new PouchDB(`${KIOSK}/${encodeURIComponent(name)}`, {
    skip_setup: true,
    fetch: (url, opts) => {
      const headers = new Headers((opts && opts.headers) || {});
      const device = pairedDevice();
      if (device) headers.set('Authorization', `Bearer ${device.token}`);
      return PouchDB.fetch(url, Object.assign({}, opts, { credentials: 'include', headers }));
    },
  });
}

/** fetch() to the kiosk with this browser's credentials (device token or cookie); a 401 on a token unpairs. */
async function kioskFetch(path, init = {}) {
  const device = pairedDevice();
  const headers = new Headers(init.headers || {});
  if (!headers.has('Accept')) headers.set('Accept', 'application/json');
  if (device) headers.set('Authorization', `Bearer ${device.token}`);
  const response = await fetch(`${KIOSK}${path}`, Object.assign({}, init, { credentials: 'include', headers }));
  if (response.status === 401 && device) unpaired(device);
  return response;
}

async function refused(response) {
  const error = new Error('refused');
  error.status = response.status;
  try { error.reason = (await response.json()).reason || ''; } catch (e) { error.reason = ''; }
  return error;
}

// --- session ---------------------------------------------------------------------------

/** The signed-in member ({name, roles, cell, memberId, cellDb, secretary}) or null. */
export function session() {
  const saved = localStorage.getItem(SESSION_KEY);
  if (!saved) return null;
  const who = JSON.parse(saved);
  return describe(who.name, who.roles || []); // described afresh, so a newer app reads an older session
}

function describe(name, roles) {
  const cellRole = roles.find((r) => r.startsWith('cell:'));
  const cell = cellRole ? cellRole.slice(5) : null;
  return {
    name, roles, cell,
    // a kiosk admin's account (e.g. TQ.NH.KH.C01.kiosk) is of the cell but is no member of it
    memberId: cell && name.startsWith(cell + '.') && (roles.includes('member') || roles.includes('secretary'))
      ? `member:${cell}:${name.slice(cell.length + 1)}` : null,
    cellDb: cell ? 'cell-' + cell.toLowerCase().replace(/\./g, '-') : null,
    secretary: roles.includes('secretary'),
    kioskAdmin: roles.includes('kiosk-admin') || roles.includes('_admin'),
  };
}

/**
 * Sign in with a member account and PIN (CouchDB's POST /_session); throws {status}. With `remember`
 * (a member's own phone, never the kiosk's shared screen) the kiosk pairs this phone on the PIN alone
 * (POST /_pairing/remember): its device token, kept in localStorage, outlives closing the browser, as a
 * paired phone's does; a new PIN, the kiosk admin unpairing it, or signing out here ends it.
 */
export async function signIn(name, pin, { remember: keep = false, label = 'phone' } = {}) {
  if (keep) return signInRemembered(name, pin, label);
  const response = await fetch(`${KIOSK}/_session`, {
    method: 'POST', credentials: 'include',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ name, password: pin }),
  });
  if (!response.ok) throw await refused(response); // {status, reason}: a lockout says so in its reason
  const body = await response.json();
  localStorage.removeItem(DEVICE_KEY); // signed in with a PIN: the cookie is this browser's credential now
  return remember(describe(body.name, body.roles || []));
}

async function signInRemembered(name, pin, label) {
  const response = await fetch(`${KIOSK}/_pairing/remember`, {
    method: 'POST', credentials: 'omit',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ name, pin, label }),
  });
  if (!response.ok) throw await refused(response); // 403: the kiosk's shared screen, or not a member's account
  return keepDevice(await response.json());
}

/** A device token the kiosk gave ({device_id, token}): kept, and the member it belongs to signed in. */
async function keepDevice(device) {
  const me = await fetch(`${KIOSK}/_session`, {
    credentials: 'omit', headers: { Accept: 'application/json', Authorization: `Bearer ${device.token}` } });
  if (!me.ok) throw await refused(me);
  const user = (await me.json()).userCtx;
  localStorage.setItem(DEVICE_KEY, JSON.stringify({ token: device.token, deviceId: device.device_id, name: user.name }));
  return remember(describe(user.name, user.roles || []));
}

function remember(who) {
  localStorage.setItem(SESSION_KEY, JSON.stringify(who));
  status.needsSignIn = false;
  status.unpaired = false;
  status.sessionEnded = false;
  saveStatus();
  return who;
}

/**
 * Forget the session here and at the kiosk when in reach; a paired or remembered phone's token is
 * forgotten by the kiosk too (DELETE /_session with it). Local data stays.
 */
export async function signOut() {
  const device = pairedDevice();
  stopSync();
  localStorage.removeItem(SESSION_KEY);
  localStorage.removeItem(DEVICE_KEY);
  status.needsSignIn = false;
  status.sessionEnded = false;
  saveStatus();
  const headers = device ? { Authorization: `Bearer ${device.token}` } : {};
  try { await fetch(`${KIOSK}/_session`, { method: 'DELETE', credentials: 'include', headers }); } catch (e) { /* offline */ }
}

// --- pairing a phone -------------------------------------------------------------------

/** This phone's device token ({token, deviceId, name}) when it is paired with the kiosk, else null. */
export function pairedDevice() {
  const saved = localStorage.getItem(DEVICE_KEY);
  return saved ? JSON.parse(saved) : null;
}

/**
 * Pair this phone: the code from the kiosk screen, the member's account and PIN. Keeps the device
 * token and returns the member as signIn() does. Throws {status, kind}: kind is 'code' (unknown,
 * used or expired), 'locked' (too many wrong PINs), 'pin' (wrong member code or PIN) or 'other'.
 */
export async function pair(code, name, pin, label) {
  const response = await fetch(`${KIOSK}/_pairing/claim`, {
    method: 'POST', credentials: 'omit',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ code, name, pin, label }),
  });
  if (!response.ok) {
    const error = await refused(response);
    // the kiosk's reasons (sync_server/security/pairing.py, auth.py) tell a bad code from a wrong PIN
    error.kind = response.status !== 401 ? 'other' : /pairing code/i.test(error.reason) ? 'code'
      : /locked/i.test(error.reason) ? 'locked' : 'pin';
    throw error;
  }
  return keepDevice(await response.json());
}

/** The kiosk refused this phone's token (401): the admin revoked it. Drop it; the local data stays. */
function unpaired(device) {
  const current = pairedDevice();
  if (!current || current.token !== device.token) return; // already dropped, or paired again since
  localStorage.removeItem(DEVICE_KEY);
  stopSync();
  status.unpaired = true;
  status.needsSignIn = true;
  status.active = false;
  changed();
}

/** For the kiosk admin: a new one-time code ({code, expires, url, qr_svg[, fingerprint]}). */
export async function pairingCode() {
  const response = await kioskFetch('/_pairing/code', { method: 'POST' });
  if (!response.ok) throw await refused(response);
  return response.json();
}

/** For the kiosk admin: every paired device ({device_id, member, label, paired_at, revoked_at}). */
export async function pairedDevices() {
  const response = await kioskFetch('/_pairing/devices');
  if (!response.ok) throw await refused(response);
  return response.json();
}

/** For the kiosk admin: refuse a device's token from now on. */
export async function revokeDevice(deviceId) {
  const response = await kioskFetch(`/_pairing/devices/${encodeURIComponent(deviceId)}`, { method: 'DELETE' });
  if (!response.ok) throw await refused(response);
}

// --- the cell's members (kiosk admin; /_members, sync_server/api/members.py) -------------

async function membersCall(path, init = {}) {
  const response = await kioskFetch(`/_members${path}`, init);
  if (!response.ok) throw await refused(response);
  return response.json();
}

const postJson = (body) => ({ method: 'POST', headers: { 'Content-Type': 'application/json' },
                              body: JSON.stringify(body || {}) });

/** The admin's cell and its members ({cell, members: [{member_no, name, status, has_pin, secretary, locked_seconds, ...}]}). */
export function members() { return membersCall(''); }

/** Add a member to the register ({member_no, name, born?, gender?, smartphone?}). */
export function addMember(fields) { return membersCall('', postJson(fields)); }

/** Import the cell's register (CSV text): all lines or none ({added, updated}). */
export function importRegister(text) {
  return membersCall('/_import', { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: text });
}

/** A new PIN for a member ({account, pin}): shown once, it also lifts a lockout. */
export function givePin(number) { return membersCall(`/${encodeURIComponent(number)}/pin`, postJson()); }

/** Mark a member active, moved or inactive. */
export function setMemberStatus(number, status) {
  return membersCall(`/${encodeURIComponent(number)}/status`, postJson({ status }));
}

/** Name the cell's secretary. */
export function nameSecretary(number) { return membersCall(`/${encodeURIComponent(number)}/secretary`, postJson()); }

/**
 * The cell this kiosk serves ({cell, cell_db, handbook_db}, GET /_app/kiosk.json), or null when it has none.
 * Kept in localStorage, so the sign-in form knows the cell with the kiosk out of reach.
 */
export async function kioskInfo() {
  const saved = localStorage.getItem(KIOSK_KEY);
  try {
    const response = await fetch(`${KIOSK}/_app/kiosk.json`, { headers: { Accept: 'application/json' } });
    if (response.status === 404) { localStorage.removeItem(KIOSK_KEY); return null; }
    const body = response.ok ? await response.json() : null; // the service worker may answer with index.html
    if (body && typeof body.cell === 'string') {
      localStorage.setItem(KIOSK_KEY, JSON.stringify(body));
      return body;
    }
  } catch (e) { /* out of reach: the last answer */ }
  return saved ? JSON.parse(saved) : null;
}

/** The demo accounts, offered only by a kiosk running the sample (GET /_app/sample.json), else null. */
export async function sampleAccounts() {
  try {
    const response = await fetch(`${KIOSK}/_app/sample.json`, { headers: { Accept: 'application/json' } });
    return response.ok ? await response.json() : null;
  } catch (e) {
    return null;
  }
}

// --- sync ------------------------------------------------------------------------------

/** Open the local databases of the signed-in member and start live sync with the kiosk. */
export function startSync(who) {
  stopSync();
  generation += 1;
  localHandbook = new PouchDB('phs-' + HANDBOOK_DB);
  localCell = who.cellDb ? new PouchDB('phs-' + who.cellDb) : null;
  const { pull, push } = syncOptions(who);
  replications = [watch(PouchDB.replicate(remote(HANDBOOK_DB), localHandbook, pull), 'pull')];
  if (localCell) {
    replications.push(watch(PouchDB.replicate(remote(who.cellDb), localCell, pull), 'pull'));
    replications.push(watch(PouchDB.replicate(localCell, remote(who.cellDb), push), 'push'));
    replications.push(localCell.changes({ since: 'now', live: true }).on('change', () => refreshCounts()));
  }
  refreshCounts();
  refreshKiosk();
}

function stopSync() {
  replications.forEach((r) => r.cancel());
  replications = [];
}

function watch(replication, direction) {
  const mine = generation;
  const current = (fn) => (...args) => (mine === generation ? fn(...args) : undefined);
  replication
    .on('active', current(() => { status.active = true; status.reachable = true; changed(); }))
    .on('change', current(() => { status.reachable = true; changed(); }))
    .on('paused', current(async (err) => {
      status.active = false;
      status.reachable = !err;
      if (!err) {
        status.lastSync = new Date().toISOString();
        if (direction === 'push' && localCell) status.pushedSeq = (await localCell.info()).update_seq;
        refreshKiosk();
      }
      refreshCounts();
    }))
    .on('denied', current(() => refreshCounts()))
    .on('error', current((err) => {
      const device = pairedDevice();
      if (device && err && err.status === 401) { unpaired(device); return; }
      status.reachable = false;
      status.needsSignIn = Boolean(err && (err.status === 401 || err.status === 403));
      // 401 to the AuthSession cookie: the session expired, or the kiosk revoked it (a new PIN). The
      // member is asked to sign in again; who is signed in here, and the local data, stay.
      if (err && err.status === 401) status.sessionEnded = true;
      changed();
    }));
  return replication;
}

/** Restart the replications now (the "Sync now" button), instead of waiting for the back-off. */
export function syncNow() {
  const who = session();
  if (who) startSync(who);
}

async function refreshCounts() {
  if (localCell) {
    const since = await localCell.changes({ since: status.pushedSeq, limit: 1000 });
    status.waiting = since.results.filter((c) => !c.id.startsWith('_design/')).length;
    status.conflicts = (await conflicts()).length;
  }
  changed();
}

async function refreshKiosk() {
  try {
    const response = await kioskFetch('/_sync/status');
    if (response.ok) {
      const body = await response.json();
      status.kiosk = { configured: body.configured, lastRound: body.last_round,
                       waiting: Object.values(body.waiting_up || {}).reduce((a, b) => a + b, 0) };
      changed();
    }
  } catch (e) { /* out of reach: keep the last known kiosk status */ }
}

// --- data ------------------------------------------------------------------------------

function docsOf(result) { return result.rows.map((r) => r.doc).filter(Boolean); }

async function byPrefix(db, prefix, extra = {}) {
  if (!db) return [];
  return docsOf(await db.allDocs(Object.assign({ include_docs: true, startkey: prefix, endkey: prefix + '\uffff' }, extra)));
}

/** Every article of the handbook, newest first. */
export async function articles() {
  const docs = await byPrefix(localHandbook, 'article:');
  return docs.sort((a, b) => String(b.published_at).localeCompare(String(a.published_at)));
}

export async function article(id) { return localHandbook.get(id); }

/** An attachment's data as an object URL the browser can open (a PDF opens in its viewer). */
export async function attachmentUrl(docId, name) {
  const blob = await localHandbook.getAttachment(docId, name);
  return URL.createObjectURL(blob);
}

/** The check-in window around a meeting's time ({opens, closes} in minutes), as the kiosk said in kiosk.json. */
export function checkinWindow() {
  const saved = JSON.parse(localStorage.getItem(KIOSK_KEY) || '{}');
  // the kiosk's defaults (config.yaml server.checkin_opens_minutes / checkin_closes_minutes)
  return { opens: saved.checkin_opens_minutes ?? 60, closes: saved.checkin_closes_minutes ?? 240 };
}

/** The cell's members with status active, by name (the secretary's list of who came). */
export async function activeMembers() {
  const docs = await byPrefix(localCell, 'member:');
  return docs.filter((m) => m.status === 'active').sort((a, b) => String(a.member_no).localeCompare(String(b.member_no)));
}

/** Every attendance record of a meeting. */
export function attendanceOfMeeting(meetingId) { return byPrefix(localCell, `attendance:${meetingId}:`); }

/** The cell's meetings: those to come, the next one first; then those past, the latest first. */
export async function meetings() {
  const docs = await byPrefix(localCell, 'meeting:');
  const when = (m) => Date.parse(m.scheduled) || 0;
  const now = Date.now();
  return docs.sort((a, b) => {
    const aComing = when(a) >= now;
    const bComing = when(b) >= now;
    if (aComing !== bComing) return aComing ? -1 : 1;
    return aComing ? when(a) - when(b) : when(b) - when(a);
  });
}

/** One meeting of the cell, or null. */
export async function meeting(id) {
  try { return await localCell.get(id); } catch (e) { return null; }
}

export async function minutesOf(meetingId) {
  try { return await localCell.get('minutes:' + meetingId); } catch (e) { return null; }
}

export async function attendanceOf(meetingId, memberNo) {
  try { return await localCell.get(`attendance:${meetingId}:${memberNo}`); } catch (e) { return null; }
}

/** The name on the signed-in member's record in the cell's database, or null (a kiosk admin has none). */
export async function memberName(who) {
  if (!localCell || !who || !who.memberId) return null;
  try { return (await localCell.get(who.memberId)).name || null; } catch (e) { return null; }
}

/** Whether a document written here is still waiting to go up to the kiosk (changed since the last push). */
export async function waitingToGoUp(id) {
  if (!localCell) return false;
  const since = await localCell.changes({ since: status.pushedSeq, doc_ids: [id], limit: 1 });
  return since.results.length > 0;
}

/** Resolve true once a saved document has gone up to the kiosk, false after timeoutMs. */
export async function whenUp(id, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (localCell && !(await waitingToGoUp(id))) return true;
    await new Promise((resolve) => { setTimeout(resolve, 300); });
  }
  return false;
}

/** Write a document into the cell's database (it goes up to the kiosk by itself). */
export async function save(doc) {
  const result = await localCell.put(doc);
  await refreshCounts();
  return result;
}

/** A random UUID: crypto.randomUUID() where the browser offers it (secure contexts only), else the same from random bytes. */
export function newId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// --- conflicts -------------------------------------------------------------------------

/** Documents of the cell with conflicting versions (e.g. minutes edited on two devices offline). */
export async function conflicts() {
  if (!localCell) return [];
  const result = await localCell.allDocs({ include_docs: true, conflicts: true });
  return docsOf(result).filter((d) => d._conflicts && d._conflicts.length);
}

/** Every live version of a document: the current winner first. */
export async function versions(id) {
  const winner = await localCell.get(id, { conflicts: true });
  const others = await Promise.all((winner._conflicts || []).map((rev) => localCell.get(id, { rev })));
  delete winner._conflicts;
  return [winner, ...others];
}

/** Keep one version (its fields as given) and remove the others, so no version is lost unseen. */
export async function resolve(id, chosen) {
  const [winner, ...others] = await versions(id);
  const kept = Object.assign({}, chosen, { _id: id, _rev: winner._rev });
  await localCell.bulkDocs([kept, ...others.map((o) => ({ _id: id, _rev: o._rev, _deleted: true }))]);
  refreshCounts();
}

// --- reading: counted per day and article, never who read (issue 13) ---------------------
// Openings are kept in localStorage ({date: {article id: times}}) and sent to the kiosk
// (POST /_reading) now or, when it is out of reach, with a later opening; the kiosk adds them
// to the cell's count of the day. Only a cell member's openings are counted.
const READS_KEY = 'phs.reads';
const READS_KEPT_DAYS = 59; // the kiosk takes the last 60 days

/** Count one opening of an article today and send what is waiting. */
export async function countRead(articleId) {
  if (!session()?.memberId) return;
  const oldest = new Date(Date.now() - READS_KEPT_DAYS * 86400000).toLocaleDateString('sv');
  const today = new Date().toLocaleDateString('sv'); // YYYY-MM-DD, local time
  const reads = Object.fromEntries(Object.entries(JSON.parse(localStorage.getItem(READS_KEY) || '{}'))
    .filter(([date]) => date >= oldest));
  reads[today] = reads[today] || {};
  reads[today][articleId] = Math.min(1000, (reads[today][articleId] || 0) + 1);
  localStorage.setItem(READS_KEY, JSON.stringify(reads));
  const response = await kioskFetch('/_reading', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ reads }),
  });
  if (response.ok || response.status === 400) { // counted, or never countable: not sent again
    const left = JSON.parse(localStorage.getItem(READS_KEY) || '{}');
    for (const [date, counts] of Object.entries(reads)) {
      for (const [id, times] of Object.entries(counts)) {
        const rest = ((left[date] || {})[id] || 0) - times;
        if (rest > 0) left[date][id] = rest; else if (left[date]) delete left[date][id];
      }
      if (left[date] && !Object.keys(left[date]).length) delete left[date];
    }
    localStorage.setItem(READS_KEY, JSON.stringify(left));
  }
}
