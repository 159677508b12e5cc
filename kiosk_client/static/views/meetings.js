// The cell's meeting schedule and check-in (one attendance document per member and meeting).
// The cell's secretary also schedules meetings and edits them (date, time, place, kind, status).
import * as db from '../db.js';
import { t, when } from '../i18n.js';
import { h, nowWithOffset, localParts, fromParts } from '../ui.js';

const KINDS = ['regular', 'thematic', 'extraordinary'];
const STATUSES = ['scheduled', 'held', 'cancelled'];

/** The secretary of a cell writes its schedule (sync_server/handbook/ownership.py refuses anyone else's meeting). */
function schedules(who) { return Boolean(who && who.secretary && who.cell); }

// Where check-in to a meeting stands now ({state, opens, closes}): state is before, open or after.
export function checkinState(meeting, now = Date.now()) {
  const window = db.checkinWindow();
  const at = Date.parse(meeting.scheduled);
  const opens = at - window.opens * 60000;
  const closes = at + window.closes * 60000;
  return { state: now < opens ? 'before' : now > closes ? 'after' : 'open', opens, closes };
}

const checkedIn = (record) => Boolean(record && record.status === 'present' && record.checked_in_at);

/** The member's part of a meeting card: their check-in, its undo, or when check-in opens. */
async function memberPart(m, mine, who, memberNo, ctx) {
  if (m.status === 'cancelled') return [];
  const waiting = mine ? await db.waitingToGoUp(mine._id) : false;
  const { state, opens, closes } = checkinState(m);
  const parts = [];
  // a change says it is done only once it is at the kiosk; until then, that it waits to go up
  if (mine && waiting) parts.push(h('p', { class: 'waiting' }, t('meeting.waiting')));
  if (checkedIn(mine) && !waiting) parts.push(h('p', { class: 'done' }, t('meeting.checked_in', { time: when(mine.checked_in_at) })));
  if (mine && mine.status === 'present' && !mine.checked_in_at && !waiting) parts.push(h('p', { class: 'done' }, t('meeting.marked_present')));
  if (mine && mine.withdrawn_at && mine.status === 'absent' && !waiting) parts.push(h('p', { class: 'undone' }, t('meeting.undone')));
  const write = (fields) => async (event) => {
    event.currentTarget.disabled = true;
    const doc = Object.assign({}, mine || {}, { _id: `attendance:${m._id}:${memberNo}`, type: 'attendance', cell: who.cell,
      meeting: m._id, member: who.memberId }, fields);
    if (fields.status === 'present') { delete doc.withdrawn_at; delete doc.marked_by; delete doc.marked_at; }
    delete doc._conflicts;
    await db.save(doc);
    ctx.rerender();
    if (fields.status === 'present') ctx.checkedIn(doc._id); // on the kiosk's shared screen: signed out once it is up
  };
  if (!checkedIn(mine) && state === 'open' && !(mine && mine.status === 'present')) {
    parts.push(h('button', { class: 'button primary checkin',
      onclick: write({ status: 'present', checked_in_at: nowWithOffset(), scheduled: m.scheduled }) }, t('meeting.check_in')));
  }
  if (!checkedIn(mine) && state === 'before') parts.push(h('p', { class: 'checkin-closed' }, t('meeting.opens_at', { time: when(opens) })));
  if (!checkedIn(mine) && state === 'after' && m.status !== 'held') {
    parts.push(h('p', { class: 'checkin-closed' }, t('meeting.closed_at', { time: when(closes) })));
  }
  // the member undoes their own check-in the day they made it (the kiosk refuses it later)
  if (checkedIn(mine) && nowWithOffset().slice(0, 10) === mine.checked_in_at.slice(0, 10)) {
    parts.push(h('button', { class: 'button secondary undo', onclick: write({ status: 'absent', withdrawn_at: nowWithOffset() }) },
      t('meeting.undo')));
  }
  return parts;
}

export async function render(params, ctx) {
  const who = ctx.who;
  const memberNo = who.memberId ? who.memberId.split(':')[2] : null;
  const secretary = schedules(who);
  const meetings = await db.meetings();
  const cards = await Promise.all(meetings.map(async (m) => {
    const mine = memberNo ? await db.attendanceOf(m._id, memberNo) : null;
    return h('li', { class: 'card', dataset: { meeting: m._id } },
      h('span', { class: `tag status-${m.status}` }, t(`meeting.status.${m.status}`)),
      h('strong', { class: 'title' }, t(`meeting.kind.${m.kind}`)),
      h('span', { class: 'when' }, when(m.scheduled)),
      m.place ? h('span', { class: 'place', dir: 'auto' }, t('meeting.place', { place: m.place })) : null,
      m.agenda && m.agenda.length ? h('ol', { class: 'agenda' }, m.agenda.map((a) => h('li', { dir: 'auto' }, a))) : null,
      memberNo ? await memberPart(m, mine, who, memberNo, ctx) : null,
      secretary && m.status !== 'cancelled' ? h('a', { class: 'button secondary who-came',
        href: `#/attendance/${encodeURIComponent(m._id)}` }, t('attendance.open')) : null,
      secretary ? h('a', { class: 'button secondary edit', href: `#/meeting-edit/${encodeURIComponent(m._id)}` },
        t('meeting.edit')) : null);
  }));
  return h('section', {}, h('h1', {}, t('meeting.title')),
    secretary ? h('a', { class: 'button primary', id: 'meeting-new', href: '#/meeting-edit' }, t('meeting.new')) : null,
    h('ul', { class: 'cards' }, cards.length ? cards : h('li', { class: 'empty' }, t('meeting.none'))));
}

/** Present and active members of a meeting ({present, members}): the count the minutes take. */
export async function attendanceCount(meetingId) {
  const [members, records] = await Promise.all([db.activeMembers(), db.attendanceOfMeeting(meetingId)]);
  return { present: records.filter((r) => r.status === 'present').length, members: members.length };
}

/** #/attendance/<meeting _id>: the secretary's list of who came, marking those without a phone. */
export async function renderAttendance(params, ctx) {
  const back = h('a', { class: 'back', href: '#/meetings' }, t('nav.back'));
  const who = ctx.who;
  if (!schedules(who)) {
    return h('section', {}, back, h('h1', {}, t('attendance.title')), h('p', { class: 'warning' }, t('meeting.secretary_only')));
  }
  const m = await db.meeting(params.id);
  if (!m) return h('section', {}, back, h('h1', {}, t('attendance.title')), h('p', { class: 'warning' }, t('meeting.missing')));
  const [members, records] = await Promise.all([db.activeMembers(), db.attendanceOfMeeting(m._id)]);
  const byMember = new Map(records.map((r) => [r.member, r]));
  const rows = await Promise.all(members.map(async (member) => {
    const record = byMember.get(member._id) || null;
    const present = Boolean(record && record.status === 'present');
    const waiting = record ? await db.waitingToGoUp(record._id) : false;
    const how = !present ? t('attendance.absent') : record.checked_in_at
      ? t('attendance.checked_in', { time: when(record.checked_in_at) }) : t('attendance.marked');
    const mark = async (event) => {
      event.currentTarget.disabled = true;
      const doc = Object.assign({}, record || {}, { _id: `attendance:${m._id}:${member.member_no}`, type: 'attendance',
        cell: who.cell, meeting: m._id, member: member._id, status: present ? 'absent' : 'present',
        marked_at: nowWithOffset() });
      if (who.memberId) doc.marked_by = who.memberId;
      delete doc._conflicts;
      await db.save(doc);
      ctx.rerender();
    };
    return h('li', { class: `card attendee ${present ? 'present' : 'absent'}`, dataset: { member: member.member_no } },
      h('strong', { class: 'title', dir: 'auto' }, member.name),
      h('span', { class: 'meta' }, member.member_no),
      h('p', { class: present ? 'done' : 'meta' }, how),
      waiting ? h('p', { class: 'waiting' }, t('meeting.waiting')) : null,
      h('button', { class: `button ${present ? 'secondary' : 'primary'} mark`, onclick: mark },
        present ? t('attendance.mark_absent') : t('attendance.mark_present')));
  }));
  const count = members.filter((member) => (byMember.get(member._id) || {}).status === 'present').length;
  return h('section', {}, back, h('h1', {}, t('attendance.title')),
    h('p', { class: 'when' }, t(`meeting.kind.${m.kind}`), h('br'), when(m.scheduled)),
    h('p', { id: 'attendance-count', class: 'count' }, t('attendance.count', { present: count, members: members.length })),
    h('ul', { class: 'cards', id: 'attendees' }, rows));
}

/** A row of big buttons of which one is chosen (aria-pressed), as on the feedback screen. */
function choice(id, label, values, chosen, text) {
  let value = chosen;
  const group = h('div', { class: 'chips', role: 'group', id, 'aria-labelledby': `${id}-label` });
  group.append(...values.map((v) => h('button', { type: 'button', class: 'chip', 'aria-pressed': String(v === value),
    dataset: { value: v }, onclick: (event) => {
      value = v;
      group.querySelectorAll('button').forEach((b) => b.setAttribute('aria-pressed', String(b === event.currentTarget)));
    } }, text(v))));
  return { label: h('h2', { id: `${id}-label` }, label), group, get value() { return value; } };
}

/** #/meeting-edit (a new meeting) and #/meeting-edit/<meeting _id>: the secretary's form. */
export async function renderEdit(params, ctx) {
  const back = h('a', { class: 'back', href: '#/meetings' }, t('nav.back'));
  const who = ctx.who;
  if (!schedules(who)) {
    return h('section', {}, back, h('h1', {}, t('meeting.title')), h('p', { class: 'warning' }, t('meeting.secretary_only')));
  }
  const existing = params.id ? await db.meeting(params.id) : null;
  if (params.id && !existing) {
    return h('section', {}, back, h('h1', {}, t('meeting.edit')), h('p', { class: 'warning' }, t('meeting.missing')));
  }
  // a new meeting is most often at the same place as the last one
  const last = existing ? null : (await db.meetings()).find((m) => m.place);
  const parts = localParts(existing && existing.scheduled);
  const date = h('input', { id: 'meeting-date', class: 'field', type: 'date', required: true, value: parts.date });
  const time = h('input', { id: 'meeting-time', class: 'field', type: 'time', required: true, value: parts.time });
  const place = h('input', { id: 'meeting-place', class: 'field', maxlength: '300', dir: 'auto',
                             value: existing ? existing.place || '' : last ? last.place : '' });
  const kind = choice('meeting-kind', t('meeting.kind_label'), KINDS, existing ? existing.kind : 'regular',
    (k) => t(`meeting.kind.${k}`));
  const status = choice('meeting-status', t('meeting.status_label'), STATUSES, existing ? existing.status : 'scheduled',
    (s) => t(`meeting.status.${s}`));
  const message = h('p', { class: 'message', role: 'alert', id: 'meeting-message' });
  [date, time].forEach((input) => input.addEventListener('input', () => { message.textContent = ''; }));
  const save = h('button', { class: 'button primary', type: 'submit', id: 'meeting-save' }, t('meeting.save'));
  const form = h('form', { class: 'meeting-edit', novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = '';
    const scheduled = fromParts(date.value, time.value);
    if (!scheduled) { message.textContent = t('meeting.when_needed'); (date.value ? time : date).focus(); return; }
    const doc = Object.assign({}, existing || {}, {
      _id: existing ? existing._id : `meeting:${who.cell}:${db.newId()}`, type: 'meeting', cell: who.cell,
      kind: kind.value, scheduled, status: status.value,
    });
    const where = place.value.trim().slice(0, 300);
    if (where) doc.place = where; else delete doc.place;
    delete doc._conflicts;
    save.disabled = true;
    try {
      await db.save(doc);
      ctx.go('#/meetings');
    } catch (error) {
      save.disabled = false;
      message.textContent = t('meeting.not_saved');
    }
  } },
  h('label', { for: 'meeting-date' }, t('meeting.date')), date,
  h('label', { for: 'meeting-time' }, t('meeting.time')), time,
  h('label', { for: 'meeting-place' }, t('meeting.place_label')), place,
  kind.label, kind.group,
  status.label, status.group,
  save, message);
  return h('section', {}, back, h('h1', {}, existing ? t('meeting.edit') : t('meeting.new')), form);
}
