// Sign in with the member code and PIN (the kiosk's CouchDB session, a cookie).
// The kiosk knows its own cell (GET /_app/kiosk.json): the cell part of the code is then
// fixed on the form and the member types only their number.
import * as db from '../db.js';
import { t } from '../i18n.js';
import { h } from '../ui.js';

/**
 * The member code field of the sign-in and pairing forms. With the kiosk's cell known it shows the
 * cell code as a fixed prefix and asks for the member number only (numeric keyboard); a link for another cell
 * switches to the full code. A value with a dot in it is taken as a full code either way.
 */
export function memberCode(id, kiosk) {
  const cell = kiosk && kiosk.cell ? kiosk.cell : null;
  let fixed = Boolean(cell);
  const input = h('input', { id, class: 'field', autocomplete: 'username', autocapitalize: 'characters',
                             spellcheck: 'false' });
  const label = h('label', { for: id });
  const prefix = h('span', { class: 'cell-prefix', id: `${id}-cell` }, cell ? `${cell}.` : '');
  const hint = h('p', { class: 'meta', id: `${id}-hint` });
  const toggle = h('button', { type: 'button', class: 'text-button', id: `${id}-other`, hidden: !cell, onclick: () => {
    const typed = input.value.trim();
    if (fixed && typed && !typed.includes('.')) input.value = `${cell}.${typed}`;
    if (!fixed && typed.startsWith(`${cell}.`)) input.value = typed.slice(cell.length + 1);
    fixed = !fixed;
    paint();
    input.focus();
  } });
  const paint = () => {
    label.textContent = t(fixed ? 'signin.number' : 'signin.member');
    hint.textContent = t(fixed ? 'signin.number_hint' : 'signin.member_hint');
    prefix.hidden = !fixed;
    if (fixed) input.setAttribute('inputmode', 'numeric'); else input.removeAttribute('inputmode');
    input.setAttribute('aria-describedby', fixed ? `${id}-cell ${id}-hint` : `${id}-hint`);
    if (cell) toggle.textContent = fixed ? t('signin.other_cell') : t('signin.this_cell', { cell });
  };
  paint();
  return {
    elements: [label, h('div', { class: 'member-row', dir: 'ltr' }, prefix, input), hint, toggle],
    /** The account name: the kiosk's cell and the number typed, or the full code typed. */
    value() {
      const typed = input.value.trim();
      if (!fixed || !typed || typed.includes('.')) return typed;
      // the cell's records write numbers with 4 digits at least: "3" is member 0003
      const number = /^\d{1,3}$/.test(typed) ? typed.padStart(4, '0') : typed;
      return `${cell}.${number}`;
    },
    /** Fill in an account name (the demo buttons): only its number when it is of the kiosk's cell. */
    set(name) { input.value = fixed && name.startsWith(`${cell}.`) ? name.slice(cell.length + 1) : name; },
  };
}

/**
 * What a refused sign-in says: a lockout as a lockout, with how long (the kiosk's reason names the
 * seconds), and where a forgotten PIN is mended.
 */
export function refusal(error) {
  if (error.status !== 401) return [t('signin.unreachable')];
  const locked = /locked\D*(\d+)/.exec(error.reason || '');
  return [
    h('span', { class: 'refusal' }, !locked ? t('signin.wrong') : Number(locked[1]) < 120
      ? t('signin.locked_seconds', { seconds: locked[1] })
      : t('signin.locked_minutes', { minutes: Math.ceil(Number(locked[1]) / 60) })),
    h('span', { class: 'forgot', id: 'forgot-pin' }, t('signin.forgot')),
  ];
}

export async function render(params, ctx) {
  const [sample, kiosk] = await Promise.all([db.sampleAccounts(), db.kioskInfo()]);
  const member = memberCode('member', kiosk);
  const pin = h('input', { id: 'pin', class: 'field', type: 'password', inputmode: 'numeric', autocomplete: 'current-password',
                           pattern: '[0-9]*', maxlength: '8' });
  const message = h('p', { class: 'message', role: 'alert' });
  // A member's own phone may keep the sign-in (a device token, as pairing gives); the kiosk's shared
  // screen never offers it (and the kiosk refuses it from there).
  const keep = ctx.shared ? null : h('input', { id: 'remember', type: 'checkbox', 'aria-describedby': 'remember-hint' });
  const form = h('form', { class: 'signin', onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = '';
    try {
      const who = await db.signIn(member.value(), pin.value,
        { remember: Boolean(keep && keep.checked), label: t('pair.label_default') });
      ctx.signedIn(who);
    } catch (error) {
      pin.value = '';
      message.replaceChildren(...(error.status === 403 ? [t('signin.remember_refused')] : refusal(error)));
    }
  } },
  ...member.elements,
  h('label', { for: 'pin' }, t('signin.pin')), pin,
  keep ? h('label', { class: 'check-row', for: 'remember' }, keep, h('span', {}, t('signin.remember'))) : null,
  keep ? h('p', { class: 'meta', id: 'remember-hint' }, t('signin.remember_hint')) : null,
  h('button', { class: 'button primary', type: 'submit', id: 'signin-submit' }, t('signin.button')),
  message);
  const demo = sample ? h('div', { class: 'card' }, h('p', {}, t('signin.sample')),
    [['member', sample.member], ['secretary', sample.secretary], ['kiosk_admin', sample.kiosk_admin]]
      .filter(([, account]) => account).map(([role, account]) => h('button', {
      class: 'button secondary', type: 'button', dataset: { demo: role },
      onclick: () => { member.set(account.name); pin.value = account.pin; } },
    t(`signin.demo_${role}`, { name: account.name, pin: account.pin })))) : null;
  const pairing = h('div', { class: 'card' }, h('p', {}, t('pair.with_code')),
    h('a', { class: 'button secondary', id: 'pair-link', href: '#/pair-phone' }, t('pair.phone_title')));
  const note = ctx.takeSignedOutNote();
  const left = note ? h('p', { class: 'warning', id: 'signed-out-note', role: 'status' },
    t(note.kind === 'checkin' ? 'signin.out_after_checkin' : 'signin.out_idle', { name: note.name })) : null;
  return h('section', {}, left, h('h1', {}, t('signin.title')), form, pairing, demo);
}
