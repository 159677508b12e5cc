// Feedback from members about the software, the content or training.
import * as db from '../db.js';
import { t } from '../i18n.js';
import { h, nowWithOffset } from '../ui.js';

const ABOUT = ['software', 'content', 'training', 'other'];

export async function render(params, ctx) {
  let about = 'software';
  let rating = null;
  const choose = (group, attr) => (event) => {
    group.querySelectorAll('button').forEach((b) => b.setAttribute('aria-pressed', String(b === event.currentTarget)));
    return event.currentTarget.dataset[attr];
  };
  const aboutGroup = h('div', { class: 'chips', role: 'group', 'aria-label': t('feedback.about') });
  aboutGroup.append(...ABOUT.map((a) => h('button', { class: 'chip', 'aria-pressed': String(a === about),
    dataset: { about: a }, onclick: (e) => { about = choose(aboutGroup, 'about')(e); } }, t(`feedback.about.${a}`))));
  const ratingGroup = h('div', { class: 'chips', role: 'group', 'aria-label': t('feedback.rating') });
  ratingGroup.append(...[1, 2, 3, 4, 5].map((n) => h('button', { class: 'chip star', 'aria-pressed': 'false',
    'aria-label': t('feedback.stars', { n }), dataset: { rating: n },
    onclick: (e) => { rating = Number(choose(ratingGroup, 'rating')(e)); } }, String(n))));
  const text = h('textarea', { id: 'feedback-text', class: 'field', rows: 5, 'aria-label': t('feedback.text') });
  const message = h('p', { class: 'message', role: 'status' });
  const send = h('button', { class: 'button primary', id: 'feedback-send', onclick: async () => {
    if (!text.value.trim()) { message.textContent = t('feedback.text_needed'); return; }
    const doc = { _id: `feedback:${ctx.who.cell}:${db.newId()}`, type: 'feedback', cell: ctx.who.cell, about,
                  text: text.value.trim(), created_at: nowWithOffset() };
    if (ctx.who.memberId) doc.member = ctx.who.memberId;
    if (rating) doc.rating = rating;
    await db.save(doc);
    text.value = '';
    message.textContent = t('feedback.waiting'); // kept on this device; thanks only once it is at the kiosk
    if (await db.whenUp(doc._id, 60000) && message.isConnected) message.textContent = t('feedback.thanks');
  } }, t('feedback.send'));
  return h('section', {}, h('h1', {}, t('feedback.title')),
    h('p', {}, t('feedback.intro')),
    h('h2', {}, t('feedback.about')), aboutGroup,
    h('label', { for: 'feedback-text' }, t('feedback.text')), text,
    h('h2', {}, t('feedback.rating')), ratingGroup,
    send, message);
}
