// The cell's meeting schedule and check-in (one attendance document per member and meeting).
import * as db from '../db.js';
import { t, when } from '../i18n.js';
import { h, nowWithOffset } from '../ui.js';

export async function render(params, ctx) {
  const who = ctx.who;
  const memberNo = who.memberId ? who.memberId.split(':')[2] : null;
  const meetings = await db.meetings();
  const cards = await Promise.all(meetings.map(async (m) => {
    const mine = memberNo ? await db.attendanceOf(m._id, memberNo) : null;
    const canCheckIn = memberNo && !mine && m.status !== 'cancelled';
    return h('li', { class: 'card', dataset: { meeting: m._id } },
      h('span', { class: `tag status-${m.status}` }, t(`meeting.status.${m.status}`)),
      h('strong', { class: 'title' }, t(`meeting.kind.${m.kind}`)),
      h('span', { class: 'when' }, when(m.scheduled)),
      m.place ? h('span', { class: 'place', dir: 'auto' }, t('meeting.place', { place: m.place })) : null,
      m.agenda && m.agenda.length ? h('ol', { class: 'agenda' }, m.agenda.map((a) => h('li', { dir: 'auto' }, a))) : null,
      mine ? h('p', { class: 'done' }, t('meeting.checked_in', { time: when(mine.checked_in_at) })) : null,
      canCheckIn ? h('button', { class: 'button primary checkin', onclick: async (event) => {
        event.currentTarget.disabled = true;
        await db.save({ _id: `attendance:${m._id}:${memberNo}`, type: 'attendance', cell: who.cell,
                        meeting: m._id, member: who.memberId, status: 'present', checked_in_at: nowWithOffset() });
        ctx.rerender();
      } }, t('meeting.check_in')) : null);
  }));
  return h('section', {}, h('h1', {}, t('meeting.title')),
    h('ul', { class: 'cards' }, cards.length ? cards : h('li', { class: 'empty' }, t('meeting.none'))));
}
