// Administration (role "admin"): upload, edit and delete movies, subtitles, comment moderation.

import { api, enc, errorText, query, session, upload } from './api.js';
import { busy, cover, formatBytes, formatDateTime, h, replace, toast, toastError } from './dom.js';
import { alertBox, apiForm, field, required, showSuccess, successBox } from './forms.js';
import { msg, t } from './i18n.js';
import { go, href, link, requireLogin } from './router.js';

const VIDEO_ACCEPT = '.mp4,.mov,.mkv,.webm,.avi,video/mp4,video/quicktime,video/x-matroska,video/webm,video/x-msvideo';
const LIST_SIZE = 20;
// Where a movie's video is kept (`provider`) and a comment's moderation status, for people.
const PROVIDER_TEXT = { local: msg('This server'), cloudinary: msg('Cloudinary'), external: msg('Another site') };
const STATUS_TEXT = { flagged: msg('Reported'), hidden: msg('Hidden'), visible: msg('Visible') };

function guard(main) {
  if (!requireLogin()) return false;
  if (!session.isAdmin) {
    replace(
      main,
      h(
        'section',
        { class: 'page narrow' },
        h('h1', {}, t('Administrators only')),
        h('p', {}, t('Your account cannot manage the catalogue.')),
        h('p', {}, link('/', t('← Back to the catalogue'))),
      ),
    );
    return false;
  }
  return true;
}

export function adminView(main) {
  if (!guard(main)) return { title: t('Admin') };
  const moviesBox = h('section', { class: 'panel', 'aria-labelledby': 'admin-movies' });
  const moderationBox = h('section', { class: 'panel', 'aria-labelledby': 'admin-moderation' });
  const refreshMovies = renderMovieTable(moviesBox);
  replace(
    main,
    h(
      'section',
      { class: 'page' },
      h('h1', {}, t('Administration')),
      h('div', { class: 'columns' }, uploadForm(refreshMovies), urlForm(refreshMovies)),
      moviesBox,
      moderationBox,
    ),
  );
  renderModeration(moderationBox);
  return { title: t('Admin') };
}

// Upload ------------------------------------------------------------------------------------

function uploadForm(onDone) {
  const file = field(t('Video file'), 'video', {
    type: 'file',
    accept: VIDEO_ACCEPT,
    required: true,
    hint: t('MP4, MOV, MKV, WebM or AVI'),
  });
  const title = field(t('Title'), 'title', { maxlength: '200', required: true });
  const category = field(t('Category'), 'category', { maxlength: '100' });
  const description = field(t('Description'), 'description', { textarea: true, rows: '3', maxlength: '5000' });
  const coverFile = field(t('Cover image'), 'cover', {
    type: 'file',
    accept: 'image/png,image/jpeg,image/webp',
    hint: t('PNG, JPEG or WebP (optional: without one, a frame of the video is the poster)'),
  });
  const progress = h('progress', { max: '100', value: '0', 'aria-label': t('Upload progress') });
  const progressText = h('span', { class: 'muted', 'aria-live': 'polite' });
  const progressWrap = h('div', { class: 'progress', hidden: true }, progress, progressText);
  const alert = alertBox();
  const done = successBox();
  const submit = h('button', { type: 'submit', class: 'btn primary' }, t('Upload'));
  const cancel = h('button', { type: 'button', class: 'btn ghost', hidden: true }, t('Cancel upload'));
  let current = null;

  file.input.addEventListener('change', () => {
    const chosen = file.input.files[0];
    if (chosen && !title.input.value.trim())
      title.input.value = chosen.name.replace(/\.[^.]+$/, '').replace(/[_-]+/g, ' ');
  });
  cancel.addEventListener('click', () => current?.abort());

  const form = apiForm(
    {
      class: 'panel card-form',
      submit,
      alert,
      done,
      busyText: t('Uploading…'),
      check: () => {
        required(file, t('Choose a video file.'));
        required(title, t('A title is required.'));
      },
      send: async () => {
        const chosen = file.input.files[0];
        const data = new FormData();
        data.append('title', title.input.value.trim());
        if (description.input.value.trim()) data.append('description', description.input.value.trim());
        if (category.input.value.trim()) data.append('category', category.input.value.trim());
        if (coverFile.input.files[0]) data.append('cover', coverFile.input.files[0]);
        data.append('video', chosen); // after the text fields: the service streams the file
        progress.value = 0;
        progressText.textContent = t('{percent} % of {size}', { percent: 0, size: formatBytes(chosen.size) });
        progressWrap.hidden = false;
        cancel.hidden = false;
        current = upload('/api/movies/upload', data, (loaded, total) => {
          const pct = total ? Math.floor((loaded / total) * 100) : 0;
          progress.value = pct;
          progressText.textContent =
            pct >= 100 ? t('Processing…') : t('{percent} % of {size}', { percent: pct, size: formatBytes(total) });
        });
        try {
          const body = await current.promise;
          const movie = body?.data;
          form.reset();
          replace(
            done,
            `${t('Movie uploaded.')} `,
            movie ? link(`/movies/${enc(movie.id)}`, t('Open “{title}”', { title: movie.title })) : null,
            movie ? ' · ' : null,
            movie ? link(`/admin/movies/${enc(movie.id)}`, t('add subtitles')) : null,
          );
          done.hidden = false;
          onDone();
        } finally {
          current = null;
          cancel.hidden = true;
          progressWrap.hidden = true;
        }
      },
      onError: (err) => {
        if (err?.name !== 'AbortError') return false;
        replace(alert, t('Upload cancelled.'));
        alert.hidden = false;
        return true;
      },
    },
    h('h2', {}, t('Upload a movie')),
    alert,
    done,
    file.wrap,
    title.wrap,
    category.wrap,
    description.wrap,
    coverFile.wrap,
    progressWrap,
    h('div', { class: 'actions' }, submit, cancel),
  );
  return form;
}

function urlForm(onDone) {
  const videoUrl = field(t('Video URL'), 'videoUrl', { type: 'url', required: true, placeholder: 'https://…' });
  const title = field(t('Title'), 'title', { maxlength: '200', required: true });
  const category = field(t('Category'), 'category', { maxlength: '100' });
  const coverImage = field(t('Cover image URL'), 'coverImage', { type: 'url', placeholder: t('https://… (optional)') });
  const description = field(t('Description'), 'description', { textarea: true, rows: '3', maxlength: '5000' });
  const alert = alertBox();
  const done = successBox();
  const submit = h('button', { type: 'submit', class: 'btn primary' }, t('Add movie'));
  const form = apiForm(
    {
      class: 'panel card-form',
      submit,
      alert,
      done,
      busyText: t('Adding…'),
      send: async () => {
        const body = { title: title.input.value.trim(), videoUrl: videoUrl.input.value.trim() };
        if (category.input.value.trim()) body.category = category.input.value.trim();
        if (description.input.value.trim()) body.description = description.input.value.trim();
        if (coverImage.input.value.trim()) body.coverImage = coverImage.input.value.trim();
        await api('/api/movies', { method: 'POST', body });
        form.reset();
        showSuccess(done, t('Movie added.'));
        onDone();
      },
    },
    h('h2', {}, t('Add a movie by URL')),
    h('p', { class: 'muted' }, t('For a video that already lives elsewhere (https).')),
    alert,
    done,
    videoUrl.wrap,
    title.wrap,
    category.wrap,
    coverImage.wrap,
    description.wrap,
    h('div', { class: 'actions' }, submit),
  );
  return form;
}

// Movie list --------------------------------------------------------------------------------

function renderMovieTable(container) {
  let page = 1;
  const body = h('div', {});
  replace(container, h('h2', { id: 'admin-movies' }, t('Movies')), body);

  async function load() {
    replace(body, h('p', { class: 'loading' }, t('Loading…')));
    let res;
    try {
      res = await api(`/api/movies${query({ page, limit: LIST_SIZE, sort: 'newest' })}`, { auth: false });
    } catch (err) {
      replace(
        body,
        h(
          'div',
          { class: 'notice error' },
          errorText(err),
          ' ',
          h('button', { type: 'button', class: 'btn small', onclick: load }, t('Retry')),
        ),
      );
      return;
    }
    const movies = res.data || [];
    const pages = Math.max(1, Math.ceil((res.total || 0) / LIST_SIZE));
    const rows = movies.map((movie) => {
      const del = h('button', { type: 'button', class: 'btn small ghost danger' }, t('Delete'));
      del.addEventListener('click', () => deleteMovie(movie, del, load));
      return h(
        'tr',
        {},
        h('th', { scope: 'row' }, h('a', { href: href(`/movies/${enc(movie.id)}`) }, movie.title)),
        h('td', {}, movie.category || '—'),
        h('td', {}, PROVIDER_TEXT[movie.provider] ? t(PROVIDER_TEXT[movie.provider]) : movie.provider || '—'),
        h('td', {}, String((movie.subtitles || []).length)),
        h('td', {}, `${movie.rating?.average || 0} (${movie.rating?.count || 0})`),
        h(
          'td',
          { class: 'row-actions' },
          h('a', { class: 'btn small ghost', href: href(`/admin/movies/${enc(movie.id)}`) }, t('Edit')),
          del,
        ),
      );
    });
    const pager =
      pages > 1
        ? h(
            'div',
            { class: 'pager' },
            h(
              'button',
              {
                type: 'button',
                class: 'btn small',
                disabled: page <= 1,
                onclick: () => {
                  page -= 1;
                  load();
                },
              },
              t('← Previous'),
            ),
            h('span', { class: 'pager-status' }, t('Page {page} of {pages}', { page, pages })),
            h(
              'button',
              {
                type: 'button',
                class: 'btn small',
                disabled: page >= pages,
                onclick: () => {
                  page += 1;
                  load();
                },
              },
              t('Next →'),
            ),
          )
        : null;
    replace(
      body,
      movies.length
        ? h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              {},
              h('caption', { class: 'visually-hidden' }, t('Movies in the catalogue')),
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  [t('Title'), t('Category'), t('Storage'), t('Subtitles'), t('Rating'), t('Actions')].map((name) =>
                    h('th', { scope: 'col' }, name),
                  ),
                ),
              ),
              h('tbody', {}, rows),
            ),
          )
        : h('p', { class: 'empty' }, t('No movies yet.')),
      pager,
    );
  }
  load();
  return () => {
    page = 1;
    load();
  };
}

async function deleteMovie(movie, button, after) {
  if (
    !confirm(
      t('Delete “{title}”? Its video, subtitles, ratings, comments and favourites go too.', { title: movie.title }),
    )
  )
    return;
  await busy(button, async () => {
    try {
      await api(`/api/movies/${enc(movie.id)}`, { method: 'DELETE' });
      toast(t('Movie deleted.'), 'success');
      after();
    } catch (err) {
      toastError(err);
    }
  });
}

// Moderation --------------------------------------------------------------------------------

function renderModeration(container) {
  const body = h('div', {});
  replace(
    container,
    h('h2', { id: 'admin-moderation' }, t('Comment moderation')),
    h('p', { class: 'muted' }, t('Reported and hidden comments.')),
    body,
  );

  async function load() {
    replace(body, h('p', { class: 'loading' }, t('Loading…')));
    let items;
    try {
      items = await api(`/api/comments/moderation${query({ limit: 100 })}`);
    } catch (err) {
      replace(
        body,
        h(
          'div',
          { class: 'notice error' },
          errorText(err),
          ' ',
          h('button', { type: 'button', class: 'btn small', onclick: load }, t('Retry')),
        ),
      );
      return;
    }
    const comments = Array.isArray(items) ? items : items.data || [];
    if (!comments.length) {
      replace(body, h('p', { class: 'empty' }, t('Nothing to review.')));
      return;
    }
    replace(
      body,
      h(
        'ul',
        { class: 'comment-list' },
        comments.map((c) => moderationItem(c, load)),
      ),
    );
  }
  load();
}

function moderationItem(comment, reload) {
  const author = `${comment.user?.firstName || ''} ${comment.user?.lastName || ''}`.trim() || t('Former member');
  const setStatus = (status, button) =>
    busy(button, async () => {
      try {
        await api(`/api/comments/${enc(comment.id)}`, { method: 'PATCH', body: { status } });
        toast(status === 'hidden' ? t('Comment hidden.') : t('Comment visible again.'), 'success');
        reload();
      } catch (err) {
        toastError(err);
      }
    });
  const show = h('button', { type: 'button', class: 'btn small' }, t('Make visible'));
  show.addEventListener('click', () => setStatus('visible', show));
  const hide = h('button', { type: 'button', class: 'btn small ghost' }, t('Hide'));
  hide.addEventListener('click', () => setStatus('hidden', hide));
  hide.hidden = comment.status === 'hidden';
  const del = h('button', { type: 'button', class: 'btn small ghost danger' }, t('Delete'));
  del.addEventListener('click', async () => {
    if (!confirm(t('Delete this comment for good?'))) return;
    await busy(del, async () => {
      try {
        await api(`/api/comments/${enc(comment.id)}`, { method: 'DELETE' });
        toast(t('Comment deleted.'));
        reload();
      } catch (err) {
        toastError(err);
      }
    });
  });
  return h(
    'li',
    { class: 'comment' },
    h(
      'header',
      { class: 'comment-header' },
      h('strong', {}, author),
      h('time', { class: 'muted', datetime: comment.createdAt || '' }, formatDateTime(comment.createdAt)),
      h(
        'span',
        { class: `chip small ${comment.status === 'hidden' ? 'warn' : ''}` },
        t(STATUS_TEXT[comment.status] || STATUS_TEXT.flagged),
      ),
      comment.reports
        ? h(
            'span',
            { class: 'muted' },
            comment.reports === 1 ? t('1 report') : t('{count} reports', { count: comment.reports }),
          )
        : null,
      h('a', { href: href(`/movies/${enc(comment.movieId)}`) }, t('View movie')),
    ),
    h('div', { class: 'comment-body' }, h('p', { class: 'comment-text' }, comment.text)),
    h('div', { class: 'comment-actions' }, show, hide, del),
  );
}

// Edit one movie ----------------------------------------------------------------------------

export async function adminMovieView(main, [rawId]) {
  if (!guard(main)) return { title: t('Admin') };
  const id = decodeURIComponent(rawId);
  replace(main, h('p', { class: 'loading' }, t('Loading movie…')));
  let movie;
  try {
    movie = (await api(`/api/movies/${enc(id)}`, { auth: false })).data;
  } catch (err) {
    replace(
      main,
      h(
        'section',
        { class: 'page narrow' },
        h('h1', {}, t('Movie unavailable')),
        h('p', { class: 'notice error' }, errorText(err)),
        h('p', {}, link('/admin', t('← Administration'))),
      ),
    );
    return { title: t('Admin') };
  }
  const subtitlesBox = h('section', { class: 'panel', 'aria-labelledby': 'subs-heading' });
  const del = h('button', { type: 'button', class: 'btn danger' }, t('Delete this movie'));
  del.addEventListener('click', () => deleteMovie(movie, del, () => go('/admin')));
  replace(
    main,
    h(
      'section',
      { class: 'page' },
      h(
        'p',
        { class: 'breadcrumb' },
        link('/admin', t('← Administration')),
        ' · ',
        link(`/movies/${enc(id)}`, t('View movie')),
      ),
      h('h1', {}, t('Edit “{title}”', { title: movie.title })),
      h('div', { class: 'columns' }, editForm(movie), subtitlesBox),
      h(
        'section',
        { class: 'panel danger-zone' },
        h('h2', {}, t('Danger zone')),
        h('p', { class: 'muted' }, t('Deleting removes the video and everything attached to it.')),
        del,
      ),
    ),
  );
  renderSubtitles(subtitlesBox, movie);
  return { title: t('Edit “{title}”', { title: movie.title }) };
}

function editForm(movie) {
  const title = field(t('Title'), 'title', { maxlength: '200', value: movie.title || '' });
  const category = field(t('Category'), 'category', { maxlength: '100', value: movie.category || '' });
  const description = field(t('Description'), 'description', { textarea: true, rows: '5', maxlength: '5000' });
  description.input.value = movie.description || '';
  const coverImage = field(t('Cover image URL'), 'coverImage', {
    type: 'url',
    value: movie.coverImage && /^https?:/i.test(movie.coverImage) ? movie.coverImage : '',
    placeholder: movie.coverImage ? t('Current: {url}', { url: movie.coverImage }) : 'https://…',
    hint: t('Leave empty to keep the current cover.'),
  });
  // Or a file: PUT /api/movies/:id/cover (the server re-encodes it).
  const coverFile = field(t('Cover image'), 'cover', {
    type: 'file',
    accept: 'image/png,image/jpeg,image/webp',
    hint: t('PNG, JPEG or WebP: replaces the current cover.'),
  });
  const preview = h('div', { class: 'cover-preview' });
  const showCover = () =>
    replace(preview, cover(movie.coverImage, t('Cover of {title}', { title: movie.title }), 'cover small'));
  showCover();
  const videoUrl =
    movie.provider === 'external'
      ? field(t('Video URL'), 'videoUrl', { type: 'url', value: movie.videoUrl || '' })
      : null;
  const alert = alertBox();
  const done = successBox();
  const submit = h('button', { type: 'submit', class: 'btn primary' }, t('Save changes'));
  const form = apiForm(
    {
      class: 'panel card-form',
      submit,
      alert,
      done,
      busyText: t('Saving…'),
      send: async () => {
        const body = {};
        const newTitle = title.input.value.trim();
        if (newTitle !== movie.title) body.title = newTitle;
        const c = category.input.value.trim();
        if (c !== (movie.category || '')) body.category = c || null;
        const d = description.input.value.trim();
        if (d !== (movie.description || '')) body.description = d || null;
        const cv = coverImage.input.value.trim();
        if (cv && cv !== movie.coverImage) body.coverImage = cv;
        if (videoUrl) {
          const v = videoUrl.input.value.trim();
          if (v && v !== movie.videoUrl) body.videoUrl = v;
        }
        const image = coverFile.input.files[0];
        if (!Object.keys(body).length && !image) {
          showSuccess(done, t('Nothing to change.'));
          return;
        }
        if (Object.keys(body).length) {
          const res = await api(`/api/movies/${enc(movie.id)}`, { method: 'PUT', body });
          Object.assign(movie, res.data || body);
        }
        if (image) {
          const data = new FormData();
          data.append('cover', image);
          const res = await upload(`/api/movies/${enc(movie.id)}/cover`, data, null, 'PUT').promise;
          Object.assign(movie, res?.data || {});
          coverFile.input.value = '';
        }
        showCover();
        showSuccess(done, t('Movie updated.'));
        const heading = document.querySelector('main h1');
        if (heading) heading.textContent = t('Edit “{title}”', { title: movie.title });
      },
    },
    h('h2', {}, t('Details')),
    alert,
    done,
    title.wrap,
    category.wrap,
    description.wrap,
    preview,
    coverImage.wrap,
    coverFile.wrap,
    videoUrl ? videoUrl.wrap : null,
    h('div', { class: 'actions' }, submit),
  );
  return form;
}

function renderSubtitles(container, movie) {
  const list = h('ul', { class: 'plain-list' });
  const file = field(t('Subtitle file'), 'subtitle', {
    type: 'file',
    accept: '.vtt,.srt,text/vtt',
    hint: t('WebVTT or SRT. A file in the same language replaces the old one.'),
  });
  const language = field(t('Language code'), 'language', { placeholder: t('es, en, pt-br…'), maxlength: '35' });
  const label = field(t('Label'), 'label', { placeholder: t('Español, English…'), maxlength: '100' });
  const alert = alertBox();
  const submit = h('button', { type: 'submit', class: 'btn primary' }, t('Add subtitles'));

  function draw(subtitles) {
    replace(
      list,
      subtitles.length
        ? subtitles.map((s) =>
            h(
              'li',
              {},
              h('span', { class: 'chip small' }, s.language),
              ' ',
              s.label || '',
              ' ',
              s.url ? h('a', { href: s.url, target: '_blank', rel: 'noopener' }, t('file')) : null,
            ),
          )
        : h('li', { class: 'muted' }, t('No subtitles yet.')),
    );
  }

  async function load() {
    try {
      const body = await api(`/api/movies/${enc(movie.id)}/subtitles`, { auth: false });
      draw(body.subtitles || []);
    } catch (err) {
      replace(list, h('li', { class: 'notice error' }, errorText(err)));
    }
  }

  const form = apiForm(
    {
      class: 'card-form',
      submit,
      alert,
      busyText: t('Uploading…'),
      check: () => {
        required(file, t('Choose a .vtt or .srt file.'));
        required(language, t('A language code is required.'));
      },
      send: async () => {
        const data = new FormData();
        data.append('language', language.input.value.trim());
        if (label.input.value.trim()) data.append('label', label.input.value.trim());
        data.append('subtitle', file.input.files[0]);
        const res = await upload(`/api/movies/${enc(movie.id)}/subtitles`, data).promise;
        draw(res?.data || []);
        form.reset();
        toast(t('Subtitles added.'), 'success');
      },
    },
    alert,
    file.wrap,
    h('div', { class: 'field-row' }, language.wrap, label.wrap),
    h('div', { class: 'actions' }, submit),
  );
  replace(container, h('h2', { id: 'subs-heading' }, t('Subtitles')), list, h('h3', {}, t('Add or replace')), form);
  load();
}
