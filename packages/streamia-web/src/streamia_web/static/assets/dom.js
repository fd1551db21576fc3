// Small DOM helpers. Text always goes in as text nodes: nothing here parses HTML.

import { errorText } from './api.js';
import { formatNumber, language, t } from './i18n.js';

/**
 * h('a', {href: '/', class: 'x', onclick: fn}, 'text', child, [more]) → element.
 * Strings and numbers become text nodes; null/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  let deferredValue;
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'value') {
      deferredValue = value; // after the children: a <select> needs its options first
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'checked' || key === 'selected' || key === 'htmlFor') {
      el[key] = value;
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  if (deferredValue !== undefined) el.value = deferredValue;
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

/** Disables a form's submit button while `work` runs. */
export async function busy(button, work, busyText) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (busyText) button.textContent = busyText;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = original;
  }
}

// Toasts ------------------------------------------------------------------------------------

export function toast(text, kind = 'info', ms = 5000) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const item = h(
    'div',
    { class: `toast ${kind}` },
    h('span', {}, text),
    h(
      'button',
      { type: 'button', class: 'toast-close', 'aria-label': t('Dismiss'), onclick: () => item.remove() },
      '×',
    ),
  );
  box.appendChild(item);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => item.remove(), ms);
}

export function toastError(err) {
  toast(errorText(err), 'error', 8000);
}

// Formatting --------------------------------------------------------------------------------

export function stars(average, { label = true } = {}) {
  const value = Number(average) || 0;
  const full = Math.round(value);
  const text = '★'.repeat(full) + '☆'.repeat(5 - full);
  return h(
    'span',
    { class: 'stars', role: 'img', 'aria-label': t('{value} out of 5 stars', { value: formatNumber(value, 1) }) },
    h('span', { 'aria-hidden': 'true' }, text),
    label ? h('span', { class: 'stars-value', 'aria-hidden': 'true' }, ` ${formatNumber(value, 1)}`) : null,
  );
}

export function formatDate(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleDateString(language(), { year: 'numeric', month: 'short', day: 'numeric' });
}

export function formatDateTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return date.toLocaleString(language(), {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

export function formatDuration(seconds) {
  const s = Math.round(Number(seconds) || 0);
  if (!s) return '';
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  if (hours) return t('{hours} h {minutes} min', { hours, minutes });
  if (minutes && secs) return t('{minutes} min {seconds} s', { minutes, seconds: secs });
  if (minutes) return t('{minutes} min', { minutes });
  return t('{seconds} s', { seconds: secs });
}

export function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${formatNumber(value, unit ? 1 : 0)} ${units[unit]}`;
}

// One machine's loopback names: the API writes its media URLs on its public address
// (`http://127.0.0.1:8080/...`) while the page may be open at `http://localhost:8080/`.
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * A URL of this server as a same-origin path when it names the server by another loopback
 * name (same scheme and port): the page's CSP allows only 'self' for plain-http images, and a
 * subtitle track loads only from the page's own origin. Any other URL comes back unchanged.
 */
export function mediaUrl(url) {
  if (!url) return url;
  let parsed;
  try {
    parsed = new URL(url, location.href);
  } catch {
    return url;
  }
  const here = new URL(location.href);
  const sameServer =
    parsed.origin === here.origin ||
    (parsed.protocol === here.protocol &&
      parsed.port === here.port &&
      LOOPBACK.has(parsed.hostname) &&
      LOOPBACK.has(here.hostname));
  return sameServer ? parsed.pathname + parsed.search + parsed.hash : url;
}

/** A cover image with the placeholder when there is none or it fails to load. */
export function cover(src, alt, className = 'cover') {
  const placeholder = '/assets/placeholder.svg';
  const img = h('img', {
    class: className,
    src: mediaUrl(src) || placeholder,
    alt,
    loading: 'lazy',
    decoding: 'async',
  });
  img.addEventListener('error', () => {
    if (!img.src.endsWith(placeholder)) img.src = placeholder;
  });
  return img;
}
