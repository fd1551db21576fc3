// The Streamia HTTP API (API.md) as the web app uses it: JSON calls, uploads, the session.

const TOKEN_KEY = 'streamia.token';
const USER_KEY = 'streamia.user';

/** An API answer that was not 2xx (or no answer at all: status 0). */
export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    const message = (body && (body.message || body.error)) || defaultMessage(status);
    super(message);
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

function defaultMessage(status) {
  if (status === 0) return 'Cannot reach the server. Check your connection and try again.';
  return `Request failed (HTTP ${status}).`;
}

/** Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or null. */
function parseRetryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
}

/** The text to show the user for an error of any kind. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return err?.message || 'Something went wrong.';
  if (err.status === 503 || err.status === 502 || err.status === 504) {
    return 'The service is temporarily unavailable. Please try again in a moment.';
  }
  if (err.status === 429) {
    const wait = err.retryAfter != null ? ` Try again in ${formatWait(err.retryAfter)}.` : '';
    return `${err.message}${wait}`;
  }
  return err.message;
}

function formatWait(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
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
  if (status === 401 && body && body.message === 'Invalid or expired token') {
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
export function upload(path, formData, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', path);
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
