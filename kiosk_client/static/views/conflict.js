// A conflict (e.g. minutes edited on two devices while offline): both versions side by
// side; the secretary keeps one or merges them. Nothing is dropped without being shown.
import * as db from '../db.js';
import { t, when } from '../i18n.js';
import { h } from '../ui.js';

const LETTERS = ['A', 'B', 'C', 'D', 'E', 'F'];

export async function render(params, ctx) {
  const versions = await db.versions(params.id);
  const done = async (chosen) => { await db.resolve(params.id, chosen); ctx.go('#/sync'); };
  const merged = h('textarea', { id: 'merged-text', class: 'field', rows: 8, 'aria-label': t('conflict.merged') });
  merged.value = [...new Set(versions.map((v) => v.text || ''))].join('\n\n');
  const columns = versions.map((v, i) => h('div', { class: 'version', dataset: { rev: v._rev } },
    h('h2', {}, t('conflict.version', { letter: LETTERS[i] || String(i + 1) })),
    v.written_at ? h('p', { class: 'meta' }, when(v.written_at)) : null,
    h('div', { class: 'minutes-text', dir: 'auto' }, v.text || ''),
    v.decisions && v.decisions.length ? h('ul', {}, v.decisions.map((d) => h('li', { dir: 'auto' }, d))) : null,
    h('button', { class: 'button primary keep', onclick: () => done(v) }, t('conflict.keep'))));
  return h('section', {},
    h('a', { class: 'back', href: '#/sync' }, t('nav.back')),
    h('h1', {}, t('conflict.title')),
    h('p', {}, t('conflict.explain')),
    h('div', { class: 'side-by-side' }, columns),
    h('h2', {}, t('conflict.merge')),
    merged,
    h('button', { class: 'button primary', id: 'merge-save', onclick: () => {
      const decisions = [...new Set(versions.flatMap((v) => v.decisions || []))];
      done(Object.assign({}, versions[0], { text: merged.value.trim() || versions[0].text, decisions }));
    } }, t('conflict.save_merged')));
}
