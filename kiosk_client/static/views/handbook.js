// The handbook: categories, search within the handbook, the list of articles.
import * as db from '../db.js';
import { t, day } from '../i18n.js';
import { h, fold } from '../ui.js';

export const CATEGORIES = ['resolution', 'directive', 'charter', 'study', 'training', 'news'];

export async function render(params, ctx) {
  const all = await db.articles();
  let category = params.c || '';
  const list = h('ul', { class: 'cards', id: 'articles' });
  const search = h('input', { type: 'search', id: 'search', class: 'field', placeholder: t('handbook.search'),
                              'aria-label': t('handbook.search'), value: params.q || '' });

  const show = () => {
    const words = fold(search.value).split(/\s+/).filter(Boolean);
    const found = all.filter((a) => (!category || a.category === category)
      && words.every((w) => fold(`${a.title} ${a.summary || ''} ${a.body}`).includes(w)));
    list.replaceChildren(...found.map((a) => h('li', {},
      h('a', { class: 'card link', href: `#/article/${encodeURIComponent(a._id)}` },
        h('span', { class: 'tag' }, t(`category.${a.category}`)),
        h('strong', { class: 'title', dir: 'auto' }, a.title),
        a.summary ? h('span', { class: 'summary', dir: 'auto' }, a.summary) : null,
        h('span', { class: 'meta' }, t('handbook.published', { date: day(a.published_at) }))))));
    if (!found.length) list.append(h('li', { class: 'empty' }, all.length ? t('handbook.none_found') : t('handbook.empty')));
  };
  search.addEventListener('input', show);

  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': t('handbook.categories') },
    ['', ...CATEGORIES.filter((c) => all.some((a) => a.category === c))].map((c) => h('button', {
      class: 'chip', 'aria-pressed': String(c === category), dataset: { category: c },
      onclick: (event) => {
        category = c;
        chips.querySelectorAll('.chip').forEach((b) => b.setAttribute('aria-pressed', String(b === event.currentTarget)));
        show();
      },
    }, c ? t(`category.${c}`) : t('category.all'))));
  show();
  return h('section', {}, h('h1', {}, t('handbook.title')), search, chips, list);
}
