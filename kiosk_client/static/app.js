// Entry point: language, session, routes (#/screen/param), the service worker.
import * as db from './db.js';
import { t, setLanguage, savedLanguage, language, LANGUAGES } from './i18n.js';
import * as handbook from './views/handbook.js';
import * as article from './views/article.js';
import * as meetings from './views/meetings.js';
import * as minutes from './views/minutes.js';
import * as feedback from './views/feedback.js';
import * as sync from './views/sync.js';
import * as conflict from './views/conflict.js';
import * as signin from './views/signin.js';
import * as pair from './views/pair.js';
import * as members from './views/members.js';
import { h } from './ui.js';

const ROUTES = {
  handbook: handbook.render, article: article.render, file: article.renderFile, meetings: meetings.render,
  'meeting-edit': meetings.renderEdit, attendance: meetings.renderAttendance, minutes: minutes.render,
  'minutes-edit': minutes.renderEdit, feedback: feedback.render, sync: sync.render,
  conflict: conflict.render, signin: signin.render, pair: pair.render, 'pair-phone': pair.renderPhone,
  members: members.render,
};
// Screens open to a browser nobody is signed in on.
const OPEN = new Set(['signin', 'pair-phone']);
// Screens that show live data and are redrawn when it changes (never a form being filled in).
const LIVE = new Set(['handbook', 'meetings', 'minutes', 'sync']);
const SIGNED_OUT_KEY = 'phs.signedOut';
// The kiosk's own screen, shared by every member at the cultural house: opened once as
// /_app/?screen=shared (the kiosk's browser starts there), remembered by this browser. It signs
// the member out after screen_idle_seconds (kiosk.json) without a touch, and after each check-in.
const SHARED_KEY = 'phs.sharedScreen';
// Set in sessionStorage once the app opened in this browser session: a shared screen's browser started
// anew (after a power cut, or closed and opened) begins signed out, whoever used it last.
const OPENED_KEY = 'phs.opened';
const IDLE_EVENTS = ['pointerdown', 'keydown', 'touchstart', 'wheel'];
const main = document.getElementById('view');
let who = null;
let drawing = Promise.resolve();
// A pairing link from the kiosk's QR code (/_app/?pair=123456[&fp=sha256:...]) not yet used.
let pairing = null;
let shownHash = null;
let idleTimer = null;
let idleSeconds = 90;
let signedOutNote = null; // why the last member was signed out on the shared screen, said on the sign-in form

function parse() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, ...rest] = path.split('/');
  const params = Object.fromEntries(new URLSearchParams(query));
  if (rest.length) params.id = decodeURIComponent(rest.join('/'));
  return { name: name || 'handbook', params };
}

const ctx = {
  get who() { return who; },
  go: (hash) => { if (location.hash === hash) draw(); else location.hash = hash; },
  rerender: () => draw(),
  signedIn: (account) => {
    who = account;
    localStorage.removeItem(SIGNED_OUT_KEY);
    db.startSync(who);
    armIdle();
    ctx.go('#/handbook');
  },
  signOut: async (note = null) => {
    await db.signOut();
    who = null;
    signedOutNote = note;
    localStorage.setItem(SIGNED_OUT_KEY, '1');
    ctx.go('#/signin');
  },
  get shared() { return localStorage.getItem(SHARED_KEY) === '1'; },
  /** The note left by the last sign-out on the shared screen (read once). */
  takeSignedOutNote: () => { const note = signedOutNote; signedOutNote = null; return note; },
  /**
   * A member checked in on the shared screen: once the record is at the kiosk, sign them out for
   * the next member. While it waits, nobody is signed out (their record would be left behind).
   */
  checkedIn: async (id) => {
    if (!ctx.shared || !who) return;
    const name = who.name;
    if (await db.whenUp(id) && who && who.name === name) await ctx.signOut({ kind: 'checkin', name });
  },
  get pairing() { return pairing; },
  // The phone is paired: the code is spent, so it leaves the address (a reload must not show it again).
  paired: (account) => {
    pairing = null;
    const url = new URL(location.href);
    url.searchParams.delete('pair');
    url.searchParams.delete('fp');
    history.replaceState(null, '', url.pathname + url.search + '#/handbook');
    ctx.signedIn(account);
  },
};

function draw() {
  drawing = drawing.then(async () => {
    let { name, params } = parse();
    if (!who && !OPEN.has(name)) name = 'signin';
    const render = ROUTES[name] || ROUTES.handbook;
    try {
      const view = await render(params, ctx);
      main.replaceChildren(view);
      if (location.hash !== shownHash) window.scrollTo(0, 0); // a new screen opens at its top; a redraw stays put
      shownHash = location.hash;
    } catch (error) {
      console.error(error);
      main.replaceChildren(Object.assign(document.createElement('p'), { className: 'message', textContent: t('app.error') }));
    }
    document.body.dataset.screen = name;
    document.querySelectorAll('nav a').forEach((a) => {
      const on = a.dataset.screen === name || (name === 'article' && a.dataset.screen === 'handbook')
        || (name === 'minutes-edit' && a.dataset.screen === 'minutes')
        || (['meeting-edit', 'attendance', 'file'].includes(name) && a.dataset.screen === (name === 'file' ? 'handbook' : 'meetings'))
        || (['conflict', 'pair', 'members'].includes(name) && a.dataset.screen === 'sync');
      if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    document.getElementById('nav').hidden = !who;
    showWho();
    showNotice();
  });
  return drawing;
}

// The kiosk refused this phone's device token (the kiosk admin unpaired it), or the cookie session
// ended (expired, or revoked by a new PIN): say so on every screen, with the way back, while the
// data already on the phone stays readable.
function showNotice() {
  const notice = document.getElementById('notice');
  const kind = db.status.unpaired ? 'unpaired' : db.status.sessionEnded && who ? 'session' : null;
  const show = Boolean(kind) && !OPEN.has(parse().name);
  notice.hidden = !show;
  if (!show) { notice.replaceChildren(); return; }
  // shown already: keep the focus
  if (notice.dataset.lang === language() && notice.dataset.kind === kind && notice.childElementCount) return;
  notice.dataset.lang = language();
  notice.dataset.kind = kind;
  if (kind === 'session') {
    notice.replaceChildren(h('p', { id: 'session-text' }, t('session.expired')),
      h('div', { class: 'actions' }, h('a', { class: 'button primary', href: '#/signin' }, t('signin.button'))));
    return;
  }
  notice.replaceChildren(h('p', { id: 'unpaired-text' }, t('pair.unpaired')),
    h('div', { class: 'actions' },
      h('a', { class: 'button primary', href: '#/pair-phone' }, t('pair.again')),
      h('a', { class: 'button secondary', href: '#/signin' }, t('signin.button'))));
}

// Whose account is in use, on every screen, with the way out: on a shared screen the next member
// must never act as the previous one.
async function showWho() {
  const bar = document.getElementById('who');
  bar.hidden = !who;
  if (!who) { bar.replaceChildren(); return; }
  const name = (await db.memberName(who)) || who.name;
  if (bar.dataset.lang === language() && bar.dataset.name === name && bar.childElementCount) return;
  bar.dataset.lang = language();
  bar.dataset.name = name;
  bar.replaceChildren(
    h('p', { id: 'who-name' }, t('who.using', { name }), h('span', { class: 'meta', dir: 'ltr' }, ` ${who.name}`)),
    h('button', { class: 'button secondary', id: 'not-me', onclick: () => ctx.signOut() }, t('who.not_me')));
}

function armIdle() {
  clearTimeout(idleTimer);
  if (!who || !ctx.shared) return;
  idleTimer = setTimeout(() => { if (who) ctx.signOut({ kind: 'idle', name: who.name }); }, idleSeconds * 1000);
}

function showStatus(status) {
  const badge = document.getElementById('sync-badge');
  const state = status.needsSignIn ? 'signin' : status.active ? 'active' : status.reachable ? 'online' : 'offline';
  badge.dataset.state = state;
  badge.textContent = t(`badge.${state}`) + (status.conflicts ? ' ' + t('badge.conflicts', { n: status.conflicts }) : '');
  const focused = document.activeElement;
  const typing = focused && ['INPUT', 'TEXTAREA', 'SELECT'].includes(focused.tagName) && main.contains(focused);
  if (who && LIVE.has(parse().name) && !typing) draw();
  else showNotice();
}

async function start() {
  await setLanguage(savedLanguage());
  const chooser = document.getElementById('language');
  chooser.replaceChildren(...Object.keys(LANGUAGES).map((code) => Object.assign(document.createElement('option'),
    { value: code, textContent: t(`language.${code}`), selected: code === language() })));
  chooser.addEventListener('change', async () => { await setLanguage(chooser.value); showStatus(db.status); draw(); });

  const query = new URLSearchParams(location.search);
  if (query.get('screen') === 'shared') localStorage.setItem(SHARED_KEY, '1');
  if (query.get('screen') === 'own') localStorage.removeItem(SHARED_KEY);
  if (/^\d{6}$/.test(query.get('pair') || '')) {
    pairing = { code: query.get('pair'), fp: query.get('fp') };
    history.replaceState(null, '', location.pathname + location.search + '#/pair-phone');
  }
  who = db.session();
  if (who && ctx.shared && !sessionStorage.getItem(OPENED_KEY)) {
    await db.signOut();
    localStorage.setItem(SIGNED_OUT_KEY, '1');
    who = null;
  }
  sessionStorage.setItem(OPENED_KEY, '1');
  if (!who && !pairing && !localStorage.getItem(SIGNED_OUT_KEY)) {
    // Only a kiosk started with --sample offers demo accounts: open signed in as its demo member.
    const sample = await db.sampleAccounts();
    if (sample) {
      try { who = await db.signIn(sample.member.name, sample.member.pin); } catch (error) { who = null; }
    }
  }
  let timer = null;
  db.onChange((status) => { clearTimeout(timer); timer = setTimeout(() => showStatus(status), 150); });
  if (who) db.startSync(who);
  window.addEventListener('hashchange', () => { armIdle(); draw(); });
  IDLE_EVENTS.forEach((name) => window.addEventListener(name, armIdle, { passive: true }));
  db.kioskInfo().then((kiosk) => {
    if (kiosk && kiosk.screen_idle_seconds) idleSeconds = kiosk.screen_idle_seconds;
    armIdle();
    warnIfNotOffline(kiosk);
  });
  window.addEventListener('online', () => db.syncNow());
  showStatus(db.status);
  await draw();
  document.body.dataset.ready = 'true';
}

// Opened where the app cannot be kept on the phone (plain http over the Wi-Fi, or a browser
// without service workers): say so in plain words, and how to open it so that it works at home.
function warnIfNotOffline(kiosk) {
  const box = document.getElementById('insecure');
  if (window.isSecureContext && 'serviceWorker' in navigator) { box.hidden = true; return; }
  const url = kiosk && kiosk.app_url;
  box.replaceChildren(h('p', {}, t('offline.not_kept')),
    h('p', {}, url ? t('offline.open_at') : t('offline.ask_admin')),
    ...(url ? [h('p', {}, h('a', { href: url, id: 'open-offline', class: 'button', dir: 'ltr' }, url))] : []));
  box.hidden = false;
}

// The service worker keeps the app itself offline; browsers allow it only in a secure
// context (HTTPS, or localhost on the kiosk's own screen). Elsewhere the app still works
// while the kiosk is in reach, with its data kept in the browser's database.
if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/_app/sw.js', { scope: '/_app/' }).catch((error) => console.warn(error));
}

start();
