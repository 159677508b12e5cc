// Service worker: keeps the app's own files so it opens with no kiosk in reach.
// Data never passes through here: PouchDB keeps it in IndexedDB and syncs with the kiosk.
// Bump VERSION when the file list changes; files are revalidated on every online load.
const VERSION = 'phs-app-4';
const FILES = [
  '/_app/', '/_app/index.html', '/_app/app.js', '/_app/db.js', '/_app/sync.mjs', '/_app/i18n.js', '/_app/ui.js', '/_app/style.css',
  '/_app/manifest.webmanifest', '/_app/vendor/pouchdb.min.js', '/_app/icons/icon.svg', '/_app/icons/icon-192.png',
  '/_app/icons/icon-512.png', '/_app/i18n/vi.json', '/_app/i18n/en.json', '/_app/i18n/ur.json',
  '/_app/views/handbook.js', '/_app/views/article.js', '/_app/views/meetings.js', '/_app/views/minutes.js',
  '/_app/views/feedback.js', '/_app/views/sync.js', '/_app/views/conflict.js', '/_app/views/signin.js',
  '/_app/views/pair.js', '/_app/views/members.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// Network first (so an updated kiosk serves the new app at once), the cache when the kiosk
// is out of reach. sample.json is never cached: demo accounts come only from a live sample kiosk.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || !url.pathname.startsWith('/_app/') || url.pathname === '/_app/sample.json') return;
  event.respondWith(fetch(event.request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      caches.open(VERSION).then((cache) => cache.put(event.request, copy));
    }
    return response;
  }).catch(() => caches.match(event.request, { ignoreSearch: true })
    .then((hit) => hit || caches.match('/_app/index.html'))));
});
