// Hash routing (#/movie/<id>) plus the one real path the emails link to (/reset-password/<t>).

import { session } from './api.js';
import { h } from './dom.js';

/** The current hash route: {path, query: URLSearchParams}. */
export function currentRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, search = ''] = hash.split('?');
  return { path: path || '/', query: new URLSearchParams(search) };
}

/** Goes to a hash route ('/movie/1', or with a query object). Works from any real path. */
export function go(path, params) {
  let target = path;
  if (params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
    }
    const text = search.toString();
    if (text) target += `?${text}`;
  }
  if (location.pathname !== '/') {
    location.assign(`/#${target}`);
    return;
  }
  if (location.hash === `#${target}`) {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = target;
  }
}

/** The href of a hash route, usable from any real path. */
export function href(path) {
  return `/#${path}`;
}

export function link(path, text, attrs = {}) {
  return h('a', { href: href(path), ...attrs }, text);
}

/** True when logged in; otherwise sends the user to the login page and returns false. */
export function requireLogin() {
  if (session.loggedIn) return true;
  const { path, query } = currentRoute();
  const next = query.toString() ? `${path}?${query}` : path;
  go('/login', { next });
  return false;
}
