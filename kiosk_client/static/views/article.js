// Reading one article, with its attachments (a PDF opens in the phone's viewer, offline).
import * as db from '../db.js';
import { t, day } from '../i18n.js';
import { h } from '../ui.js';

export async function render(params) {
  const doc = await db.article(params.id);
  db.countRead(doc._id).catch(() => {}); // offline: sent with a later opening
  const files = Object.entries(doc._attachments || {});
  const links = await Promise.all(files.map(async ([name, att]) => h('li', {},
    h('a', { class: 'button secondary attachment', href: await db.attachmentUrl(doc._id, name), target: '_blank',
             download: name, type: att.content_type },
      t('article.open_file', { name, size: Math.max(1, Math.round((att.length || 0) / 1024)) })))));
  return h('article', { class: 'reading' },
    h('a', { class: 'back', href: '#/handbook' }, t('nav.back')),
    h('span', { class: 'tag' }, t(`category.${doc.category}`)),
    h('h1', { lang: doc.language, dir: 'auto' }, doc.title),
    h('p', { class: 'meta' }, t('handbook.published', { date: day(doc.published_at) })),
    h('div', { class: 'body', lang: doc.language, dir: 'auto' }, String(doc.body).split(/\n\s*\n/).map((p) => h('p', {}, p))),
    links.length ? h('section', {}, h('h2', {}, t('article.attachments')), h('ul', { class: 'plain' }, links)) : null);
}
