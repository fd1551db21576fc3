// Forms that talk to the API: labelled fields with error slots, and the one submit scaffold
// every form uses (clear → check → disable → call the API → show its errors → re-enable).

import { ApiError, errorText, validationText } from './api.js';
import { busy, clear, h, replace } from './dom.js';
import { t } from './i18n.js';

/**
 * A <form> that runs `send()` on submit, with the submit button disabled meanwhile.
 *
 * - `check()` runs first (client-side checks; mark problems with `fieldError`); the form is
 *   not sent while any field is marked invalid, and focus goes to the first one.
 * - An error from `send()` is shown with `showFormError`: the API's 400
 *   `details.fieldErrors` under their fields (by input `name`), the rest in `alert`.
 *   `onError(err)` may handle an error itself by returning true.
 * - `done`, when given, is the success box; it is hidden again on every submit.
 *
 * Options not listed here become attributes of the form (`class`, ...).
 */
export function apiForm({ submit, busyText, alert, done, check, send, onError, conflictField, ...attrs }, ...children) {
  const form = h(
    'form',
    {
      novalidate: true,
      ...attrs,
      onsubmit: async (event) => {
        event.preventDefault();
        clearFormErrors(form, alert);
        if (done) done.hidden = true;
        if (check) check();
        const invalid = form.querySelector('[aria-invalid="true"]');
        if (invalid) {
          invalid.focus();
          return;
        }
        await busy(
          submit,
          async () => {
            try {
              await send();
            } catch (err) {
              if (onError?.(err)) return;
              showFormError(form, err, alert, { conflictField });
            }
          },
          busyText,
        );
      },
    },
    ...children,
  );
  return form;
}

/** Puts a client-side error under a field (the API's own checks still apply). */
export function fieldError(input, text) {
  const slot = document.getElementById(`${input.id}-error`);
  if (slot) slot.textContent = text;
  input.setAttribute('aria-invalid', 'true');
}

/** Marks `f` (a `field()`) when it is empty; returns its trimmed value. */
export function required(f, text = t('Required.')) {
  const value = f.input.type === 'file' ? f.input.files[0] : f.input.value.trim();
  if (!value) fieldError(f.input, text);
  return value;
}

let fieldCounter = 0;

/**
 * A labelled form field with a slot for its errors.
 * Returns {wrap, input, error}; `input` is an <input>, <textarea> or <select>.
 */
export function field(label, name, { type = 'text', hint, options, textarea, ...attrs } = {}) {
  const id = `f-${name}-${++fieldCounter}`;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  let input;
  const common = {
    id,
    name,
    'aria-describedby': [hintId, errorId].filter(Boolean).join(' '),
    ...attrs,
  };
  if (options) {
    input = h(
      'select',
      common,
      options.map(([value, text]) => h('option', { value }, text)),
    );
  } else if (textarea) {
    input = h('textarea', common);
  } else {
    input = h('input', { type, ...common });
  }
  const error = h('p', { class: 'field-error', id: errorId });
  const wrap = h(
    'div',
    { class: 'field' },
    h('label', { htmlFor: id }, label),
    input,
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    error,
  );
  return { wrap, input, error };
}

/**
 * Shows an error on a form: API field errors next to their fields (by `name`), the rest in
 * the form's alert box. Returns the text shown in the box.
 */
export function showFormError(form, err, alertBox, options = {}) {
  clearFormErrors(form, alertBox);
  const unplaced = [];
  if (err instanceof ApiError) {
    // The API's validation messages are English words: each goes through validationText.
    const fields = Object.entries(err.fieldErrors).map(([name, messages]) => [
      name,
      [...new Set((Array.isArray(messages) ? messages : [messages]).map((m) => validationText(m, name)))].join(' '),
    ]);
    if (err.status === 409 && options.conflictField) fields.unshift([options.conflictField, errorText(err)]);
    for (const [name, text] of fields) {
      const input = form.elements.namedItem(name);
      const slot = input?.id ? document.getElementById(`${input.id}-error`) : null;
      if (slot) {
        slot.textContent = text;
        input.setAttribute('aria-invalid', 'true');
      } else {
        unplaced.push(`${name}: ${text}`);
      }
    }
    unplaced.push(...err.formErrors.map((m) => validationText(m)));
  }
  const lines = [errorText(err), ...unplaced];
  if (alertBox) {
    replace(alertBox, ...lines.map((line) => h('span', { class: 'line' }, line)));
    alertBox.hidden = false;
  }
  const firstInvalid = form.querySelector('[aria-invalid="true"]');
  if (firstInvalid) firstInvalid.focus();
  else if (alertBox) alertBox.focus();
  return lines.join(' ');
}

export function clearFormErrors(form, alertBox) {
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  if (alertBox) {
    clear(alertBox);
    alertBox.hidden = true;
  }
}

/** The alert box a form shows its errors in. */
export function alertBox() {
  return h('div', { class: 'notice error', role: 'alert', tabindex: '-1', hidden: true });
}

export function successBox() {
  return h('div', { class: 'notice success', role: 'status', hidden: true });
}

export function showSuccess(box, text) {
  box.textContent = text;
  box.hidden = false;
}
