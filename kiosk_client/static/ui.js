// Building blocks of the screens: element creation (text only through textContent,
// never innerHTML, so document content cannot inject markup) and the local time.

/** h('button', {class: 'big', onclick: fn}, child, ...): an element; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Now as RFC 3339 with the device's offset (2026-12-03T19:30:00+07:00), as the schemas want. */
export function nowWithOffset() { return withOffset(new Date()); }

const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, '0');

/** A Date as RFC 3339 in the device's time zone, with the offset of that day (not of today). */
export function withOffset(date) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:`
    + `${pad(date.getMinutes())}:${pad(date.getSeconds())}${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

/** The local date (YYYY-MM-DD) and time (HH:MM) of an RFC 3339 time, as native date and time inputs take them. */
export function localParts(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return { date: '', time: '' };
  return { date: `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`,
           time: `${pad(date.getHours())}:${pad(date.getMinutes())}` };
}

/** A date input's and a time input's values as RFC 3339 with the device's offset, or null. */
export function fromParts(day, time) {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day || '');
  const t = /^(\d{2}):(\d{2})/.exec(time || '');
  if (!d || !t) return null;
  const date = new Date(Number(d[1]), Number(d[2]) - 1, Number(d[3]), Number(t[1]), Number(t[2]));
  return Number.isNaN(date.getTime()) ? null : withOffset(date);
}

/** Lower case without diacritics, so "nghi quyet" finds "Nghị quyết". */
export function fold(text) {
  return String(text || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/đ/g, 'd')
    .replace(/Đ/g, 'd').toLowerCase();
}
