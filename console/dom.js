// dom.js — building the page from data without innerHTML (a certificate's name or subject
// is never markup), labelled fields, messages that say in words what they are.

export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const k of kids) {
    if (k === undefined || k === null || k === false) continue;
    if (Array.isArray(k)) append(el, k);
    else el.append(k instanceof Node ? k : String(k));
  }
}

let uid = 0;
// A labelled input: {label, name, type, hint, value, required, options: [[value, text]]}.
export function field(o) {
  const id = `f${++uid}-${o.name}`;
  const hintId = o.hint ? `${id}-hint` : null;
  let input;
  const common = { id, name: o.name, 'aria-describedby': hintId, required: o.required,
    autocomplete: o.autocomplete || 'off' };
  if (o.options) {
    input = h('select', common, o.options.map(([v, t]) =>
      h('option', { value: v, selected: v === o.value }, t)));
  } else if (o.type === 'textarea') {
    input = h('textarea', { ...common, rows: o.rows || 3 }, o.value || '');
  } else {
    input = h('input', { ...common, type: o.type || 'text', value: o.value, min: o.min,
      max: o.max, multiple: o.multiple, accept: o.accept, placeholder: o.placeholder });
  }
  if (o.type === 'checkbox') {
    return h('div', { class: 'field check' }, input, h('label', { for: id }, o.label),
      o.hint && h('span', { class: 'hint', id: hintId }, o.hint));
  }
  return h('div', { class: 'field' }, h('label', { for: id }, o.label),
    o.hint && h('span', { class: 'hint', id: hintId }, o.hint), input);
}

// A message region: error (role=alert), ok or note (polite). Words first, colour second.
export function msgBox() {
  return h('div', { class: 'msg', role: 'alert', 'aria-live': 'assertive' });
}
export function say(box, kind, text) {
  box.className = `msg ${kind}`;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const word = { error: 'Error: ', ok: 'Done: ', note: 'Note: ' }[kind] || '';
  box.textContent = text ? word + text : '';
}
// The API's refusal in box; the field it names is marked and focused.
export function sayError(box, e, form) {
  say(box, 'error', e.message);
  if (form && e.field) {
    const input = form.querySelector(`[name="${CSS.escape(e.field)}"]`);
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  }
}
export function clearInvalid(form) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

export function announce(text) {
  const live = document.getElementById('live');
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 30);
}

// A semantic table: columns [{head, cell(row) -> node|string, class}]
export function table(caption, columns, rows, { empty = 'None.' } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map(c => h('th', { scope: 'col' }, c.head)))),
    h('tbody', {}, rows.map(r => h('tr', {}, columns.map((c, i) => {
      const v = c.cell(r);
      return h(i === 0 && c.rowHeader ? 'th' : 'td', { class: c.class, scope: i === 0 && c.rowHeader ? 'row' : null }, v);
    })))));
}

export function date(iso) {
  return iso ? iso.replace('T', ' ').replace(/:\d\dZ$/, ' UTC').replace(/Z$/, ' UTC') : '—';
}

// "2026-12-27 18:16 UTC (29 days left)" / "(expired 3 days ago)"
export function expiry(row) {
  const secs = row.not_after_unix - Date.now() / 1000;
  const days = Math.floor(Math.abs(secs) / 86400);
  const plural = days === 1 ? 'day' : 'days';
  const rel = secs >= 0 ? `${days} ${plural} left` : `expired ${days} ${plural} ago`;
  return h('span', { class: secs < 0 ? 'expired' : null }, date(row.not_after), h('br'), `(${rel})`);
}

export function sans(list) {
  if (!list || !list.length) return '—';
  return h('ul', { class: 'plain' }, list.map(s => h('li', {}, `${s.type}: ${s.value}`)));
}

export function warnings(list) {
  if (!list || !list.length) return null;
  return h('ul', { class: 'warnings', 'aria-label': 'Warnings' },
    list.map(w => h('li', {}, h('span', { 'aria-hidden': 'true' }, '⚠ '), 'Warning: ', w)));
}

export function yesno(b) { return b ? 'Yes' : 'No'; }

// Offers bytes as a file to save: a link the user can follow again, clicked once.
export function download(blob, name, where, text) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, class: 'button secondary' }, text || `Download ${name}`);
  where.replaceChildren(a);
  return a;
}
