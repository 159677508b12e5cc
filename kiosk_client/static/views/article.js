// Reading one article, with its attachments: a PDF opens inside the app (#/file/...), from the
// copy in the phone's database, so it opens offline and is never saved as a download.
import * as db from '../db.js';
import { t, day } from '../i18n.js';
import { h } from '../ui.js';

export async function render(params) {
  const doc = await db.article(params.id);
  db.countRead(doc._id).catch(() => {}); // offline: sent with a later opening
  const files = Object.entries(doc._attachments || {});
  const links = files.map(([name, att]) => h('li', {},
    h('a', { class: 'button secondary attachment', type: att.content_type,
             href: `#/file/${encodeURIComponent(doc._id)}?name=${encodeURIComponent(name)}` },
      t('article.open_file', { name, size: Math.max(1, Math.round((att.length || 0) / 1024)) }))));
  return h('article', { class: 'reading' },
    h('a', { class: 'back', href: '#/handbook' }, t('nav.back')),
    h('span', { class: 'tag' }, t(`category.${doc.category}`)),
    h('h1', { lang: doc.language, dir: 'auto' }, doc.title),
    h('p', { class: 'meta' }, t('handbook.published', { date: day(doc.published_at) })),
    h('div', { class: 'body', lang: doc.language, dir: 'auto' }, String(doc.body).split(/\n\s*\n/).map((p) => h('p', {}, p))),
    links.length ? h('section', {}, h('h2', {}, t('article.attachments')), h('ul', { class: 'plain' }, links)) : null);
}

let shownUrl = null; // the object URL of the file on screen, released when another is opened

/** #/file/<article _id>?name=<attachment>: the file shown inside the app from the local copy (works offline). */
export async function renderFile(params) {
  const doc = await db.article(params.id);
  const att = (doc._attachments || {})[params.name];
  const back = h('a', { class: 'back', href: `#/article/${encodeURIComponent(doc._id)}` }, t('nav.back'));
  if (!att) return h('section', { class: 'file' }, back, h('p', { class: 'warning' }, t('article.file_missing')));
  if (shownUrl) URL.revokeObjectURL(shownUrl);
  shownUrl = await db.attachmentUrl(doc._id, params.name);
  return h('section', { class: 'file' }, back,
    h('h1', { dir: 'auto' }, params.name),
    h('iframe', { id: 'file-view', class: 'file-view', src: shownUrl, title: params.name }),
    // where the browser shows no PDF inside a page (some phones), its own viewer, in a new tab: still no download
    h('a', { class: 'button secondary', id: 'file-tab', href: shownUrl, target: '_blank', rel: 'noopener' }, t('article.open_tab')));
}
