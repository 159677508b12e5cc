// Pairing a phone with the kiosk. On the kiosk screen (kiosk admin only): the QR code and the
// one-time code with the time left, and the paired devices, each revocable. On the phone
// (opened from the QR code, /_app/?pair=CODE): the member's code and PIN confirm the pairing.
import * as db from '../db.js';
import { t, day } from '../i18n.js';
import { h } from '../ui.js';
import { memberCode } from './signin.js';

const TICK_MS = 1000;
const DEVICES_EVERY = 5; // ticks between two looks at the device list (a phone just paired shows up)

function grouped(code) { return `${code.slice(0, 3)} ${code.slice(3)}`; }

function minutesSeconds(seconds) { return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`; }

/** The kiosk's screen: #/pair. */
export async function render(params, ctx) {
  const back = h('a', { class: 'back', href: '#/sync' }, t('nav.back'));
  if (!ctx.who.kioskAdmin) {
    return h('section', {}, back, h('h1', {}, t('pair.title')), h('p', { class: 'warning' }, t('pair.admin_only')));
  }
  const qr = h('img', { id: 'pair-qr', class: 'qr', alt: t('pair.qr_alt') });
  const code = h('p', { id: 'pair-code', class: 'pair-code', 'aria-label': t('pair.code') });
  const left = h('p', { id: 'pair-left', class: 'pair-left', role: 'timer' });
  const link = h('p', { id: 'pair-url', class: 'meta', dir: 'ltr' });
  const fingerprint = h('p', { id: 'pair-fingerprint', class: 'meta', dir: 'ltr' });
  const message = h('p', { id: 'pair-message', class: 'message', role: 'status' });
  const list = h('ul', { class: 'cards', id: 'devices' });
  const again = h('button', { class: 'button secondary', id: 'pair-new', onclick: () => newCode() }, t('pair.new_code'));
  let shown = null;
  let known = null; // ids of live devices already listed
  let ticks = 0;

  const paintCode = () => {
    const seconds = shown ? Math.max(0, Math.round(shown.expires - Date.now() / 1000)) : 0;
    const live = Boolean(shown) && seconds > 0;
    qr.hidden = !live;
    code.hidden = !live;
    left.textContent = !shown ? '' : live ? t('pair.time_left', { time: minutesSeconds(seconds) }) : t('pair.expired');
  };
  const newCode = async () => {
    try {
      shown = await db.pairingCode();
      qr.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(shown.qr_svg)}`;
      qr.dataset.url = shown.url;
      code.textContent = grouped(shown.code);
      code.dataset.code = shown.code;
      link.textContent = t('pair.or_open', { url: shown.url });
      fingerprint.textContent = shown.fingerprint ? t('pair.fingerprint', { fp: shown.fingerprint }) : '';
    } catch (error) {
      shown = null;
      message.textContent = t(error.status === 403 ? 'pair.admin_only'
        : error.status === 401 ? 'sync.sign_in_again' : 'pair.unreachable');
    }
    paintCode();
  };

  const row = (device) => {
    const actions = h('div', { class: 'actions' });
    const ask = () => actions.replaceChildren(
      h('p', { class: 'warning' }, t('pair.revoke_confirm', { label: device.label, member: device.member })),
      h('button', { class: 'button primary revoke-confirm', onclick: async () => {
        try {
          await db.revokeDevice(device.device_id);
          message.textContent = t('pair.revoked', { label: device.label });
        } catch (error) {
          message.textContent = t('pair.unreachable');
        }
        refreshDevices(true);
      } }, t('pair.revoke_yes')),
      h('button', { class: 'button secondary revoke-cancel', onclick: () => actions.replaceChildren(button()) },
        t('pair.cancel')));
    const button = () => h('button', { class: 'button secondary revoke', onclick: ask }, t('pair.revoke'));
    actions.append(button());
    return h('li', { class: 'card', dataset: { device: device.device_id } },
      h('strong', { class: 'title', dir: 'auto' }, device.label),
      h('span', { class: 'meta' }, t('pair.device_of', { member: device.member, date: day(device.paired_at * 1000) })),
      actions);
  };
  const refreshDevices = async (force = false) => {
    let devices;
    try { devices = (await db.pairedDevices()).filter((d) => !d.revoked_at); } catch (error) { return; }
    const fresh = known ? devices.filter((d) => !known.has(d.device_id)) : [];
    known = new Set(devices.map((d) => d.device_id));
    if (!force && list.querySelector('.revoke-confirm')) return; // not while the admin is asked to confirm
    list.replaceChildren(...(devices.length ? devices.map(row) : [h('li', { class: 'empty' }, t('pair.no_devices'))]));
    if (fresh.length) {
      // the code on screen was used: the next member gets a new one
      message.textContent = t('pair.paired_now', { label: fresh[0].label, member: fresh[0].member });
      newCode();
    }
  };

  const section = h('section', { class: 'pair' }, back,
    h('h1', {}, t('pair.title')),
    h('div', { class: 'pair-grid' },
      h('div', { class: 'qr-box' }, qr),
      h('div', {},
        h('p', {}, t('pair.scan')),
        code, left, again, link, fingerprint)),
    message,
    h('h2', {}, t('pair.devices')),
    list);
  await Promise.all([newCode(), refreshDevices()]);
  let seen = false;
  const timer = setInterval(() => {
    ticks += 1;
    if (section.isConnected) seen = true;
    else if (seen || ticks > DEVICES_EVERY) { clearInterval(timer); return; } // the admin left the screen
    paintCode();
    if (ticks % DEVICES_EVERY === 0) refreshDevices();
  }, TICK_MS);
  return section;
}

/** The phone: #/pair-phone, opened from the QR code with the code filled in. */
export async function renderPhone(params, ctx) {
  const pending = ctx.pairing || {};
  const code = h('input', { id: 'pair-code-input', class: 'field pair-code-input', inputmode: 'numeric',
                            autocomplete: 'one-time-code', maxlength: '7', value: pending.code || '' });
  const name = memberCode('pair-member', await db.kioskInfo());
  const pin = h('input', { id: 'pair-pin', class: 'field', type: 'password', inputmode: 'numeric',
                           autocomplete: 'current-password', pattern: '[0-9]*', maxlength: '8' });
  const label = h('input', { id: 'pair-label', class: 'field', maxlength: '100', value: t('pair.label_default') });
  const message = h('p', { class: 'message', role: 'alert', id: 'pair-message' });
  const submit = h('button', { class: 'button primary', type: 'submit', id: 'pair-submit' }, t('pair.button'));
  const form = h('form', { class: 'pair-phone', onsubmit: async (event) => {
    event.preventDefault();
    message.textContent = '';
    const digits = code.value.replace(/\D/g, '');
    if (!digits || !name.value() || !pin.value) { message.textContent = t('pair.fill_in'); return; }
    submit.disabled = true;
    try {
      const who = await db.pair(digits, name.value(), pin.value, label.value.trim() || t('pair.label_default'));
      ctx.paired(who);
    } catch (error) {
      submit.disabled = false;
      pin.value = '';
      message.textContent = t({ pin: 'pair.wrong_pin', locked: 'pair.locked', code: 'pair.code_bad' }[error.kind]
        || (error.status ? 'pair.failed' : 'pair.unreachable'));
    }
  } },
  h('label', { for: 'pair-code-input' }, t('pair.code')), code,
  ...name.elements,
  h('label', { for: 'pair-pin' }, t('signin.pin')), pin,
  h('label', { for: 'pair-label' }, t('pair.label')), label,
  submit, message,
  pending.fp ? h('p', { class: 'meta', dir: 'ltr' }, t('pair.fingerprint', { fp: pending.fp })) : null);
  return h('section', {},
    h('a', { class: 'back', href: ctx.who ? '#/handbook' : '#/signin' }, t('nav.back')),
    h('h1', {}, t('pair.phone_title')),
    h('p', {}, t('pair.phone_intro')),
    form);
}
