// Entry point: the navigation bar, the routes and the session's life cycle.

import { forgotView, loginView, profileView, registerView, resetView } from './account.js';
import { adminMovieView, adminView } from './admin.js';
import { api, errorText, session } from './api.js';
import { catalogueView } from './catalogue.js';
import { h, replace, toast } from './dom.js';
import { followAccount, LANGUAGES, language, setLanguage, t } from './i18n.js';
import { favoritesView, ratingsView } from './library.js';
import { movieView } from './movie.js';
import { historyView } from './playback.js';
import { currentRoute, go, href, link, onNavigate, takeScroll, upgradeHashLink } from './router.js';

// The gateway serves the app on exactly these paths (streamia_web.ROUTES; a test compares).
const ROUTES = [
  [/^\/$/, catalogueView],
  [/^\/movies\/([^/]+)$/, movieView],
  [/^\/login$/, loginView],
  [/^\/register$/, registerView],
  [/^\/forgot-password$/, forgotView],
  [/^\/reset-password\/([^/]+)$/, resetView],
  [/^\/profile$/, profileView],
  [/^\/favorites$/, favoritesView],
  [/^\/ratings$/, ratingsView],
  [/^\/history$/, historyView],
  [/^\/admin$/, adminView],
  [/^\/admin\/movies\/([^/]+)$/, adminMovieView],
];

const PRIVATE = /^\/(profile|favorites|ratings|history|admin)(\/|$)/;

const main = document.getElementById('main');
const footer = document.querySelector('.footer');
const nav = document.getElementById('site-nav');
const navToggle = document.querySelector('.nav-toggle');
let active = null; // {view, pattern, path, handle}
let renderCount = 0;

// Navigation --------------------------------------------------------------------------------

function navLink(path, text) {
  const { path: current } = currentRoute();
  const onPage = current === path || (path !== '/' && current.startsWith(`${path}/`));
  return h('a', { href: href(path), 'aria-current': onPage ? 'page' : undefined }, text);
}

function renderNav() {
  const user = session.user;
  const items = [navLink('/', t('Browse'))];
  if (session.loggedIn) {
    items.push(
      navLink('/favorites', t('My list')),
      navLink('/ratings', t('My ratings')),
      navLink('/history', t('History')),
    );
    if (session.isAdmin) items.push(navLink('/admin', t('Admin')));
    items.push(
      h('span', { class: 'nav-spacer' }),
      navLink('/profile', user?.firstName ? user.firstName : t('Profile')),
      h('button', { type: 'button', class: 'btn small ghost', onclick: logout }, t('Log out')),
    );
  } else {
    items.push(
      h('span', { class: 'nav-spacer' }),
      navLink('/login', t('Log in')),
      h('a', { class: 'btn small primary', href: href('/register') }, t('Sign up')),
    );
  }
  replace(nav, ...items);
}

/** The footer: the API docs link and the language switch (remembered; kept on the account). */
function renderFooter() {
  const select = h(
    'select',
    { id: 'language-switch', name: 'language', value: language() },
    LANGUAGES.map(([value, text]) => h('option', { value }, text)),
  );
  select.addEventListener('change', async () => {
    setLanguage(select.value);
    translateShell();
    renderFooter();
    active = null;
    render();
    if (!session.loggedIn) return;
    try {
      const body = await api('/api/users/me', { method: 'PUT', body: { language: select.value } });
      if (body?.user) session.setUser(body.user);
    } catch (err) {
      console.warn('language not saved on the account', errorText(err));
    }
  });
  replace(
    footer,
    h(
      'p',
      {},
      'Streamia · ',
      h('a', { href: '/docs' }, t('API docs')),
      ' · ',
      h('label', { htmlFor: 'language-switch' }, `${t('Language')} `),
      select,
    ),
  );
}

/** The texts of index.html's shell (skip link, menu button, landmarks) in the current language. */
function translateShell() {
  document.querySelector('.skip-link').textContent = t('Skip to content');
  document.querySelector('.brand').setAttribute('aria-label', t('Streamia home'));
  navToggle.querySelector('.visually-hidden').textContent = t('Menu');
  nav.setAttribute('aria-label', t('Main'));
  const loading = main.querySelector('.loading');
  if (loading) loading.textContent = t('Loading…');
}

navToggle.addEventListener('click', () => {
  const open = navToggle.getAttribute('aria-expanded') !== 'true';
  navToggle.setAttribute('aria-expanded', String(open));
  nav.classList.toggle('open', open);
});

nav.addEventListener('click', (event) => {
  if (event.target.closest('a')) {
    navToggle.setAttribute('aria-expanded', 'false');
    nav.classList.remove('open');
  }
});

async function logout() {
  try {
    await api('/api/users/logout', { method: 'POST' });
  } catch (err) {
    // The token is dropped here either way; an expired one is already useless.
    console.warn('logout', errorText(err));
  }
  session.clear('logout');
  toast(t('You have been logged out.'));
  go('/');
}

// Routing -----------------------------------------------------------------------------------

async function render() {
  renderNav();
  const id = ++renderCount;

  const { path, query } = currentRoute();
  for (const [pattern, view] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    if (active && active.view === view && active.path === path && active.handle?.update) {
      active.handle.update(match.slice(1).map(decodeURIComponent), query);
      return;
    }
    active = { view, path, handle: null };
    let result;
    try {
      result = await view(main, match.slice(1).map(decodeURIComponent), query);
    } catch (err) {
      console.error(err);
      if (id !== renderCount) return;
      replace(
        main,
        h(
          'section',
          { class: 'page narrow' },
          h('h1', {}, t('Something went wrong')),
          h('p', { class: 'notice error' }, errorText(err)),
          h('p', {}, link('/', t('Back to the catalogue'))),
        ),
      );
      return;
    }
    if (id !== renderCount) return;
    active.handle = result || null;
    finish(result, id);
    return;
  }
  active = null;
  replace(
    main,
    h(
      'section',
      { class: 'page narrow' },
      h('h1', {}, t('Page not found')),
      h('p', {}, t('There is nothing at this address. '), link('/', t('Go to the catalogue')), '.'),
    ),
  );
  finish({ title: t('Not found') }, id);
}

let firstRender = true;

function finish(result, id) {
  if (id !== renderCount) return;
  const title = result?.title;
  document.title = title ? `${title} · Streamia` : 'Streamia';
  // After a client-side navigation, start screen readers and keyboards at the new content.
  if (!firstRender) main.focus({ preventScroll: true });
  firstRender = false;
  window.scrollTo(0, takeScroll() ?? 0);
}

onNavigate(render);
upgradeHashLink();

// Session -----------------------------------------------------------------------------------

session.onChange((reason) => {
  const relabel = followAccount();
  if (relabel) {
    translateShell();
    renderFooter();
  }
  renderNav();
  if (reason === 'expired') {
    toast(t('Your session has expired. Please log in again.'), 'error', 8000);
  }
  // Pages that need an account send the user to log in; the others just lose their buttons.
  const { path } = currentRoute();
  if (relabel || reason === 'storage' || (reason === 'expired' && PRIVATE.test(path))) {
    active = null;
    render();
  }
});

async function refreshUser() {
  if (!session.loggedIn) return;
  try {
    const body = await api('/api/users/me');
    if (body?.user) session.setUser(body.user);
  } catch (err) {
    // 401 already cleared the session; anything else keeps the stored user.
    if (session.loggedIn) console.warn('profile refresh failed', errorText(err));
  }
}

translateShell();
renderFooter();
renderNav();
refreshUser().finally(() => {
  if (!active) return;
  renderNav();
});
render();
