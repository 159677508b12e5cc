// Minutes: every member reads them; the cell's secretary writes and edits them.
import * as db from '../db.js';
import { t, when } from '../i18n.js';
import { h, nowWithOffset } from '../ui.js';
import { attendanceCount } from './meetings.js';

export async function render(params, ctx) {
  const meetings = (await db.meetings()).filter((m) => m.status !== 'cancelled');
  const cards = await Promise.all(meetings.map(async (m) => {
    const minutes = await db.minutesOf(m._id);
    return h('li', { class: 'card', dataset: { meeting: m._id } },
      h('strong', { class: 'title' }, t(`meeting.kind.${m.kind}`)),
      h('span', { class: 'when' }, when(m.scheduled)),
      minutes && minutes.attendance ? h('p', { class: 'minutes-attendance' }, t('attendance.count', minutes.attendance)) : null,
      minutes ? h('div', { class: 'minutes-text', dir: 'auto' }, minutes.text) : h('p', { class: 'empty' }, t('minutes.none')),
      minutes && minutes.decisions && minutes.decisions.length
        ? h('div', {}, h('h3', {}, t('minutes.decisions')), h('ul', {}, minutes.decisions.map((d) => h('li', { dir: 'auto' }, d))))
        : null,
      ctx.who.secretary ? h('a', { class: 'button primary write', href: `#/minutes-edit/${encodeURIComponent(m._id)}` },
        minutes ? t('minutes.edit') : t('minutes.write')) : null);
  }));
  return h('section', {}, h('h1', {}, t('minutes.title')),
    h('ul', { class: 'cards' }, cards.length ? cards : h('li', { class: 'empty' }, t('meeting.none'))));
}

export async function renderEdit(params, ctx) {
  const meetingId = params.id;
  const existing = await db.minutesOf(meetingId);
  const text = h('textarea', { id: 'minutes-text', class: 'field', rows: 8, 'aria-label': t('minutes.text') });
  text.value = existing ? existing.text : '';
  const decisions = h('textarea', { id: 'minutes-decisions', class: 'field', rows: 4, 'aria-label': t('minutes.decisions') });
  decisions.value = existing && existing.decisions ? existing.decisions.join('\n') : '';
  const message = h('p', { class: 'message', role: 'status' });
  // the count comes from the attendance records (check-ins and the secretary's marks), never typed
  const count = await attendanceCount(meetingId);
  const save = h('button', { class: 'button primary', id: 'minutes-save', onclick: async () => {
    if (!text.value.trim()) { message.textContent = t('minutes.text_needed'); return; }
    const doc = Object.assign({}, existing || {}, {
      _id: `minutes:${meetingId}`, type: 'minutes', cell: ctx.who.cell, meeting: meetingId,
      text: text.value.trim(), decisions: decisions.value.split('\n').map((d) => d.trim()).filter(Boolean),
      attendance: await attendanceCount(meetingId), written_at: nowWithOffset(),
    });
    if (ctx.who.memberId) doc.secretary = ctx.who.memberId;
    delete doc._conflicts;
    await db.save(doc);
    ctx.go('#/minutes');
  } }, t('minutes.save'));
  return h('section', {},
    h('a', { class: 'back', href: '#/minutes' }, t('nav.back')),
    h('h1', {}, existing ? t('minutes.edit') : t('minutes.write')),
    h('p', { id: 'minutes-count', class: 'count' }, t('attendance.count', count), ' ',
      h('a', { class: 'button secondary who-came', href: `#/attendance/${encodeURIComponent(meetingId)}` }, t('attendance.open'))),
    h('label', { for: 'minutes-text' }, t('minutes.text')), text,
    h('label', { for: 'minutes-decisions' }, t('minutes.decisions_hint')), decisions,
    save, message);
}
