// The signed-in user's own things: favourites (GET /api/favorites) and ratings.

import { ApiError, api, enc, errorText, session } from './api.js';
import { busy, cover, formatDate, h, replace, stars, toast, toastError } from './dom.js';
import { t } from './i18n.js';
import { href, link, requireLogin } from './router.js';

function failure(err, retry) {
  return h(
    'div',
    { class: 'notice error', role: 'alert' },
    h('span', {}, errorText(err)),
    ' ',
    h('button', { type: 'button', class: 'btn small', onclick: retry }, t('Retry')),
  );
}

// Favourites --------------------------------------------------------------------------------

export async function favoritesView(main) {
  if (!requireLogin()) return null;
  const body = h('div', {}, h('p', { class: 'loading' }, t('Loading your list…')));
  replace(main, h('section', { class: 'page' }, h('h1', {}, t('My list')), body));

  async function load() {
    let favorites;
    try {
      favorites = await api('/api/favorites');
    } catch (err) {
      replace(body, failure(err, load));
      return;
    }
    favorites = Array.isArray(favorites) ? favorites : [];
    if (!favorites.length) {
      replace(
        body,
        h(
          'p',
          { class: 'empty' },
          t('Your list is empty. '),
          link('/', t('Browse the catalogue')),
          t(' and add movies with “Add to my list”.'),
        ),
      );
      return;
    }
    const grid = h('ul', { class: 'grid', 'aria-label': t('My list') });
    for (const fav of favorites) grid.appendChild(favoriteCard(fav, grid, () => load()));
    replace(
      body,
      h(
        'p',
        { class: 'result-count' },
        favorites.length === 1 ? t('1 movie') : t('{count} movies', { count: favorites.length }),
      ),
      grid,
    );
  }
  await load();
  return { title: t('My list') };
}

function favoriteCard(fav, grid, reload) {
  const item = h('li', { class: 'card' });
  const noteText = h('p', { class: 'card-note' }, fav.note || '');
  noteText.hidden = !fav.note;
  const remove = h('button', { type: 'button', class: 'btn small ghost danger' }, t('Remove'));
  remove.addEventListener('click', () =>
    busy(remove, async () => {
      try {
        await api(`/api/favorites/${enc(fav.movieId)}`, { method: 'DELETE' });
        item.remove();
        toast(t('Removed “{title}” from your list.', { title: fav.title || t('Untitled') }));
        if (!grid.children.length) reload();
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          item.remove();
          return;
        }
        toastError(err);
      }
    }),
  );
  const noteButton = h(
    'button',
    { type: 'button', class: 'btn small ghost' },
    fav.note ? t('Edit note') : t('Add note'),
  );
  noteButton.addEventListener('click', async () => {
    const value = prompt(t('A note for this movie (leave empty to clear):'), fav.note || '');
    if (value === null) return;
    await busy(noteButton, async () => {
      try {
        const res = await api(`/api/favorites/${enc(fav.id)}`, { method: 'PUT', body: { note: value.trim() } });
        fav.note = res?.favorite?.note ?? value.trim();
        noteText.textContent = fav.note || '';
        noteText.hidden = !fav.note;
        toast(t('Note saved.'), 'success');
      } catch (err) {
        toastError(err);
      }
    });
    noteButton.textContent = fav.note ? t('Edit note') : t('Add note');
  });
  replace(
    item,
    h(
      'a',
      { class: 'card-link', href: href(`/movies/${enc(fav.movieId)}`) },
      h(
        'div',
        { class: 'cover-wrap' },
        cover(fav.poster, t('Cover of {title}', { title: fav.title || t('Untitled') })),
      ),
      h(
        'div',
        { class: 'card-body' },
        h('h3', { class: 'card-title' }, fav.title || t('Untitled')),
        h(
          'p',
          { class: 'card-meta' },
          fav.category ? h('span', { class: 'chip' }, fav.category) : null,
          h('span', { class: 'muted' }, t('Added {date}', { date: formatDate(fav.createdAt) })),
        ),
      ),
    ),
    noteText,
    h('div', { class: 'card-actions' }, noteButton, remove),
  );
  return item;
}

// Ratings -----------------------------------------------------------------------------------

export async function ratingsView(main) {
  if (!requireLogin()) return null;
  const body = h('div', {}, h('p', { class: 'loading' }, t('Loading your ratings…')));
  replace(main, h('section', { class: 'page narrow' }, h('h1', {}, t('My ratings')), body));
  const user = session.user;

  async function load() {
    let me = user;
    try {
      if (!me?.id) {
        me = (await api('/api/users/me')).user;
        session.setUser(me);
      }
      const ratings = await api(`/api/ratings/${enc(me.id)}`);
      const list = Array.isArray(ratings) ? ratings : ratings.data || [];
      if (!list.length) {
        replace(
          body,
          h(
            'p',
            { class: 'empty' },
            t('You have not rated any movie yet. '),
            link('/', t('Find something to watch')),
            '.',
          ),
        );
        return;
      }
      const rows = h('ul', { class: 'rating-list' });
      const count = list.length === 1 ? t('1 rating') : t('{count} ratings', { count: list.length });
      replace(body, h('p', { class: 'result-count' }, count), rows);
      list.sort((a, b) => String(b.updatedAt || '').localeCompare(String(a.updatedAt || '')));
      for (const rating of list) rows.appendChild(ratingRow(rating));
    } catch (err) {
      replace(body, failure(err, load));
    }
  }
  await load();
  return { title: t('My ratings') };
}

const titles = new Map();

function movieTitle(movieId) {
  if (!titles.has(movieId)) {
    titles.set(
      movieId,
      api(`/api/movies/${enc(movieId)}`, { auth: false })
        .then((body) => body.data)
        .catch((err) => {
          titles.delete(movieId);
          return err instanceof ApiError && err.status === 404 ? { deleted: true } : null;
        }),
    );
  }
  return titles.get(movieId);
}

function ratingRow(rating) {
  const title = h('span', {}, '…');
  const thumb = h('div', { class: 'thumb' });
  const row = h('li', { class: 'rating-row' });
  const select = h(
    'select',
    { id: `rating-${rating.id}`, 'aria-label': t('Change rating') },
    [5, 4, 3, 2, 1].map((n) =>
      h(
        'option',
        { value: String(n), 'aria-label': n === 1 ? t('1 star') : t('{count} stars', { count: n }) },
        `${'★'.repeat(n)} (${n})`,
      ),
    ),
  );
  select.value = String(rating.rating);
  select.addEventListener('change', async () => {
    select.disabled = true;
    try {
      await api(`/api/ratings/${enc(rating.id)}`, {
        method: 'PUT',
        body: { rating: Number(select.value) },
      });
      rating.rating = Number(select.value);
      toast(t('Rating updated.'), 'success');
    } catch (err) {
      select.value = String(rating.rating);
      toastError(err);
    } finally {
      select.disabled = false;
    }
  });
  const remove = h('button', { type: 'button', class: 'btn small ghost danger' }, t('Remove'));
  remove.addEventListener('click', () =>
    busy(remove, async () => {
      try {
        await api(`/api/ratings/${enc(rating.id)}`, { method: 'DELETE' });
        row.remove();
        toast(t('Rating removed.'));
      } catch (err) {
        toastError(err);
      }
    }),
  );
  replace(
    row,
    thumb,
    h(
      'div',
      { class: 'rating-info' },
      h('strong', {}, title),
      h('span', { class: 'muted' }, t('Rated {date}', { date: formatDate(rating.updatedAt || rating.createdAt) })),
      stars(rating.rating, { label: false }),
    ),
    h('div', { class: 'rating-controls' }, select, remove),
  );
  movieTitle(rating.movieId).then((movie) => {
    if (movie?.title) {
      replace(title, h('a', { href: href(`/movies/${enc(rating.movieId)}`) }, movie.title));
      replace(thumb, cover(movie.coverImage, t('Cover of {title}', { title: movie.title }), 'cover small'));
    } else if (movie?.deleted) {
      replace(title, t('A movie that is no longer available'));
    } else {
      replace(title, h('a', { href: href(`/movies/${enc(rating.movieId)}`) }, t('Movie')));
    }
  });
  return row;
}
