// One movie: the player with subtitles, ratings, the favourite toggle and the comments.

import { ApiError, api, enc, errorText, query, session } from './api.js';
import {
  busy,
  formatDate,
  formatDateTime,
  formatDuration,
  h,
  mediaUrl,
  replace,
  stars,
  toast,
  toastError,
} from './dom.js';
import { alertBox, apiForm, fieldError } from './forms.js';
import { formatNumber, msg, t } from './i18n.js';
import { followProgress } from './playback.js';
import { link } from './router.js';

const COMMENTS_PAGE = 20;
const COMMENT_MAX = 500;
// What a comment's author sees instead of a raw moderation status.
const STATUS_TEXT = { flagged: msg('Awaiting review'), hidden: msg('Hidden by a moderator') };

function sectionError(container, err, retry) {
  replace(
    container,
    h(
      'div',
      { class: 'notice error' },
      h('span', {}, errorText(err)),
      retry ? h('button', { type: 'button', class: 'btn small', onclick: retry }, t('Retry')) : null,
    ),
  );
}

export async function movieView(main, [rawId]) {
  const id = decodeURIComponent(rawId);
  replace(main, h('p', { class: 'loading' }, t('Loading movie…')));
  let movie;
  try {
    movie = (await api(`/api/movies/${enc(id)}`, { auth: false })).data;
  } catch (err) {
    const notFound = err instanceof ApiError && err.status === 404;
    replace(
      main,
      h(
        'section',
        { class: 'page narrow' },
        h('h1', {}, notFound ? t('Movie not found') : t('This movie could not be loaded')),
        h(
          'p',
          { class: notFound ? 'muted' : 'notice error' },
          notFound ? t('It may have been removed from the catalogue.') : errorText(err),
        ),
        h('p', {}, link('/', t('← Back to the catalogue'))),
      ),
    );
    return { title: t('Movie not found') };
  }

  const player = h('div', { class: 'player' });
  const ratingBox = h('section', { class: 'panel', 'aria-labelledby': 'ratings-heading' });
  const commentsBox = h('section', { class: 'panel comments', 'aria-labelledby': 'comments-heading' });
  const favButton = h(
    'button',
    { type: 'button', class: 'btn', 'aria-pressed': 'false', hidden: !session.loggedIn },
    t('♡ Add to my list'),
  );

  const meta = [
    movie.category ? h('span', { class: 'chip' }, movie.category) : null,
    movie.duration ? h('span', { class: 'chip' }, formatDuration(movie.duration)) : null,
    movie.createdAt ? h('span', { class: 'muted' }, t('Added {date}', { date: formatDate(movie.createdAt) })) : null,
  ];
  const actions = h(
    'div',
    { class: 'actions' },
    favButton,
    session.loggedIn
      ? null
      : link(`/login?next=${enc(`/movies/${id}`)}`, t('Log in to save it to your list'), { class: 'btn ghost' }),
    session.isAdmin ? link(`/admin/movies/${enc(id)}`, t('Edit movie'), { class: 'btn ghost' }) : null,
  );

  replace(
    main,
    h(
      'article',
      { class: 'movie-page' },
      h('p', { class: 'breadcrumb' }, link('/', t('← All movies'))),
      player,
      h(
        'header',
        { class: 'movie-header' },
        h('h1', {}, movie.title),
        h('p', { class: 'movie-meta' }, meta),
        movie.description ? h('p', { class: 'movie-description' }, movie.description) : null,
        actions,
      ),
      h('div', { class: 'columns' }, ratingBox, commentsBox),
    ),
  );

  renderPlayer(player, movie);
  setupFavorite(favButton, movie);
  renderRatings(ratingBox, movie);
  renderComments(commentsBox, movie);
  return { title: movie.title };
}

// Player ------------------------------------------------------------------------------------

const SUBTITLE_KEY = 'streamia.subtitles';

async function renderPlayer(container, movie) {
  const stream = `/api/movies/${enc(movie.id)}/stream`;
  const video = h('video', {
    controls: true,
    preload: 'metadata',
    playsinline: true,
    poster: mediaUrl(movie.coverImage) || undefined,
    'aria-label': t('Video: {title}', { title: movie.title }),
    'aria-keyshortcuts': 'Space ArrowLeft ArrowRight F M C',
  });
  const message = h('p', { class: 'notice error', role: 'alert', hidden: true });
  const prompt = h('div', { class: 'resume-prompt actions', hidden: true });
  const menu = h('select', { id: 'subtitle-menu', name: 'subtitles' }, h('option', { value: 'off' }, t('Off')));
  const controls = h(
    'div',
    { class: 'player-controls' },
    h('label', { htmlFor: 'subtitle-menu' }, `${t('Subtitles')} `),
    menu,
    h('span', { class: 'muted hint' }, t('Keys: space play/pause · ← → 5 s · f full screen · m mute · c subtitles')),
  );
  replace(container, video, prompt, message, controls);
  followProgress(video, prompt, movie);

  let subtitles = movie.subtitles || [];
  try {
    const body = await api(`/api/movies/${enc(movie.id)}/subtitles`, { auth: false });
    subtitles = body.subtitles || [];
  } catch (err) {
    if (subtitles.length === 0) console.warn('subtitles unavailable', err);
  }
  subtitles = subtitles.filter((sub) => sub.url);
  for (const [index, sub] of subtitles.entries()) {
    const label = sub.label || sub.language || t('Subtitles {number}', { number: index + 1 });
    video.appendChild(h('track', { kind: 'subtitles', src: mediaUrl(sub.url), srclang: sub.language || '', label }));
    menu.appendChild(h('option', { value: sub.language || String(index) }, label));
  }
  controls.hidden = subtitles.length === 0;

  /** Shows the chosen track (a language, or 'off') and remembers the choice. */
  function choose(value, remember = true) {
    menu.value = [...menu.options].some((o) => o.value === value) ? value : 'off';
    [...video.textTracks].forEach((track, index) => {
      const option = menu.options[index + 1];
      track.mode = option && option.value === menu.value ? 'showing' : 'disabled';
    });
    if (remember) localStorage.setItem(SUBTITLE_KEY, menu.value);
  }
  menu.addEventListener('change', () => choose(menu.value));
  const remembered = localStorage.getItem(SUBTITLE_KEY);
  const browser = (navigator.language || 'en').toLowerCase().split('-')[0];
  const match = subtitles.find((s) => (s.language || '').toLowerCase().split('-')[0] === browser);
  choose(remembered || (match ? match.language : 'off'), false);
  // While the video and its tracks load, Chromium's own automatic selection turns every
  // subtitle track on (two languages on screen at once): the menu's choice is applied again.
  const reapply = () => choose(menu.value, false);
  video.addEventListener('loadedmetadata', reapply);
  for (const track of video.querySelectorAll('track')) track.addEventListener('load', reapply);

  function onKey(event) {
    if (!video.isConnected) {
      document.removeEventListener('keydown', onKey);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest('input, textarea, select, button, a, [contenteditable]')) return;
    const key = event.key.toLowerCase();
    if (key === ' ') {
      if (video.paused) video.play().catch(() => {});
      else video.pause();
    } else if (key === 'arrowleft' || key === 'arrowright') {
      const step = key === 'arrowleft' ? -5 : 5;
      video.currentTime = Math.max(0, Math.min(video.duration || Infinity, video.currentTime + step));
    } else if (key === 'f') {
      if (document.fullscreenElement) document.exitFullscreen();
      else video.requestFullscreen?.().catch(() => {});
    } else if (key === 'm') {
      video.muted = !video.muted;
    } else if (key === 'c' && menu.options.length > 1) {
      choose(menu.options[(menu.selectedIndex + 1) % menu.options.length].value);
    } else {
      return;
    }
    event.preventDefault();
  }
  document.addEventListener('keydown', onKey);

  video.addEventListener('error', async () => {
    if (!video.error) return;
    message.textContent = await playbackProblem(stream, video, movie);
    message.hidden = false;
  });
  video.src = stream;
}

/** What went wrong when the video failed: unreachable host, missing file or unsupported format. */
async function playbackProblem(stream, video, movie) {
  const external = /^https?:/i.test(mediaUrl(movie.videoUrl) || '');
  if (external) {
    return t(
      'The video is hosted on another site ({host}) that cannot be reached or does not serve a playable video.',
      {
        host: new URL(movie.videoUrl).host,
      },
    );
  }
  let response;
  try {
    response = await fetch(stream, { headers: { Range: 'bytes=0-0' } });
  } catch {
    return t('Cannot reach the server to play this video. Check your connection and try again.');
  }
  if (response.status === 404) return t('The video file is missing: it may have been removed or not processed yet.');
  if (response.status >= 500) return t('The video service is unavailable right now. Please try again in a moment.');
  const type = (response.headers.get('Content-Type') || '').split(';')[0];
  if (type && !video.canPlayType(type)) return t('This browser cannot play this video format ({type}).', { type });
  if (video.error && video.error.code === MediaError.MEDIA_ERR_DECODE) {
    return t('The video file is damaged or uses a format this browser cannot decode.');
  }
  return t('This video cannot be played right now.');
}

// Favourite ---------------------------------------------------------------------------------

async function setupFavorite(button, movie) {
  if (!session.loggedIn) return;
  let isFavorite = false;
  const show = () => {
    button.setAttribute('aria-pressed', String(isFavorite));
    button.textContent = isFavorite ? t('♥ In my list') : t('♡ Add to my list');
    button.classList.toggle('active', isFavorite);
  };
  button.disabled = true;
  try {
    const favorites = await api('/api/favorites');
    isFavorite = Array.isArray(favorites) && favorites.some((f) => f.movieId === movie.id);
  } catch (err) {
    button.title = t('My list is unavailable: {reason}', { reason: errorText(err) });
  }
  show();
  button.disabled = false;
  button.addEventListener('click', () =>
    busy(button, async () => {
      try {
        if (isFavorite) {
          await api(`/api/favorites/${enc(movie.id)}`, { method: 'DELETE' });
          isFavorite = false;
          toast(t('Removed “{title}” from your list.', { title: movie.title }));
        } else {
          await api('/api/favorites', { method: 'POST', body: { movieId: movie.id } });
          isFavorite = true;
          toast(t('Added “{title}” to your list.', { title: movie.title }), 'success');
        }
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) isFavorite = true;
        else if (err instanceof ApiError && err.status === 404 && isFavorite) isFavorite = false;
        else toastError(err);
      }
    }).then(show),
  );
}

// Ratings -----------------------------------------------------------------------------------

async function renderRatings(container, movie) {
  const summaryBox = h('div', { class: 'rating-summary' }, h('p', { class: 'loading' }, t('Loading ratings…')));
  const mine = h('div', { class: 'my-rating' });
  replace(container, h('h2', { id: 'ratings-heading' }, t('Ratings')), summaryBox, mine);

  async function loadSummary() {
    try {
      const summary = await api(`/api/ratings/movie/${enc(movie.id)}`, { auth: false });
      drawSummary(summary);
    } catch (err) {
      sectionError(summaryBox, err, loadSummary);
    }
  }

  function drawSummary(summary) {
    const count = Number(summary.count) || 0;
    const distribution = summary.distribution || {};
    const rows = [5, 4, 3, 2, 1].map((n) => {
      const value = Number(distribution[String(n)]) || 0;
      const pct = count ? Math.round((value / count) * 100) : 0;
      const fill = h('span', { class: 'bar-fill' });
      fill.style.width = `${pct}%`;
      return h(
        'li',
        {
          class: 'dist-row',
          'aria-label':
            n === 1
              ? t('1 star: {count} ({percent}%)', { count: value, percent: pct })
              : t('{stars} stars: {count} ({percent}%)', { stars: n, count: value, percent: pct }),
        },
        h('span', { class: 'dist-label', 'aria-hidden': 'true' }, `${n} ★`),
        h('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
        h('span', { class: 'dist-count', 'aria-hidden': 'true' }, String(value)),
      );
    });
    if (!count) {
      replace(summaryBox, h('p', { class: 'muted rating-none' }, t('Not rated yet')));
      return;
    }
    replace(
      summaryBox,
      h(
        'div',
        { class: 'rating-big' },
        h('span', { class: 'rating-number' }, formatNumber(Number(summary.average) || 0, 1)),
        h(
          'div',
          {},
          stars(summary.average, { label: false }),
          h('p', { class: 'muted' }, count === 1 ? t('1 rating') : t('{count} ratings', { count })),
        ),
      ),
      h('ul', { class: 'distribution', 'aria-label': t('Rating distribution') }, rows),
    );
  }

  await loadSummary();

  if (!session.loggedIn) {
    replace(
      mine,
      h(
        'p',
        { class: 'muted' },
        link(`/login?next=${enc(`/movies/${movie.id}`)}`, t('Log in')),
        t(' to rate this movie.'),
      ),
    );
    return;
  }

  let myRating = null;
  const user = session.user;
  if (user?.id) {
    try {
      const list = await api(`/api/ratings/${enc(user.id)}`);
      myRating = (Array.isArray(list) ? list : []).find((r) => r.movieId === movie.id) || null;
    } catch (err) {
      // Still let the user rate: the POST is an upsert.
      console.warn('own ratings unavailable', err);
    }
  }

  const name = `rate-${movie.id}`;
  const radios = [1, 2, 3, 4, 5].map((n) => {
    const input = h('input', { type: 'radio', name, value: String(n), id: `${name}-${n}`, class: 'visually-hidden' });
    const text = n === 1 ? t('1 star') : t('{count} stars', { count: n });
    const label = h(
      'label',
      { htmlFor: `${name}-${n}`, title: text },
      h('span', { 'aria-hidden': 'true' }, '★'),
      h('span', { class: 'visually-hidden' }, text),
    );
    return { n, input, label };
  });
  const note = h('p', { class: 'muted', role: 'status' });
  const removeButton = h('button', { type: 'button', class: 'btn small ghost' }, t('Remove my rating'));

  function drawMine() {
    const value = myRating ? myRating.rating : 0;
    for (const { n, input, label } of radios) {
      input.checked = n === value;
      label.classList.toggle('on', n <= value);
    }
    note.textContent = value
      ? t('You rated this {value} out of 5.', { value })
      : t('You have not rated this movie yet.');
    removeButton.hidden = !myRating?.id;
  }

  const fieldset = h(
    'fieldset',
    { class: 'star-input' },
    h('legend', {}, t('Your rating')),
    h(
      'div',
      { class: 'star-row' },
      radios.map(({ input, label }) => [input, label]),
    ),
  );
  for (const { n, input, label } of radios) {
    input.addEventListener('change', async () => {
      fieldset.disabled = true;
      try {
        const body = await api('/api/ratings', { method: 'POST', body: { movieId: movie.id, rating: n } });
        myRating = body.rating || { ...myRating, rating: n };
        toast(t('Rating saved.'), 'success');
        loadSummary();
      } catch (err) {
        toastError(err);
      } finally {
        fieldset.disabled = false;
        drawMine();
        input.focus();
      }
    });
    label.addEventListener('mouseenter', () => {
      for (const r of radios) r.label.classList.toggle('hover', r.n <= n);
    });
    label.addEventListener('mouseleave', () => {
      for (const r of radios) r.label.classList.remove('hover');
    });
  }
  removeButton.addEventListener('click', () =>
    busy(removeButton, async () => {
      try {
        await api(`/api/ratings/${enc(myRating.id)}`, { method: 'DELETE' });
        myRating = null;
        toast(t('Your rating was removed.'));
        loadSummary();
      } catch (err) {
        toastError(err);
      }
    }).then(drawMine),
  );
  replace(mine, fieldset, note, removeButton);
  drawMine();
}

// Comments ----------------------------------------------------------------------------------

function authorName(comment) {
  const user = comment.user || {};
  const name = `${user.firstName || ''} ${user.lastName || ''}`.trim();
  return name || t('Former member');
}

async function renderComments(container, movie) {
  const list = h('ul', { class: 'comment-list' });
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, t('Show more comments'));
  const listStatus = h('div', { role: 'status' });
  const heading = h('h2', { id: 'comments-heading' }, t('Comments'));
  let page = 1;

  const composer = session.loggedIn
    ? commentForm(movie, (comment) => {
        list.prepend(commentItem(comment, list));
        listStatus.textContent = '';
      })
    : h(
        'p',
        { class: 'muted' },
        link(`/login?next=${enc(`/movies/${movie.id}`)}`, t('Log in')),
        t(' to join the conversation.'),
      );

  replace(container, heading, composer, listStatus, list, more);

  async function loadPage() {
    listStatus.textContent = t('Loading comments…');
    try {
      // With the token, each comment says whether this user reported it (`reportedByMe`).
      const items = await api(`/api/comments/movie/${enc(movie.id)}${query({ page, limit: COMMENTS_PAGE })}`, {
        auth: session.loggedIn,
      });
      const comments = Array.isArray(items) ? items : items.data || [];
      for (const comment of comments) list.appendChild(commentItem(comment, list));
      more.hidden = comments.length < COMMENTS_PAGE;
      listStatus.textContent = list.children.length ? '' : t('No comments yet. Be the first!');
    } catch (err) {
      sectionError(listStatus, err, () => loadPage());
      more.hidden = true;
    }
  }
  more.addEventListener('click', () => {
    page += 1;
    busy(more, loadPage, t('Loading…'));
  });
  await loadPage();
}

function commentForm(movie, onPosted) {
  const id = `comment-new-${movie.id}`;
  const textarea = h('textarea', {
    id,
    name: 'text',
    maxlength: String(COMMENT_MAX),
    rows: '3',
    required: true,
    'aria-describedby': `${id}-count ${id}-error`,
  });
  const counter = h('p', { class: 'hint', id: `${id}-count` }, `0 / ${COMMENT_MAX}`);
  const error = h('p', { class: 'field-error', id: `${id}-error` });
  const submit = h('button', { type: 'submit', class: 'btn primary' }, t('Post comment'));
  const alert = alertBox();
  textarea.addEventListener('input', () => {
    counter.textContent = `${textarea.value.length} / ${COMMENT_MAX}`;
  });
  const form = apiForm(
    {
      class: 'comment-form',
      submit,
      alert,
      busyText: t('Posting…'),
      check: () => {
        if (!textarea.value.trim()) fieldError(textarea, t('Write something first.'));
      },
      send: async () => {
        const comment = await api('/api/comments', {
          method: 'POST',
          body: { movieId: movie.id, text: textarea.value.trim() },
        });
        textarea.value = '';
        counter.textContent = `0 / ${COMMENT_MAX}`;
        onPosted(comment);
        toast(t('Comment posted.'), 'success');
      },
    },
    h('div', { class: 'field' }, h('label', { htmlFor: id }, t('Add a comment')), textarea, counter, error),
    alert,
    h('div', { class: 'actions' }, submit),
  );
  return form;
}

function commentItem(comment, list) {
  const me = session.user;
  const mine = Boolean(me && comment.user && comment.user.id === me.id);
  const admin = session.isAdmin;
  const text = h('p', { class: 'comment-text' }, comment.text);
  const edited = comment.updatedAt && comment.createdAt && comment.updatedAt !== comment.createdAt;
  const item = h('li', { class: 'comment' });
  const header = h(
    'header',
    { class: 'comment-header' },
    h('strong', {}, authorName(comment)),
    mine ? h('span', { class: 'chip small' }, t('You')) : null,
    h('time', { datetime: comment.createdAt || '', class: 'muted' }, formatDateTime(comment.createdAt)),
    edited ? h('span', { class: 'muted' }, t('(edited)')) : null,
    STATUS_TEXT[comment.status] ? h('span', { class: 'chip warn small' }, t(STATUS_TEXT[comment.status])) : null,
  );
  const actions = h('div', { class: 'comment-actions' });
  const body = h('div', { class: 'comment-body' }, text);

  if (mine) {
    actions.appendChild(
      h('button', { type: 'button', class: 'btn small ghost', onclick: () => startEdit() }, t('Edit')),
    );
  }
  if (mine || admin) {
    const del = h('button', { type: 'button', class: 'btn small ghost danger' }, t('Delete'));
    del.addEventListener('click', async () => {
      if (!confirm(t('Delete this comment?'))) return;
      await busy(del, async () => {
        try {
          await api(`/api/comments/${enc(comment.id)}`, { method: 'DELETE' });
          item.remove();
          toast(t('Comment deleted.'));
        } catch (err) {
          toastError(err);
        }
      });
    });
    actions.appendChild(del);
  }
  if (admin && !mine) {
    const hide = h('button', { type: 'button', class: 'btn small ghost' }, t('Hide'));
    hide.addEventListener('click', () =>
      busy(hide, async () => {
        try {
          await api(`/api/comments/${enc(comment.id)}`, { method: 'PATCH', body: { status: 'hidden' } });
          item.remove();
          toast(t('Comment hidden.'));
        } catch (err) {
          toastError(err);
        }
      }),
    );
    actions.appendChild(hide);
  }
  if (session.loggedIn && !mine && comment.reportedByMe) {
    actions.appendChild(h('button', { type: 'button', class: 'btn small ghost', disabled: true }, t('Reported')));
  } else if (session.loggedIn && !mine) {
    const report = h('button', { type: 'button', class: 'btn small ghost' }, t('Report'));
    report.addEventListener('click', async () => {
      if (!confirm(t('Report this comment to the moderators?'))) return;
      let reported = false;
      await busy(report, async () => {
        try {
          // Reporting twice is a no-op in the API, so a retry after a lost answer is safe.
          await api(`/api/comments/${enc(comment.id)}/report`, { method: 'POST' });
          toast(t('Comment reported.'), 'success');
          reported = true;
        } catch (err) {
          toastError(err);
        }
      });
      if (reported) {
        report.textContent = t('Reported');
        report.disabled = true;
      }
    });
    actions.appendChild(report);
  }

  function startEdit() {
    const id = `comment-edit-${comment.id}`;
    const area = h('textarea', {
      id,
      maxlength: String(COMMENT_MAX),
      rows: '3',
      name: 'text',
      'aria-describedby': `${id}-error`,
    });
    area.value = comment.text;
    const error = h('p', { class: 'field-error', id: `${id}-error` });
    const save = h('button', { type: 'submit', class: 'btn small primary' }, t('Save'));
    const alert = alertBox();
    const form = apiForm(
      {
        class: 'comment-edit',
        submit: save,
        alert,
        check: () => {
          if (!area.value.trim()) fieldError(area, t('A comment cannot be empty.'));
        },
        send: async () => {
          const updated = await api(`/api/comments/${enc(comment.id)}`, {
            method: 'PUT',
            body: { text: area.value.trim() },
          });
          item.replaceWith(commentItem({ ...comment, ...updated }, list));
          toast(t('Comment updated.'), 'success');
        },
      },
      h('label', { htmlFor: id, class: 'visually-hidden' }, t('Edit your comment')),
      area,
      error,
      alert,
      h(
        'div',
        { class: 'actions' },
        save,
        h(
          'button',
          {
            type: 'button',
            class: 'btn small ghost',
            onclick: () => {
              replace(body, text);
              actions.hidden = false;
            },
          },
          t('Cancel'),
        ),
      ),
    );
    replace(body, form);
    actions.hidden = true;
    area.focus();
  }

  replace(item, header, body, actions);
  return item;
}
