// Watch progress (/api/playback): resume where the user stopped, report progress while
// playing, the home page's rows and the History page. Anonymous visitors make no progress calls.

import { ApiError, api, enc, errorText, session } from './api.js';
import { busy, cover, formatDateTime, h, replace, toast, toastError } from './dom.js';
import { t } from './i18n.js';
import { href, link, onNavigate, requireLogin } from './router.js';

const REPORT_EVERY_MS = 10_000;
// Closer to the start than this, there is nothing worth resuming.
const RESUME_FROM_SECONDS = 3;
const HISTORY_PAGE = 50;

// The open player's last report, sent when the user leaves its page: on a navigation in the
// app (this module's listener runs before the next page renders, so its rows see the report)
// and when the tab closes or navigates away (a keepalive request outlives the page).
let leaving = null;
let lastReport = Promise.resolve();
onNavigate(() => {
  leaving?.();
  leaving = null;
});
window.addEventListener('pagehide', () => leaving?.());

/** 408 → "6:48", 4080 → "1:08:00". */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

function listOf(body) {
  return Array.isArray(body) ? body : body?.data || [];
}

/** The caller's stored progress in a movie, or null (none, or logged out). */
async function storedProgress(movieId) {
  if (!session.loggedIn) return null;
  try {
    return await api(`/api/playback/progress/${enc(movieId)}`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) console.warn('progress unavailable', errorText(err));
    return null;
  }
}

/**
 * Follows `video` for a logged-in user: offers to resume at the stored position (the prompt
 * goes into `prompt`), then reports the position every ~10 s while playing, on pause and at
 * the end, and on leaving the page.
 */
export async function followProgress(video, prompt, movie) {
  if (!session.loggedIn) return;
  let lastSent = 0;
  let lastPosition = -1;

  function report() {
    const duration = video.duration;
    if (!session.loggedIn || !Number.isFinite(duration) || duration <= 0) return;
    const position = Math.min(video.currentTime, duration);
    if (position === lastPosition || position <= 0) return;
    lastSent = Date.now();
    lastPosition = position;
    lastReport = api(`/api/playback/progress/${enc(movie.id)}`, {
      method: 'PUT',
      body: { position, duration, at: new Date().toISOString() },
      keepalive: true,
    }).catch((err) => console.warn('progress not saved', errorText(err)));
  }

  video.addEventListener('timeupdate', () => {
    if (!video.paused && Date.now() - lastSent >= REPORT_EVERY_MS) report();
  });
  video.addEventListener('pause', report);
  video.addEventListener('ended', report);
  leaving = report;

  const stored = await storedProgress(movie.id);
  if (!stored || stored.finished || stored.position < RESUME_FROM_SECONDS || !video.isConnected) return;
  if (video.currentTime > 0) return; // already playing: do not jump
  const resume = h(
    'button',
    { type: 'button', class: 'btn primary' },
    t('Resume from {time}', { time: clock(stored.position) }),
  );
  const restart = h('button', { type: 'button', class: 'btn ghost' }, t('Start over'));
  const close = () => {
    prompt.hidden = true;
    replace(prompt);
  };
  resume.addEventListener('click', () => {
    close();
    const seek = () => {
      video.currentTime = stored.position;
      video.play().catch(() => {});
    };
    if (video.readyState >= HTMLMediaElement.HAVE_METADATA) seek();
    else video.addEventListener('loadedmetadata', seek, { once: true });
  });
  restart.addEventListener('click', () => {
    close();
    video.currentTime = 0;
    video.play().catch(() => {});
  });
  video.addEventListener('play', close, { once: true });
  replace(prompt, resume, restart);
  prompt.hidden = false;
}

// Home page rows ----------------------------------------------------------------------------

function rowCard(movie, percent) {
  const title = movie.title || t('Untitled');
  return h(
    'li',
    { class: 'row-card' },
    h(
      'a',
      { class: 'card-link', href: href(`/movies/${enc(movie.id)}`) },
      h('div', { class: 'cover-wrap' }, cover(movie.poster, t('Cover of {title}', { title }))),
      percent === undefined
        ? null
        : h('progress', {
            class: 'watch-progress',
            max: '100',
            value: String(percent),
            'aria-label': t('{percent}% watched', { percent: Math.round(percent) }),
          }),
      h('span', { class: 'row-title' }, title),
    ),
  );
}

function row(id, heading, cards) {
  return h(
    'section',
    { class: 'movie-row', id, 'aria-labelledby': `${id}-heading` },
    h('h2', { id: `${id}-heading` }, heading),
    h('ul', { class: 'row-list' }, cards),
  );
}

/** "Continue watching" (logged in), "Trending" and "Most watched": each hidden when empty. */
export async function homeRows(container) {
  const load = (path, auth) =>
    api(path, { auth }).then(listOf, (err) => {
      console.warn(`${path} unavailable`, errorText(err));
      return [];
    });
  const [going, trending, popular] = await Promise.all([
    session.loggedIn ? lastReport.then(() => load('/api/playback/continue?limit=20', true)) : [],
    load('/api/playback/trending?limit=20', false),
    load('/api/playback/popular?window=7d&limit=20', false),
  ]);
  const chart = (item) => ({ ...item, id: item.movieId });
  replace(
    container,
    going.length
      ? row(
          'continue-watching',
          t('Continue watching'),
          going.map((entry) => rowCard(entry.movie, entry.percent)),
        )
      : null,
    trending.length
      ? row(
          'trending',
          t('Trending'),
          trending.map((item) => rowCard(chart(item))),
        )
      : null,
    popular.length
      ? row(
          'most-watched',
          t('Most watched'),
          popular.map((item) => rowCard(chart(item))),
        )
      : null,
  );
}

// History -----------------------------------------------------------------------------------

function historyItem(entry, onRemoved) {
  const movie = entry.movie;
  const title = movie.title || t('Untitled');
  const remove = h('button', { type: 'button', class: 'btn small ghost danger' }, t('Remove'));
  const item = h(
    'li',
    { class: 'history-item' },
    h(
      'a',
      { class: 'history-cover', href: href(`/movies/${enc(movie.id)}`), tabindex: '-1', 'aria-hidden': 'true' },
      cover(movie.poster, ''),
    ),
    h(
      'div',
      { class: 'history-body' },
      h('h3', {}, link(`/movies/${enc(movie.id)}`, title)),
      h(
        'p',
        { class: 'muted' },
        entry.finished
          ? t('Finished')
          : t('Stopped at {time} of {total}', { time: clock(entry.position), total: clock(entry.duration) }),
        ' · ',
        h('time', { datetime: entry.updatedAt || '' }, formatDateTime(entry.updatedAt)),
      ),
      h('progress', {
        class: 'watch-progress',
        max: '100',
        value: String(entry.percent),
        'aria-label': t('{percent}% watched', { percent: Math.round(entry.percent) }),
      }),
    ),
    remove,
  );
  remove.addEventListener('click', () =>
    busy(remove, async () => {
      try {
        await api(`/api/playback/history/${enc(movie.id)}`, { method: 'DELETE' });
        item.remove();
        toast(t('Removed from your history.'));
        onRemoved();
      } catch (err) {
        toastError(err);
      }
    }),
  );
  return item;
}

export async function historyView(main) {
  if (!requireLogin()) return null;
  const list = h('ul', { class: 'history-list' });
  const status = h('div', { role: 'status' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, t('Show more'));
  const clearButton = h('button', { type: 'button', class: 'btn ghost danger', hidden: true }, t('Clear history'));
  let page = 1;

  function showEmpty() {
    if (list.children.length) return;
    clearButton.hidden = true;
    more.hidden = true;
    replace(
      status,
      h('p', { class: 'empty' }, t('Nothing watched yet. '), link('/', t('Find something to watch')), '.'),
    );
  }

  async function loadPage() {
    try {
      const entries = listOf(await api(`/api/playback/history?page=${page}&limit=${HISTORY_PAGE}`));
      for (const entry of entries) list.appendChild(historyItem(entry, showEmpty));
      more.hidden = entries.length < HISTORY_PAGE;
      clearButton.hidden = list.children.length === 0;
      replace(status);
      showEmpty();
    } catch (err) {
      replace(
        status,
        h(
          'p',
          { class: 'notice error' },
          errorText(err),
          ' ',
          h('button', { type: 'button', class: 'btn small', onclick: loadPage }, t('Retry')),
        ),
      );
    }
  }

  more.addEventListener('click', () => {
    page += 1;
    busy(more, loadPage, t('Loading…'));
  });
  clearButton.addEventListener('click', async () => {
    if (!confirm(t('Clear your whole watch history?'))) return;
    await busy(clearButton, async () => {
      try {
        await api('/api/playback/history', { method: 'DELETE' });
        replace(list);
        toast(t('Your history was cleared.'));
        showEmpty();
      } catch (err) {
        toastError(err);
      }
    });
  });

  replace(
    main,
    h(
      'section',
      { class: 'page narrow' },
      h('div', { class: 'page-heading' }, h('h1', {}, t('History')), clearButton),
      status,
      list,
      more,
    ),
  );
  replace(status, h('p', { class: 'loading' }, t('Loading…')));
  await loadPage();
  return { title: t('History') };
}
