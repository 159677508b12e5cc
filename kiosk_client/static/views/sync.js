// Sync status: the kiosk in reach or not, what waits to go up, when the kiosk last
// reached the province, and the conflicts to resolve. Also where the member signs out.
import * as db from '../db.js';
import { t, when } from '../i18n.js';
import { h } from '../ui.js';

export async function render(params, ctx) {
  const s = db.status;
  const conflicts = await db.conflicts();
  const kiosk = s.kiosk;
  const round = kiosk && kiosk.lastRound;
  const province = !kiosk ? t('sync.unknown')
    : !kiosk.configured ? t('sync.province_not_configured')
      : round && round.finished ? t(round.ok ? 'sync.province_ok' : 'sync.province_failed',
        { time: when(new Date(round.finished * 1000).toISOString()) })
        : t('sync.province_never');
  const row = (label, value, id) => h('div', { class: 'row', id }, h('dt', {}, label), h('dd', {}, value));
  return h('section', {}, h('h1', {}, t('sync.title')),
    s.needsSignIn && !s.unpaired && !s.sessionEnded ? h('p', { class: 'warning' }, t('sync.sign_in_again'),
      h('a', { class: 'button primary', href: '#/signin' }, t('signin.button'))) : null,
    h('dl', { class: 'status' },
      row(t('sync.kiosk'), s.reachable ? t('sync.reachable') : t('sync.unreachable'), 'status-kiosk'),
      row(t('sync.last_sync'), s.lastSync ? when(s.lastSync) : t('sync.never'), 'status-last'),
      row(t('sync.waiting_phone'), String(s.waiting), 'status-waiting'),
      row(t('sync.province'), province, 'status-province'),
      row(t('sync.waiting_kiosk'), kiosk ? String(kiosk.waiting) : t('sync.unknown'), 'status-kiosk-waiting')),
    h('button', { class: 'button primary', id: 'sync-now', onclick: () => { db.syncNow(); ctx.rerender(); } },
      t('sync.now')),
    ctx.who.kioskAdmin ? h('a', { class: 'button primary', id: 'pair-open', href: '#/pair' }, t('pair.open')) : null,
    ctx.who.kioskAdmin ? h('a', { class: 'button primary', id: 'members-open', href: '#/members' }, t('members.title')) : null,
    h('h2', {}, t('sync.conflicts', { n: conflicts.length })),
    h('ul', { class: 'cards', id: 'conflicts' }, conflicts.length
      ? conflicts.map((c) => h('li', { class: 'card' },
        h('strong', { class: 'title' }, t(`doc.${c.type}`)),
        h('span', { class: 'meta' }, t('sync.versions', { n: c._conflicts.length + 1 })),
        ctx.who.secretary
          ? h('a', { class: 'button primary resolve', href: `#/conflict/${encodeURIComponent(c._id)}` }, t('sync.resolve'))
          : h('span', { class: 'meta' }, t('sync.secretary_resolves'))))
      : h('li', { class: 'empty' }, t('sync.no_conflicts'))),
    h('p', { class: 'meta', id: 'signed-in-as' }, t('signin.as', { name: ctx.who.name })),
    db.pairedDevice() ? h('p', { class: 'meta', id: 'paired-phone' }, t('pair.this_phone')) : null,
    h('button', { class: 'button secondary', id: 'sign-out', onclick: async () => { await ctx.signOut(); } },
      t('signin.out')));
}
