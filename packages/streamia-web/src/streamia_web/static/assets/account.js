// Accounts: log in, register, forgot and reset password, profile, password change, deletion.

import { ApiError, api, errorText, session } from './api.js';
import { formatDate, h, replace, toast } from './dom.js';
import { alertBox, apiForm, field, fieldError, required, showFormError, showSuccess, successBox } from './forms.js';
import { LANGUAGES, msg, t } from './i18n.js';
import { go, link, requireLogin } from './router.js';

const SPECIALS = '!@#$%^&*()_+-=[]{};\':"\\|,.<>/?';
// API.md's password rules: [text, test, text in the "Missing: …" message].
const PASSWORD_RULES = [
  [msg('At least 8 characters'), (p) => p.length >= 8, msg('8 characters')],
  [msg('An uppercase letter'), (p) => /[A-Z]/.test(p), msg('an uppercase letter')],
  [msg('A lowercase letter'), (p) => /[a-z]/.test(p), msg('a lowercase letter')],
  [msg('A digit'), (p) => /[0-9]/.test(p), msg('a digit')],
  [msg('A special character: {specials}'), (p) => [...p].some((c) => SPECIALS.includes(c)), msg('a special character')],
];

function ruleText(text) {
  return t(text, { specials: SPECIALS });
}

/** The live checklist of API.md's password rules under a password field. */
function passwordRules(input) {
  const items = PASSWORD_RULES.map(([text]) => h('li', {}, ruleText(text)));
  const list = h('ul', { class: 'rules', id: `${input.id}-rules`, 'aria-label': t('Password requirements') }, items);
  const update = () => {
    PASSWORD_RULES.forEach(([text, test], i) => {
      const ok = test(input.value);
      items[i].classList.toggle('ok', ok);
      items[i].textContent = `${ok ? '✓' : '•'} ${ruleText(text)}`;
    });
  };
  input.addEventListener('input', update);
  input.setAttribute('aria-describedby', `${input.getAttribute('aria-describedby')} ${list.id}`);
  update();
  return list;
}

/** Marks the new-password and confirmation fields when either is invalid. */
function checkNewPassword(password, confirm) {
  const problems = passwordProblems(password.input.value);
  if (problems.length) fieldError(password.input, t('Missing: {rules}.', { rules: problems.join(', ') }));
  if (confirm.input.value !== password.input.value) fieldError(confirm.input, t('Passwords do not match.'));
}

function passwordProblems(password) {
  return PASSWORD_RULES.filter(([, test]) => !test(password)).map(([, , missing]) => t(missing));
}

function page(title, ...children) {
  return h('section', { class: 'page narrow' }, h('h1', {}, title), ...children);
}

function afterLogin(body, next) {
  session.set(body.token, body.user);
  const name = body.user?.firstName;
  toast(name ? t('Welcome, {name}!', { name }) : t('Welcome!'), 'success');
  go(next?.startsWith('/') ? next : '/');
}

// Log in ------------------------------------------------------------------------------------

export function loginView(main, _m, q) {
  const next = q.get('next') || '/';
  const email = field(t('Email'), 'email', { type: 'email', autocomplete: 'email', required: true });
  const password = field(t('Password'), 'password', {
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const alert = alertBox();
  const submit = h('button', { type: 'submit', class: 'btn primary wide' }, t('Log in'));
  const form = apiForm(
    {
      class: 'card-form',
      submit,
      alert,
      busyText: t('Logging in…'),
      check: () => {
        required(email, t('Enter your email.'));
        if (!password.input.value) fieldError(password.input, t('Enter your password.'));
      },
      send: async () => {
        const body = await api('/api/users/login', {
          method: 'POST',
          auth: false,
          body: { email: email.input.value.trim(), password: password.input.value },
        });
        afterLogin(body, next);
      },
    },
    alert,
    email.wrap,
    password.wrap,
    submit,
    h(
      'p',
      { class: 'form-links' },
      link('/forgot-password', t('Forgot your password?')),
      h('span', { 'aria-hidden': 'true' }, ' · '),
      link(`/register?next=${encodeURIComponent(next)}`, t('Create an account')),
    ),
  );
  replace(main, page(t('Log in'), form));
  return { title: t('Log in') };
}

// Register ----------------------------------------------------------------------------------

function validAge(input) {
  const value = Number(input.value);
  if (!input.value || !Number.isInteger(value) || value < 13 || value > 150) {
    fieldError(input, t('Enter a whole number from 13 to 150.'));
  }
  return value;
}

export function registerView(main, _m, q) {
  const next = q.get('next') || '/';
  const first = field(t('First name'), 'firstName', {
    autocomplete: 'given-name',
    maxlength: '50',
    required: true,
    hint: t('1–50 characters'),
  });
  const last = field(t('Last name'), 'lastName', {
    autocomplete: 'family-name',
    maxlength: '50',
    required: true,
    hint: t('1–50 characters'),
  });
  const age = field(t('Age'), 'age', {
    type: 'number',
    inputmode: 'numeric',
    min: '13',
    max: '150',
    step: '1',
    required: true,
    hint: t('You must be at least 13 (13–150).'),
  });
  const email = field(t('Email'), 'email', { type: 'email', autocomplete: 'email', required: true });
  const password = field(t('Password'), 'password', { type: 'password', autocomplete: 'new-password', required: true });
  const confirm = field(t('Confirm password'), 'confirmPassword', {
    type: 'password',
    autocomplete: 'new-password',
    required: true,
  });
  const rules = passwordRules(password.input);
  password.wrap.insertBefore(rules, password.error);
  const alert = alertBox();
  const submit = h('button', { type: 'submit', class: 'btn primary wide' }, t('Create account'));

  const form = apiForm(
    {
      class: 'card-form',
      submit,
      alert,
      busyText: t('Creating account…'),
      conflictField: 'email',
      check: () => {
        for (const f of [first, last, email]) required(f);
        validAge(age.input);
        checkNewPassword(password, confirm);
      },
      send: async () => {
        const body = await api('/api/users/register', {
          method: 'POST',
          auth: false,
          body: {
            firstName: first.input.value.trim(),
            lastName: last.input.value.trim(),
            age: Number(age.input.value),
            email: email.input.value.trim(),
            password: password.input.value,
            confirmPassword: confirm.input.value,
          },
        });
        if (body?.token) {
          afterLogin(body, next);
        } else {
          toast(t('Account created. Please log in.'), 'success');
          go('/login', { next });
        }
      },
    },
    alert,
    h('div', { class: 'field-row' }, first.wrap, last.wrap),
    age.wrap,
    email.wrap,
    password.wrap,
    confirm.wrap,
    submit,
    h(
      'p',
      { class: 'form-links' },
      t('Already have an account? '),
      link(`/login?next=${encodeURIComponent(next)}`, t('Log in')),
    ),
  );
  replace(main, page(t('Create your account'), form));
  return { title: t('Register') };
}

// Forgot / reset password -------------------------------------------------------------------

export function forgotView(main) {
  const email = field(t('Email'), 'email', { type: 'email', autocomplete: 'email', required: true });
  const alert = alertBox();
  const done = successBox();
  const submit = h('button', { type: 'submit', class: 'btn primary wide' }, t('Send reset link'));
  const form = apiForm(
    {
      class: 'card-form',
      submit,
      alert,
      done,
      busyText: t('Sending…'),
      check: () => required(email, t('Enter your email.')),
      send: async () => {
        await api('/api/users/forgot-password', {
          method: 'POST',
          auth: false,
          body: { email: email.input.value.trim() },
        });
        showSuccess(done, t('If an account exists for that email, a reset link has been sent.'));
      },
    },
    h(
      'p',
      { class: 'muted' },
      t(
        'Enter the email you registered with and we will send you a link to choose a new password. The link works once, for one hour.',
      ),
    ),
    alert,
    done,
    email.wrap,
    submit,
    h('p', { class: 'form-links' }, link('/login', t('Back to log in'))),
  );
  replace(main, page(t('Forgot your password?'), form));
  return { title: t('Forgot password') };
}

/** /reset-password/<token>: the page the reset email links to. */
export function resetView(main, [token]) {
  const password = field(t('New password'), 'newPassword', {
    type: 'password',
    autocomplete: 'new-password',
    required: true,
  });
  const confirm = field(t('Confirm new password'), 'confirmPassword', {
    type: 'password',
    autocomplete: 'new-password',
    required: true,
  });
  password.wrap.insertBefore(passwordRules(password.input), password.error);
  const alert = alertBox();
  const submit = h('button', { type: 'submit', class: 'btn primary wide' }, t('Set new password'));
  const form = apiForm(
    {
      class: 'card-form',
      submit,
      alert,
      busyText: t('Saving…'),
      check: () => checkNewPassword(password, confirm),
      send: async () => {
        await api('/api/users/reset-password', {
          method: 'POST',
          auth: false,
          body: { token, newPassword: password.input.value, confirmPassword: confirm.input.value },
        });
        session.clear('reset'); // earlier sessions are revoked
        replace(
          main,
          page(
            t('Password changed'),
            h('div', { class: 'notice success', role: 'status' }, t('Your password has been reset.')),
            h('p', {}, link('/login', t('Log in with your new password'), { class: 'btn primary' })),
          ),
        );
        main.querySelector('h1')?.focus();
      },
      onError: (err) => {
        if (!(err instanceof ApiError) || err.status !== 400 || Object.keys(err.fieldErrors).length) return false;
        showFormError(form, err, alert);
        alert.appendChild(h('span', { class: 'line' }, link('/forgot-password', t('Request a new link'))));
        return true;
      },
    },
    h('p', { class: 'muted' }, t('Choose a new password for your Streamia account.')),
    alert,
    password.wrap,
    confirm.wrap,
    submit,
    h('p', { class: 'form-links' }, link('/login', t('Back to log in'))),
  );
  replace(main, page(t('Reset your password'), form));
  return { title: t('Reset password') };
}

// Profile -----------------------------------------------------------------------------------

export async function profileView(main) {
  if (!requireLogin()) return null;
  replace(main, h('p', { class: 'loading' }, t('Loading your profile…')));
  let user;
  try {
    user = (await api('/api/users/me')).user;
    session.setUser(user);
  } catch (err) {
    if (!session.loggedIn) return go('/login', { next: '/profile' });
    replace(main, page(t('Your profile'), h('div', { class: 'notice error', role: 'alert' }, errorText(err))));
    return { title: t('Profile') };
  }
  replace(
    main,
    h(
      'section',
      { class: 'page narrow' },
      h('h1', {}, t('Your profile')),
      h(
        'p',
        { class: 'muted' },
        t('Member since {date}', { date: formatDate(user.createdAt) }),
        user.role === 'admin' ? ` · ${t('Administrator')}` : '',
      ),
      profileForm(user),
      passwordForm(),
      deleteForm(),
    ),
  );
  return { title: t('Profile') };
}

function profileForm(user) {
  const first = field(t('First name'), 'firstName', {
    autocomplete: 'given-name',
    maxlength: '50',
    value: user.firstName || '',
  });
  const last = field(t('Last name'), 'lastName', {
    autocomplete: 'family-name',
    maxlength: '50',
    value: user.lastName || '',
  });
  const age = field(t('Age'), 'age', { type: 'number', min: '13', max: '150', step: '1', value: user.age ?? '' });
  const email = field(t('Email'), 'email', { type: 'email', autocomplete: 'email', value: user.email || '' });
  const language = field(t('Language'), 'language', {
    options: LANGUAGES,
    value: user.language || 'es',
    hint: t('The language of the emails Streamia sends you.'),
  });
  const alert = alertBox();
  const done = successBox();
  const submit = h('button', { type: 'submit', class: 'btn primary' }, t('Save changes'));
  let current = user;
  let changes = {};
  const form = apiForm(
    {
      class: 'card-form',
      submit,
      alert,
      done,
      busyText: t('Saving…'),
      conflictField: 'email',
      check: () => {
        changes = {};
        for (const [f, key] of [
          [first, 'firstName'],
          [last, 'lastName'],
          [email, 'email'],
          [language, 'language'],
        ]) {
          const value = f.input.value.trim();
          if (value !== (current[key] || '')) changes[key] = value;
        }
        if (age.input.value !== '' && Number(age.input.value) !== current.age) changes.age = validAge(age.input);
      },
      send: async () => {
        if (!Object.keys(changes).length) {
          showSuccess(done, t('Nothing to change.'));
          return;
        }
        const body = await api('/api/users/me', { method: 'PUT', body: changes });
        current = body.user || { ...current, ...changes };
        session.setUser(current);
        showSuccess(done, t('Profile updated.'));
      },
    },
    h('h2', {}, t('Details')),
    alert,
    done,
    h('div', { class: 'field-row' }, first.wrap, last.wrap),
    age.wrap,
    email.wrap,
    language.wrap,
    h('div', { class: 'actions' }, submit),
  );
  return form;
}

function passwordForm() {
  const current = field(t('Current password'), 'currentPassword', {
    type: 'password',
    autocomplete: 'current-password',
  });
  const password = field(t('New password'), 'newPassword', { type: 'password', autocomplete: 'new-password' });
  const confirm = field(t('Confirm new password'), 'confirmPassword', {
    type: 'password',
    autocomplete: 'new-password',
  });
  password.wrap.insertBefore(passwordRules(password.input), password.error);
  const alert = alertBox();
  const done = successBox();
  const submit = h('button', { type: 'submit', class: 'btn primary' }, t('Change password'));
  const form = apiForm(
    {
      class: 'card-form',
      submit,
      alert,
      done,
      busyText: t('Changing…'),
      check: () => {
        if (!current.input.value) fieldError(current.input, t('Enter your current password.'));
        checkNewPassword(password, confirm);
      },
      send: async () => {
        const body = await api('/api/users/change-password', {
          method: 'PUT',
          body: {
            currentPassword: current.input.value,
            newPassword: password.input.value,
            confirmPassword: confirm.input.value,
          },
        });
        if (body?.token) session.set(body.token, null);
        form.reset();
        password.input.dispatchEvent(new Event('input'));
        showSuccess(done, `${t('Password changed.')} ${t('Your other sessions were signed out.')}`);
      },
    },
    h('h2', {}, t('Change password')),
    alert,
    done,
    current.wrap,
    password.wrap,
    confirm.wrap,
    h('div', { class: 'actions' }, submit),
  );
  return form;
}

function deleteForm() {
  const password = field(t('Your password'), 'password', { type: 'password', autocomplete: 'current-password' });
  const sure = h('input', {
    type: 'checkbox',
    id: 'delete-confirm',
    name: 'confirm',
    'aria-describedby': 'delete-confirm-error',
  });
  const sureError = h('p', { class: 'field-error', id: 'delete-confirm-error' });
  const alert = alertBox();
  const submit = h('button', { type: 'submit', class: 'btn danger' }, t('Delete my account'));
  return apiForm(
    {
      class: 'card-form danger-zone',
      submit,
      alert,
      busyText: t('Deleting…'),
      check: () => {
        if (!password.input.value) fieldError(password.input, t('Enter your password to confirm.'));
        if (!sure.checked) fieldError(sure, t('Tick the box to confirm you want to delete your account.'));
      },
      send: async () => {
        await api('/api/users/me', { method: 'DELETE', body: { password: password.input.value } });
        session.clear('deleted');
        toast(t('Your account has been deleted. Goodbye!'), 'success', 8000);
        go('/');
      },
    },
    h('h2', {}, t('Delete account')),
    h(
      'p',
      { class: 'muted' },
      t('This removes your account together with your list, ratings and comments. It cannot be undone.'),
    ),
    alert,
    password.wrap,
    h(
      'div',
      { class: 'check' },
      sure,
      h('label', { htmlFor: 'delete-confirm' }, t('I understand this cannot be undone')),
    ),
    sureError,
    h('div', { class: 'actions' }, submit),
  );
}
