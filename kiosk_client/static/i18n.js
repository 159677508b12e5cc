// Translations: one JSON file per language in i18n/ (a language is a file).
// Vietnamese is the default; the choice is remembered on the device.

export const LANGUAGES = { vi: 'ltr', en: 'ltr', ur: 'rtl' };
const DEFAULT = 'vi';
const KEY = 'phs.lang';
let strings = {};
let current = DEFAULT;

export function language() { return current; }

/** Load a language file and set the page's lang and dir. */
export async function setLanguage(lang) {
  const chosen = lang in LANGUAGES ? lang : DEFAULT;
  const response = await fetch(`/_app/i18n/${chosen}.json`);
  strings = await response.json();
  current = chosen;
  localStorage.setItem(KEY, chosen);
  document.documentElement.lang = chosen;
  document.documentElement.dir = LANGUAGES[chosen];
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  return chosen;
}

export function savedLanguage() { return localStorage.getItem(KEY) || DEFAULT; }

/** The text of a key in the current language, with {name} placeholders filled in. */
export function t(key, params = {}) {
  const text = key in strings ? strings[key] : key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : ''));
}

/** A date and time in the current language's conventions (e.g. 19:30 thứ Năm, 3/12/2026). */
export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return date.toLocaleString(current, { weekday: 'long', day: 'numeric', month: 'numeric', year: 'numeric',
                                         hour: '2-digit', minute: '2-digit' });
}

export function day(iso) {
  return iso ? new Date(iso).toLocaleDateString(current, { day: 'numeric', month: 'numeric', year: 'numeric' }) : '';
}
