// The catalogue: GET /api/movies (page, limit, sort) and GET /api/movies/explore (search, category).

import { api, errorText, query } from './api.js';
import { cover, h, replace, stars } from './dom.js';
import { msg, t } from './i18n.js';
import { homeRows } from './playback.js';
import { currentRoute, go, href, link, takeScroll } from './router.js';

const PAGE_SIZE = 24;
const SORTS = [
  ['newest', msg('Newest')],
  ['title', msg('Title A–Z')],
  ['rating', msg('Top rated')],
];

let categoriesPromise = null;

/** Categories seen in the catalogue (the API has no category list of its own). */
function loadCategories() {
  if (!categoriesPromise) {
    categoriesPromise = api(`/api/movies${query({ limit: 100, sort: 'title' })}`, { auth: false })
      .then((body) => {
        const seen = new Map();
        for (const movie of body.data || []) {
          const name = (movie.category || '').trim();
          if (name && !seen.has(name.toLocaleLowerCase())) seen.set(name.toLocaleLowerCase(), name);
        }
        return [...seen.values()].sort((a, b) => a.localeCompare(b));
      })
      .catch((err) => {
        categoriesPromise = null;
        throw err;
      });
  }
  return categoriesPromise;
}

export function movieCard(movie, extra) {
  const rating = movie.rating || { average: 0, count: 0 };
  return h(
    'li',
    { class: 'card' },
    h(
      'a',
      { class: 'card-link', href: href(`/movies/${encodeURIComponent(movie.id)}`) },
      h(
        'div',
        { class: 'cover-wrap' },
        cover(movie.coverImage || movie.poster, t('Cover of {title}', { title: movie.title })),
      ),
      h(
        'div',
        { class: 'card-body' },
        h('h3', { class: 'card-title' }, movie.title),
        h(
          'p',
          { class: 'card-meta' },
          movie.category ? h('span', { class: 'chip' }, movie.category) : null,
          rating.count
            ? h(
                'span',
                { class: 'card-rating' },
                stars(rating.average),
                h('span', { class: 'muted' }, ` (${rating.count})`),
              )
            : h('span', { class: 'card-rating muted' }, t('Not rated yet')),
        ),
      ),
    ),
    extra || null,
  );
}

function readParams(q) {
  const page = Math.max(1, parseInt(q.get('page') || '1', 10) || 1);
  const sort = SORTS.some(([value]) => value === q.get('sort')) ? q.get('sort') : 'newest';
  return { page, sort, search: q.get('search') || '', category: q.get('category') || '' };
}

function urlFor(params) {
  const text = new URLSearchParams(
    Object.entries(params).filter(
      ([key, value]) => value && !(key === 'page' && value === 1) && !(key === 'sort' && value === 'newest'),
    ),
  ).toString();
  return `/${text ? `?${text}` : ''}`;
}

export function catalogueView(main, _match, routeQuery) {
  let params = readParams(routeQuery);
  let requestId = 0;
  let savedScroll = takeScroll(); // back from a movie: where the list was

  const searchInput = h('input', {
    type: 'search',
    id: 'catalogue-search',
    name: 'search',
    placeholder: t('Search titles and descriptions…'),
    autocomplete: 'off',
    value: params.search,
  });
  const categorySelect = h(
    'select',
    { id: 'catalogue-category', name: 'category' },
    h('option', { value: '' }, t('All categories')),
  );
  const sortSelect = h(
    'select',
    { id: 'catalogue-sort', name: 'sort', value: params.sort },
    SORTS.map(([value, text]) => h('option', { value }, t(text))),
  );
  const status = h('p', { class: 'result-count', role: 'status', 'aria-live': 'polite' });
  const grid = h('ul', { class: 'grid', 'aria-label': t('Movies') });
  const pager = h('nav', { class: 'pager', 'aria-label': t('Pagination') });

  function setCategories(list) {
    const current = params.category;
    const names = [...list];
    if (current && !names.some((n) => n.toLocaleLowerCase() === current.toLocaleLowerCase())) names.push(current);
    replace(
      categorySelect,
      h('option', { value: '' }, t('All categories')),
      names.map((name) => h('option', { value: name }, name)),
    );
    categorySelect.value = current;
  }
  setCategories([]);
  loadCategories().then(setCategories, () => {});

  /** Typing replaces the history entry; a chosen filter or a submitted search adds one. */
  function apply(next, { push = false } = {}) {
    const wanted = { ...params, ...next };
    const target = urlFor(wanted);
    const { query } = currentRoute();
    if (push && urlFor(readParams(query)) !== target) {
      go(target); // the navigation calls update()
      return;
    }
    params = wanted;
    history.replaceState(null, '', target);
    load();
  }

  let typingTimer = 0;
  searchInput.addEventListener('input', () => {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => apply({ search: searchInput.value.trim(), page: 1 }), 350);
  });
  // A pending search is applied together with the new filter, not after it.
  const withSearch = (next) => {
    clearTimeout(typingTimer);
    apply({ search: searchInput.value.trim(), page: 1, ...next }, { push: true });
  };
  categorySelect.addEventListener('change', () => withSearch({ category: categorySelect.value }));
  sortSelect.addEventListener('change', () => withSearch({ sort: sortSelect.value }));

  const form = h(
    'form',
    {
      class: 'toolbar',
      role: 'search',
      onsubmit: (event) => {
        event.preventDefault();
        clearTimeout(typingTimer);
        apply({ search: searchInput.value.trim(), page: 1 }, { push: true });
      },
    },
    h('div', { class: 'toolbar-field grow' }, h('label', { htmlFor: 'catalogue-search' }, t('Search')), searchInput),
    h('div', { class: 'toolbar-field' }, h('label', { htmlFor: 'catalogue-category' }, t('Category')), categorySelect),
    h('div', { class: 'toolbar-field' }, h('label', { htmlFor: 'catalogue-sort' }, t('Sort by')), sortSelect),
    h('button', { type: 'submit', class: 'btn primary' }, t('Search')),
  );

  // Continue watching, Trending and Most watched: on the plain catalogue, not in a search.
  const rows = h('div', { class: 'movie-rows' });
  const showRows = () => {
    rows.hidden = Boolean(params.search || params.category) || params.page > 1;
  };
  showRows();
  // The rows arrive on their own: a scroll position restored before them would land a row
  // block too high (it was measured with them above the grid).
  const rowsShown = homeRows(rows).catch(() => {});
  replace(main, h('section', { class: 'page' }, h('h1', {}, t('Browse movies')), rows, form, status, grid, pager));

  async function load() {
    const id = ++requestId;
    const filtered = Boolean(params.search || params.category);
    const common = { page: params.page, limit: PAGE_SIZE, sort: params.sort };
    const url = filtered
      ? `/api/movies/explore${query({ search: params.search, category: params.category, ...common })}`
      : `/api/movies${query(common)}`;
    grid.setAttribute('aria-busy', 'true');
    status.textContent = t('Loading…');
    let body;
    try {
      body = await api(url, { auth: false });
    } catch (err) {
      if (id !== requestId) return;
      grid.removeAttribute('aria-busy');
      replace(grid);
      replace(pager);
      replace(
        status,
        h('span', { class: 'notice error inline' }, errorText(err)),
        ' ',
        h('button', { type: 'button', class: 'btn small', onclick: load }, t('Retry')),
      );
      return;
    }
    if (id !== requestId) return;
    grid.removeAttribute('aria-busy');
    const movies = body.data || [];
    const total = Number(body.total ?? movies.length);
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    if (!movies.length && params.page > 1) {
      replace(status, t('No movies on this page. '), link(urlFor({ ...params, page: 1 }), t('Go to page 1')), '.');
    } else if (!movies.length && filtered) {
      replace(
        status,
        t('No movies match your search. '),
        h('button', { type: 'button', class: 'btn small', onclick: () => go('/') }, t('Clear filters')),
      );
    } else if (!movies.length) {
      status.textContent = t('The catalogue is empty.');
    } else {
      const count = total === 1 ? t('1 movie') : t('{count} movies', { count: total });
      const page = t('Page {page} of {pages}', { page: params.page, pages });
      status.textContent = `${count}${pages > 1 ? ` · ${page}` : ''}`;
    }
    replace(
      grid,
      movies.map((movie) => movieCard(movie)),
    );
    renderPager(pages);
    if (savedScroll !== null) {
      const y = savedScroll;
      savedScroll = null;
      rowsShown.then(() => {
        if (id === requestId) window.scrollTo(0, y);
      });
    }
  }

  function renderPager(pages) {
    // Past the last page the status line links to page 1; "Page 99 of 1" would only confuse.
    if (pages <= 1 || params.page > pages) {
      replace(pager);
      return;
    }
    const prev =
      params.page > 1
        ? h('a', { class: 'btn', href: urlFor({ ...params, page: params.page - 1 }), rel: 'prev' }, t('← Previous'))
        : h('span', { class: 'btn disabled', 'aria-disabled': 'true' }, t('← Previous'));
    const next =
      params.page < pages
        ? h('a', { class: 'btn', href: urlFor({ ...params, page: params.page + 1 }), rel: 'next' }, t('Next →'))
        : h('span', { class: 'btn disabled', 'aria-disabled': 'true' }, t('Next →'));
    replace(
      pager,
      prev,
      h('span', { class: 'pager-status' }, t('Page {page} of {pages}', { page: params.page, pages })),
      next,
    );
  }

  load();
  return {
    update(_m, q) {
      const next = readParams(q);
      const changed = JSON.stringify(next) !== JSON.stringify(params);
      params = next;
      if (document.activeElement !== searchInput) searchInput.value = params.search;
      categorySelect.value = params.category;
      sortSelect.value = params.sort;
      if (changed) {
        showRows();
        load();
        main.querySelector('h1')?.scrollIntoView({ block: 'start' });
      }
    },
    title: t('Browse'),
  };
}
