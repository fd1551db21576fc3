// Real paths (/movies/<id>, /login, ...) through the history API. The gateway answers a
// browser's GET on each of these paths with the app, so links in emails and bookmarks land.

import { session } from './api.js';
import { h } from './dom.js';

/** Paths under these prefixes are the server's, never the app's. */
const SERVER_PATHS = /^\/(api|assets|docs|openapi\.json|health|ready|metrics|\.well-known)(\/|$)/;

const listeners = new Set();
let pendingScroll = null;

/** The current route: {path, query: URLSearchParams}. */
export function currentRoute() {
  return { path: location.pathname.replace(/(.)\/$/, '$1'), query: new URLSearchParams(location.search) };
}

/** Runs `fn()` after every navigation (a link, `go`, back/forward). */
export function onNavigate(fn) {
  listeners.add(fn);
}

function notify() {
  for (const fn of listeners) fn();
}

/** The scroll position to restore for the page being shown (back/forward), once; else null. */
export function takeScroll() {
  const y = pendingScroll;
  pendingScroll = null;
  return y;
}

function target(path, params) {
  if (!params) return path;
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

/** Goes to a route ('/movies/1', or with a query object); `replace` keeps the history entry. */
export function go(path, params, { replace = false } = {}) {
  const url = target(path, params);
  if (replace) {
    history.replaceState(null, '', url);
  } else {
    history.replaceState({ ...history.state, scroll: window.scrollY }, '');
    history.pushState(null, '', url);
  }
  pendingScroll = null;
  notify();
}

/** The href of a route. */
export function href(path) {
  return path;
}

export function link(path, text, attrs = {}) {
  return h('a', { href: href(path), ...attrs }, text);
}

/** True when logged in; otherwise sends the user to the login page and returns false. */
export function requireLogin() {
  if (session.loggedIn) return true;
  const { path, query } = currentRoute();
  const next = query.toString() ? `${path}?${query}` : path;
  go('/login', { next }, { replace: true });
  return false;
}

// Same-origin links to app paths navigate in the page; everything else is left to the browser.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || SERVER_PATHS.test(url.pathname)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  go(url.pathname + url.search);
});

window.addEventListener('popstate', (event) => {
  pendingScroll = event.state?.scroll ?? null;
  notify();
});

history.scrollRestoration = 'manual';

/** Old `/#/movie/1` links (bookmarks, earlier emails) become real paths. */
export function upgradeHashLink() {
  const old = location.hash.match(/^#(\/[^#]*)$/);
  if (!old) return;
  const path = old[1].replace(/^\/movie\//, '/movies/').replace(/^\/admin\/movie\//, '/admin/movies/');
  history.replaceState(null, '', path);
}
