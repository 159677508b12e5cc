// Sign in with the member code and PIN (the kiosk's CouchDB session, a cookie).
import * as db from '../db.js';
import { t } from '../i18n.js';
import { h } from '../ui.js';

export async function render(params, ctx) {
  const name = h('input', { id: 'member', class: 'field', autocomplete: 'username', autocapitalize: 'characters',
                            spellcheck: 'false', 'aria-describedby': 'member-hint' });
  const pin = h('input', { id: 'pin', class: 'field', type: 'password', inputmode: 'numeric', autocomplete: 'current-password',
                           pattern: '[0-9]*', maxlength: '8' });
  const message = h('p', { class: 'message', role: 'alert' });
  const sample = await db.sampleAccounts();
  const form = h('form', { class: 'signin', onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = '';
    try {
      const who = await db.signIn(name.value.trim(), pin.value);
      ctx.signedIn(who);
    } catch (error) {
      message.textContent = error.status === 401 ? t('signin.wrong') : t('signin.unreachable');
    }
  } },
  h('label', { for: 'member' }, t('signin.member')), name,
  h('p', { class: 'meta', id: 'member-hint' }, t('signin.member_hint')),
  h('label', { for: 'pin' }, t('signin.pin')), pin,
  h('button', { class: 'button primary', type: 'submit', id: 'signin-submit' }, t('signin.button')),
  message);
  const demo = sample ? h('div', { class: 'card' }, h('p', {}, t('signin.sample')),
    [['member', sample.member], ['secretary', sample.secretary], ['kiosk_admin', sample.kiosk_admin]]
      .filter(([, account]) => account).map(([role, account]) => h('button', {
      class: 'button secondary', type: 'button', dataset: { demo: role },
      onclick: () => { name.value = account.name; pin.value = account.pin; } },
    t(`signin.demo_${role}`, { name: account.name, pin: account.pin })))) : null;
  const pairing = h('div', { class: 'card' }, h('p', {}, t('pair.with_code')),
    h('a', { class: 'button secondary', id: 'pair-link', href: '#/pair-phone' }, t('pair.phone_title')));
  return h('section', {}, h('h1', {}, t('signin.title')), form, pairing, demo);
}
