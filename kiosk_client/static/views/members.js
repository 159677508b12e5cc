// The cell's members, for its kiosk admin on the kiosk screen (#/members): the register by
// name, add one or import the commune's register (CSV), give or reset a PIN (shown once, with
// the member present; it also lifts a lockout), mark moved or inactive, name the secretary.
// The kiosk enforces the same rules whatever this screen does (sync_server/handbook/members.py).
import * as db from '../db.js';
import { t } from '../i18n.js';
import { h } from '../ui.js';

// A PIN just given: on screen until the admin hides it or leaves the screen (a language switch keeps it).
let shownPin = null; // {member_no, account, pin}
window.addEventListener('hashchange', () => { if (!location.hash.startsWith('#/members')) shownPin = null; });

function statusText(status) {
  return { active: t('members.active'), moved: t('members.moved'), inactive: t('members.inactive') }[status] || status;
}

function errorText(error) {
  if (error.status === 401) return t('sync.sign_in_again');
  if (error.status === 403) return t('members.refused', { reason: error.reason });
  if (!error.status) return t('pair.unreachable');
  return t('members.refused', { reason: error.reason });
}

export async function render(params, ctx) {
  const back = h('a', { class: 'back', href: '#/sync' }, t('nav.back'));
  if (!ctx.who.kioskAdmin) {
    return h('section', {}, back, h('h1', {}, t('members.title')), h('p', { class: 'warning' }, t('members.admin_only')));
  }
  const message = h('p', { class: 'message', role: 'status', id: 'members-message', dir: 'auto' });
  const list = h('ul', { class: 'cards', id: 'members' });
  const heading = h('p', { class: 'meta', id: 'members-cell' });

  const refresh = async () => {
    let data;
    try { data = await db.members(); } catch (error) { message.textContent = errorText(error); return; }
    heading.textContent = t('members.cell', { cell: data.cell, n: data.members.length });
    list.replaceChildren(...(data.members.length ? data.members.map(row) : [h('li', { class: 'empty' }, t('members.none'))]));
  };
  const act = async (call, done) => {
    message.textContent = '';
    try {
      const result = await call();
      message.textContent = done(result);
    } catch (error) {
      message.textContent = errorText(error);
    }
    await refresh();
  };

  const row = (m) => {
    const actions = h('div', { class: 'actions' });
    const ask = (question, yes, call, done) => actions.replaceChildren(
      h('p', { class: 'warning' }, question),
      h('button', { class: 'button primary confirm-yes', onclick: () => act(call, done) }, yes),
      h('button', { class: 'button secondary confirm-no', onclick: () => actions.replaceChildren(...buttons()) },
        t('pair.cancel')));
    const showPin = (given) => {
      shownPin = { member_no: m.member_no, account: given.account, pin: given.pin };
      return t('members.pin_given', { name: m.name });
    };
    const buttons = () => (m.status === 'active' ? [
      h('button', { class: 'button primary give-pin', onclick: m.has_pin
        ? () => ask(t('members.new_pin_confirm', { name: m.name }), t('members.new_pin'), () => db.givePin(m.member_no), showPin)
        : () => act(() => db.givePin(m.member_no), showPin) }, m.has_pin ? t('members.new_pin') : t('members.give_pin')),
      m.has_pin && !m.secretary ? h('button', { class: 'button secondary make-secretary', onclick: () => ask(
        t('members.secretary_confirm', { name: m.name }), t('members.make_secretary'), () => db.nameSecretary(m.member_no),
        () => t('members.secretary_named', { name: m.name })) }, t('members.make_secretary')) : null,
      h('button', { class: 'button secondary mark-moved', onclick: () => ask(t('members.leave_confirm', { name: m.name }),
        t('members.mark_moved'), () => db.setMemberStatus(m.member_no, 'moved'),
        () => t('members.status_set', { name: m.name, status: statusText('moved') })) }, t('members.mark_moved')),
      h('button', { class: 'button secondary mark-inactive', onclick: () => ask(t('members.leave_confirm', { name: m.name }),
        t('members.mark_inactive'), () => db.setMemberStatus(m.member_no, 'inactive'),
        () => t('members.status_set', { name: m.name, status: statusText('inactive') })) }, t('members.mark_inactive')),
    ] : [h('button', { class: 'button secondary mark-active', onclick: () => act(
      () => db.setMemberStatus(m.member_no, 'active'),
      () => t('members.status_set', { name: m.name, status: statusText('active') })) }, t('members.mark_active'))]);
    actions.append(...buttons().filter(Boolean));
    const facts = [t('members.number', { no: m.member_no }), statusText(m.status)];
    if (m.secretary) facts.push(t('members.secretary'));
    if (m.status === 'active') facts.push(m.has_pin ? t('members.has_pin') : t('members.no_pin'));
    const pin = shownPin && shownPin.member_no === m.member_no ? h('div', { class: 'pin-once', id: 'pin-once' },
      h('p', {}, t('members.pin_for', { account: shownPin.account })),
      h('p', { class: 'pair-code pin-code', id: 'pin-shown', dir: 'ltr' }, shownPin.pin),
      h('p', { class: 'meta' }, t('members.pin_once')),
      h('button', { class: 'button secondary pin-hide', onclick: () => { shownPin = null; refresh(); } },
        t('members.pin_hide'))) : null;
    return h('li', { class: 'card', dataset: { member: m.member_no, status: m.status } },
      h('strong', { class: 'title', dir: 'auto' }, m.name),
      h('span', { class: 'meta facts' }, ...facts.map((fact) => h('span', { class: 'fact' }, fact))),
      m.locked_seconds ? h('p', { class: 'warning locked' }, t('members.locked', { seconds: m.locked_seconds })) : null,
      pin, actions);
  };

  // add one member
  const number = h('input', { id: 'new-number', class: 'field', inputmode: 'numeric', maxlength: '32', dir: 'ltr' });
  const name = h('input', { id: 'new-name', class: 'field', maxlength: '200', dir: 'auto' });
  const born = h('input', { id: 'new-born', class: 'field', inputmode: 'numeric', maxlength: '4', dir: 'ltr' });
  const phone = h('select', { id: 'new-smartphone', class: 'field' },
    h('option', { value: 'no' }, t('members.no')), h('option', { value: 'yes' }, t('members.yes')));
  const addForm = h('form', { class: 'member-add', novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    if (!number.value.trim() || !name.value.trim()) { message.textContent = t('members.fill_in'); return; }
    const fields = { member_no: number.value.trim(), name: name.value.trim(), smartphone: phone.value === 'yes' };
    if (/^\d{4}$/.test(born.value.trim())) fields.born = Number(born.value.trim());
    await act(() => db.addMember(fields), (done) => {
      number.value = ''; name.value = ''; born.value = '';
      return t('members.added', { name: done.member.name, no: done.member.member_no });
    });
  } },
  h('h2', {}, t('members.add')),
  h('label', { for: 'new-number' }, t('signin.number')), number,
  h('label', { for: 'new-name' }, t('members.name')), name,
  h('label', { for: 'new-born' }, t('members.born')), born,
  h('label', { for: 'new-smartphone' }, t('members.smartphone')), phone,
  h('button', { class: 'button primary', type: 'submit', id: 'member-add' }, t('members.add_button')));

  // import the register
  const file = h('input', { id: 'register-file', class: 'field', type: 'file', accept: ['.csv', 'text/csv'].join(',') });
  const importing = h('div', { class: 'member-import' },
    h('h2', {}, t('members.import')),
    h('p', { class: 'meta' }, t('members.import_hint')),
    h('label', { for: 'register-file' }, t('members.import_file')), file,
    h('button', { class: 'button primary', type: 'button', id: 'register-import', onclick: async () => {
      const chosen = file.files && file.files[0];
      if (!chosen) { message.textContent = t('members.import_choose'); return; }
      const text = await chosen.text();
      await act(() => db.importRegister(text), (done) => {
        file.value = '';
        return t('members.imported', { added: done.added, updated: done.updated });
      });
    } }, t('members.import_button')));

  const section = h('section', { class: 'members' }, back, h('h1', {}, t('members.title')), heading, message, list,
    addForm, importing);
  await refresh();
  return section;
}
