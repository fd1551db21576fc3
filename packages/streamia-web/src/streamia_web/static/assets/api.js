// The Streamia HTTP API (API.md) as the web app uses it: JSON calls, uploads, the session.

import { language, msg, t } from './i18n.js';

const TOKEN_KEY = 'streamia.token';
const USER_KEY = 'streamia.user';

/** An API answer that was not 2xx (or no answer at all: status 0). */
export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    // The server's English text, for logs; users see `errorText(err)`, chosen by `code`.
    super((body && (body.message || body.error)) || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    this.code = body?.code;
    this.retryAfter = retryAfter;
    const details = body?.details;
    this.fieldErrors = details?.fieldErrors || {};
    this.formErrors = details?.formErrors || [];
  }
}

const UNAVAILABLE = msg('The service is temporarily unavailable. Please try again in a moment.');

// What the user reads for each error `code` of API.md's error shape: the server's `message`
// is English, so the text comes from here, in the user's language.
const CODE_TEXT = {
  no_token: msg('Log in to continue.'),
  invalid_token: msg('Your session has expired. Please log in again.'),
  account_deleted: msg('Your session has expired. Please log in again.'),
  invalid_credentials: msg('Invalid email or password.'),
  email_taken: msg('An account with this email already exists.'),
  user_not_found: msg('Account not found.'),
  invalid_reset_token: msg('This reset link is invalid or has expired.'),
  admin_required: msg('Only administrators can do this.'),
  forbidden: msg('You are not allowed to do this.'),
  cors_forbidden: msg('You are not allowed to do this.'),
  not_owner: msg('You can only change what is yours.'),
  movie_not_found: msg('This movie does not exist or has been removed.'),
  video_not_found: msg('The video file was not found.'),
  media_not_found: msg('The file was not found.'),
  rating_not_found: msg('This rating no longer exists.'),
  comment_not_found: msg('This comment no longer exists.'),
  favorite_not_found: msg('This movie is not in your list.'),
  already_favorite: msg('This movie is already in your list.'),
  progress_not_found: msg('There is no progress saved for this movie.'),
  history_entry_not_found: msg('This movie is not in your history.'),
  concurrent_update: msg('It changed at the same time somewhere else. Please try again.'),
  rate_limited: msg('Too many attempts.'),
  validation_error: msg('Some fields are not valid.'),
  invalid_json: msg('The request was not valid.'),
  bad_request: msg('The request was not valid.'),
  payload_too_large: msg('The file is too large.'),
  upload_timeout: msg('The upload stopped sending data for too long. Please try again.'),
  invalid_idempotency_key: msg('The request was not valid.'),
  idempotency_key_reused: msg('The request was not valid.'),
  idempotency_in_progress: msg('This is already being done. Please wait a moment.'),
  range_not_satisfiable: msg('The request was not valid.'),
  unsupported_media_type: msg('This kind of file is not supported.'),
  unsupported_image_format: msg('The image must be a PNG, JPEG or WebP file.'),
  unreadable_image: msg('The image could not be read: it may be damaged or too large.'),
  unsupported_video_format: msg('This video format is not supported.'),
  unreadable_video: msg('The video could not be read: it may be damaged.'),
  invalid_subtitle: msg('The subtitle file could not be read: use WebVTT or SRT.'),
  invalid_upload: msg('The upload was not valid.'),
  not_found: msg('Not found.'),
  endpoint_not_found: msg('Not found.'),
  method_not_allowed: msg('The request was not valid.'),
  unauthorized: msg('Your session has expired. Please log in again.'),
  conflict: msg('It changed at the same time somewhere else. Please try again.'),
  internal_error: msg('Something went wrong on our side. Please try again.'),
  busy: msg('The server is busy. Please try again in a moment.'),
  service_unavailable: UNAVAILABLE,
  database_unavailable: UNAVAILABLE,
  movies_unavailable: UNAVAILABLE,
  media_store_unavailable: UNAVAILABLE,
  auth_unavailable: UNAVAILABLE,
  circuit_open: UNAVAILABLE,
  upstream_unavailable: UNAVAILABLE,
  upstream_timeout: UNAVAILABLE,
  deadline_exceeded: UNAVAILABLE,
  bad_gateway: UNAVAILABLE,
  not_ready: UNAVAILABLE,
};

// A code the app does not know yet: a text by status.
const STATUS_TEXT = {
  0: msg('Cannot reach the server. Check your connection and try again.'),
  400: msg('The request was not valid.'),
  401: msg('Your session has expired. Please log in again.'),
  403: msg('You are not allowed to do this.'),
  404: msg('Not found.'),
  409: msg('It changed at the same time somewhere else. Please try again.'),
  413: msg('The file is too large.'),
  429: msg('Too many attempts.'),
};

/** Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or null. */
function parseRetryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

function apiErrorText(err) {
  // A wrong password inside a session is 400 (API.md); a failed login is 401.
  if (err.code === 'invalid_credentials' && err.status === 400) return t('The password is incorrect.');
  const known = CODE_TEXT[err.code] ?? STATUS_TEXT[err.status];
  if (known) return t(known);
  if (err.status >= 500) return t(UNAVAILABLE);
  return t('Request failed (HTTP {status}).', { status: err.status });
}

/** The text to show the user for an error of any kind, in the user's language. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return t('Something went wrong.');
  const text = apiErrorText(err);
  if (err.status === 429 && err.retryAfter != null) {
    return `${text} ${t('Try again in {wait}.', { wait: formatWait(err.retryAfter) })}`;
  }
  return text;
}

// What the API checks on a field (by its name in `details.fieldErrors`), for a user whose
// language is not the API's English.
const FIELD_TEXT = {
  email: msg('Enter a valid email address.'),
  firstName: msg('1–50 characters'),
  lastName: msg('1–50 characters'),
  age: msg('Enter a whole number from 13 to 150.'),
  password: msg('The password does not meet the requirements.'),
  newPassword: msg('The password does not meet the requirements.'),
  confirmPassword: msg('Passwords do not match.'),
  title: msg('A title is required.'),
};

/**
 * The text for one of the API's validation messages (`details.fieldErrors[field]`, or a form
 * error without `field`): the server's words are English, so another language gets the app's
 * own text for that field.
 */
export function validationText(message, field) {
  if (language() === 'en') return message;
  return t(FIELD_TEXT[field] ?? 'Check this value.');
}

function formatWait(seconds) {
  if (seconds === 1) return t('1 second');
  if (seconds < 90) return t('{count} seconds', { count: seconds });
  return t('{count} minutes', { count: Math.ceil(seconds / 60) });
}

// Session -----------------------------------------------------------------------------------

const listeners = new Set();

export const session = {
  get token() {
    return localStorage.getItem(TOKEN_KEY);
  },
  get user() {
    try {
      return JSON.parse(localStorage.getItem(USER_KEY) || 'null');
    } catch {
      return null;
    }
  },
  get loggedIn() {
    return Boolean(this.token);
  },
  get isAdmin() {
    const user = this.user;
    if (user?.role) return user.role === 'admin';
    const claims = tokenClaims(this.token);
    return Boolean(claims && claims.role === 'admin');
  },
  set(token, user) {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    if (user) localStorage.setItem(USER_KEY, JSON.stringify(user));
    notify('login');
  },
  setUser(user) {
    localStorage.setItem(USER_KEY, JSON.stringify(user));
    notify('user');
  },
  clear(reason = 'logout') {
    const had = Boolean(localStorage.getItem(TOKEN_KEY));
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
    if (had) notify(reason);
  },
  onChange(fn) {
    listeners.add(fn);
  },
};

function notify(reason) {
  for (const fn of listeners) fn(reason);
}

// Another tab logged in or out.
window.addEventListener('storage', (event) => {
  if (event.key === TOKEN_KEY || event.key === USER_KEY) notify('storage');
});

/** The token's claims (unverified: only to read the role before /me answers). */
function tokenClaims(token) {
  if (!token) return null;
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return null;
  }
}

// Requests ----------------------------------------------------------------------------------

function authHeaders() {
  const token = session.token;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function handleUnauthorized(status, body) {
  if (status === 401 && (body?.code === 'invalid_token' || body?.code === 'account_deleted')) {
    session.clear('expired');
  }
}

/**
 * Calls the API. `body` is sent as JSON; `auth: false` leaves the token out; `keepalive: true`
 * lets the request outlive the page (a report sent while leaving it).
 * Resolves with the parsed JSON (null for 204), rejects with ApiError.
 */
export async function api(path, { method = 'GET', body, auth = true, signal, keepalive = false } = {}) {
  const headers = { Accept: 'application/json', ...(auth ? authHeaders() : {}) };
  const init = { method, headers, signal, keepalive, credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, null);
  }
  const data = await readBody(response);
  if (!response.ok) {
    handleUnauthorized(response.status, data);
    throw new ApiError(response.status, data, parseRetryAfter(response.headers.get('Retry-After')));
  }
  return data;
}

async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text().catch(() => '');
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 300) };
  }
}

/**
 * A multipart upload through XMLHttpRequest, for its upload progress events.
 * Returns {promise, abort}; `onProgress(loaded, total)` follows the request body.
 */
export function upload(path, formData, onProgress, method = 'POST') {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open(method, path);
    xhr.setRequestHeader('Accept', 'application/json');
    const token = session.token;
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.addEventListener('progress', (event) => {
      if (onProgress) onProgress(event.loaded, event.lengthComputable ? event.total : 0);
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = { message: xhr.responseText.slice(0, 300) };
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
        return;
      }
      handleUnauthorized(xhr.status, data);
      reject(new ApiError(xhr.status, data, parseRetryAfter(xhr.getResponseHeader('Retry-After'))));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, null)));
    xhr.addEventListener('abort', () => reject(new DOMException('Upload cancelled', 'AbortError')));
    xhr.send(formData);
  });
  return { promise, abort: () => xhr.abort() };
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const enc = encodeURIComponent;
