// app.js — the web console (issue 10, item 5): a page per hash route, every figure from
// the JSON API under /api/v1/ with the session cookie. The console holds no rule of its
// own: what the keyring refuses is shown with the keyring's sentence.
import { api, ApiError, session, setHandlers, enc, features, probeFeatures, resetFeatures, missing } from './api.js';
import { h, field, msgBox, say, sayError, clearInvalid, announce, table, date, expiry, sans, warnings, yesno, download } from './dom.js';

const main = document.getElementById('main');
const PAGE = 100;

// ---- the frame: who is logged in, the navigation, focus on each new page ----

function frame(loggedIn) {
  document.getElementById('nav').hidden = !loggedIn;
  document.getElementById('who').hidden = !loggedIn;
  if (loggedIn) {
    document.getElementById('who-text').textContent = `Logged in as ${session.user} (${session.role})`;
  }
}

function show(title, ...kids) {
  document.title = `${title} — tlsgate appliance`;
  const h1 = h('h1', { tabindex: '-1' }, title);
  main.replaceChildren(h1, ...kids);
  const here = location.hash.split('?')[0].split('/').slice(0, 2).join('/');
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  h1.focus();
  return h1;
}

function adopt(doc) {
  session.user = doc.user;
  session.role = doc.role;
  session.mustChange = !!doc.must_change;
  session.csrf = doc.csrf_token;
}

function forget() {
  session.user = session.role = session.csrf = null;
  session.mustChange = false;
  resetFeatures();
}

setHandlers(() => { forget(); go('#/login'); }, () => { session.mustChange = true; go('#/password'); });

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

document.getElementById('logout').addEventListener('click', async () => {
  try { await api('DELETE', 'session', undefined, { quiet: true }); } catch (e) { /* ended already */ }
  forget();
  go('#/login');
  announce('Logged out.');
});

// ---- login and the forced password change ----

function viewLogin() {
  frame(false);
  const box = msgBox();
  const form = h('form', { class: 'panel login', novalidate: true },
    field({ label: 'User name', name: 'user', required: true, autocomplete: 'username' }),
    field({ label: 'Password', name: 'password', type: 'password', required: true,
      autocomplete: 'current-password' }),
    box,
    h('button', { type: 'submit' }, 'Log in'));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearInvalid(form);
    say(box, '', '');
    const user = form.elements.user.value, password = form.elements.password.value;
    try {
      adopt(await api('POST', 'session', { user, password }, { quiet: true }));
      form.elements.password.value = '';
      go(session.mustChange ? '#/password' : '#/status');
    } catch (e) {
      sayError(box, e, form);
    }
  });
  show('Log in', form);
  form.elements.user.focus();
}

async function viewPassword() {
  frame(true);
  const box = msgBox();
  const form = h('form', { class: 'panel', id: 'passwd-form', novalidate: true },
    h('p', {}, session.mustChange
      ? 'This password was given once. Choose a new one before anything else.'
      : `A new password for ${session.user}.`),
    field({ label: 'Current password', name: 'current', type: 'password', required: true,
      autocomplete: 'current-password', hint: session.mustChange ? 'The one you logged in with.' : null }),
    field({ label: 'New password', name: 'password', type: 'password', required: true,
      autocomplete: 'new-password', hint: 'At least 12 characters.' }),
    field({ label: 'New password again', name: 'again', type: 'password', required: true,
      autocomplete: 'new-password' }),
    box,
    h('button', { type: 'submit', id: 'passwd-submit' }, 'Change the password'));
  show('Choose a new password', form);
  await probeFeatures();
  form.dataset.probed = features.passwd;
  if (features.passwd === 'no') {
    const b = form.querySelector('#passwd-submit');
    b.disabled = true;
    b.title = missing('password change (POST /api/v1/users/{name}/password)');
    say(box, 'note', `${b.title} Run "tlsgate user passwd ${session.user}" on the appliance, then log in again.`);
  }
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearInvalid(form);
    const pw = form.elements.password.value;
    if (pw !== form.elements.again.value) {
      form.elements.again.setAttribute('aria-invalid', 'true');
      say(box, 'error', 'the two passwords differ');
      form.elements.again.focus();
      return;
    }
    try {
      await api('POST', `users/${enc(session.user)}/password`,
        { password: pw, current_password: form.elements.current.value });
      adopt(await api('GET', 'session'));
      go('#/status');
      announce('The password is changed.');
    } catch (e) {
      if (e.absent) {
        features.passwd = 'no';
        say(box, 'error', missing('password change') + ` Run "tlsgate user passwd ${session.user}".`);
      } else sayError(box, e, form);
    }
  });
}

// ---- status ----

function uptime(s) {
  const d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? `${d} d ` : '') + `${hh} h ${m} min`;
}

async function viewStatus() {
  const box = msgBox();
  show('Status', box);
  try {
    const [st, soon] = await Promise.all([api('GET', 'status'),
      api('GET', `certificates?expiring=30&limit=${PAGE}`)]);
    const dl = h('dl', { class: 'doc' },
      h('dt', {}, 'Version'), h('dd', { id: 'status-version' }, st.version),
      h('dt', {}, 'Started'), h('dd', {}, date(st.started)),
      h('dt', {}, 'Uptime'), h('dd', {}, uptime(st.uptime_seconds)),
      h('dt', {}, 'Certificates'), h('dd', { id: 'status-certificates' }, String(st.certificates)),
      h('dt', {}, 'Expiring within 30 days'), h('dd', { id: 'status-expiring' }, String(st.expiring_within_30_days)));
    const listeners = Array.isArray(st.listeners)
      ? [h('h2', {}, 'Listeners'), h('ul', { id: 'status-listeners' }, st.listeners.map(l => h('li', {},
          typeof l === 'string' ? l : `${l.address}: ${l.kind === 'front' ? 'the TLS front end' : l.kind === 'admin' ? 'this console and the API' : `${l.kind} ${l.name}`}`)))]
      : null;
    main.append(h('section', { class: 'panel' }, dl), ...(listeners || []),
      h('h2', {}, 'Certificates expiring within 30 days'),
      certTable(soon.items, { caption: `Expiring within 30 days (${soon.total})`, select: false }),
      soon.next ? h('p', {}, h('a', { href: '#/certificates' }, 'More in the Certificates page')) : '');
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    sayError(box, e);
  }
}

// ---- certificates ----

// The certificates table of the reference consoles: friendly name (warnings under it),
// issued to, issued by, expiration with days left, alternative names, private key,
// default. With select: a checkbox per row, for the action bar.
function certTable(rows, { caption, select = true, onDefault, ca = false }) {
  const cols = [];
  if (select) cols.push({ head: h('span', {}, 'Select'), cell: r => h('input', { type: 'checkbox', class: 'pick', value: r.name, 'aria-label': `Select ${r.name}` }) });
  cols.push({
    head: 'Friendly Name', cell: r => [h('a', { href: `#/${ca ? 'ca' : 'certificates'}/${enc(r.name)}` }, r.name), warnings(r.warnings)],
  });
  if (ca) cols.push({ head: 'Type', cell: r => r.type });
  cols.push({ head: 'Issued To', cell: r => r.issued_to });
  cols.push({ head: 'Issued By', cell: r => r.issued_by });
  cols.push({ head: 'Expiration', cell: r => expiry(r) });
  cols.push({ head: 'Alternative Name(s)', cell: r => sans(r.alternative_names) });
  cols.push({ head: 'Private Key?', cell: r => yesno(r.private_key) });
  if (!ca) {
    cols.push({
      head: 'Default', cell: r => onDefault
        ? h('input', { type: 'radio', name: `default-${r.name}`, class: 'default', checked: r.default,
          'aria-label': `Default: ${r.name}`, onchange: () => onDefault(r.name) })
        : (r.default ? 'Yes (default)' : 'No'),
    });
  }
  return table(caption, cols, rows, { empty: 'No certificates.' });
}

const certState = { q: '', stack: [null] }; // stack: the cursors of the pages walked

async function viewCertificates() {
  await probeFeatures();
  const box = msgBox();
  const holder = h('div', { id: 'cert-table' });
  const search = h('form', { class: 'bar', role: 'search' },
    field({ label: 'Search', name: 'q', type: 'search', value: certState.q,
      hint: 'Names, common names and alternative names containing this text.' }),
    h('button', { type: 'submit' }, 'Search'),
    h('button', { type: 'button', class: 'secondary', onclick: () => { certState.q = ''; certState.stack = [null]; viewCertificates(); } }, 'Clear'));
  search.addEventListener('submit', ev => {
    ev.preventDefault();
    certState.q = search.elements.q.value.trim();
    certState.stack = [null];
    load();
  });
  const actionOpts = [
    ['', 'Select Action'], ['delete', 'Delete'], ['default', 'Make default'],
    ['export', 'Export'], ['replace', 'Replace'], ['renew', 'Renew'],
  ];
  const action = h('select', { id: 'cert-action', name: 'action' }, actionOpts.map(([v, t]) => {
    const absent = ['export', 'replace', 'renew'].includes(v) && features[v] === 'no';
    return h('option', { value: v, disabled: absent, title: absent ? missing(`${t.toLowerCase()} route`) : null },
      absent ? `${t} (not available)` : t);
  }));
  const bar = h('form', { class: 'bar', 'aria-label': 'Actions on the selected certificates' },
    h('div', { class: 'field' }, h('label', { for: 'cert-action' }, 'Action on the selected certificates'), action),
    h('button', { type: 'submit', id: 'cert-apply' }, 'Apply'));
  const pane = h('div', { id: 'cert-pane' });
  const pager = h('div', { class: 'pager' });
  show('Certificates', search, bar, box, pane, holder, pager);

  const picked = () => [...holder.querySelectorAll('input.pick:checked')].map(i => i.value);

  async function load() {
    const after = certState.stack[certState.stack.length - 1];
    let q = `certificates?limit=${PAGE}`;
    if (after) q += `&after=${enc(after)}`;
    if (certState.q) q += `&q=${enc(certState.q)}`;
    try {
      const doc = await api('GET', q);
      const first = (certState.stack.length - 1) * PAGE + 1;
      const caption = doc.total
        ? `Security :: Certificates — ${first}–${first + doc.items.length - 1} of ${doc.total}` +
          (certState.q ? ` matching "${certState.q}"` : '')
        : 'Security :: Certificates';
      holder.replaceChildren(certTable(doc.items, { caption, onDefault: makeDefault }));
      const prev = h('button', { type: 'button', class: 'secondary', id: 'cert-prev', disabled: certState.stack.length < 2,
        onclick: () => { certState.stack.pop(); load().then(() => document.getElementById('cert-prev')?.focus()); } }, 'Previous page');
      const next = h('button', { type: 'button', class: 'secondary', id: 'cert-next', disabled: !doc.next,
        onclick: () => { certState.stack.push(doc.next); load().then(() => document.getElementById('cert-next')?.focus()); } }, 'Next page');
      pager.replaceChildren(prev, next, h('span', { id: 'cert-count' }, doc.total ? `${doc.total} in all` : 'none'));
      announce(`${doc.items.length} certificates shown of ${doc.total}.`);
    } catch (e) {
      sayError(box, e);
    }
  }

  async function makeDefault(name) {
    try {
      await api('POST', `certificates/${enc(name)}/default`);
      say(box, 'ok', `"${name}" is now the default certificate.`);
    } catch (e) {
      sayError(box, e);
    }
    await load();
  }

  bar.addEventListener('submit', async ev => {
    ev.preventDefault();
    const names = picked(), act = action.value;
    pane.replaceChildren();
    if (!act) return say(box, 'error', 'choose an action first');
    if (!names.length) return say(box, 'error', 'select a certificate first (the checkboxes of the first column)');
    if (act === 'delete') {
      if (!confirm(`Delete ${names.map(n => `"${n}"`).join(', ')}? This cannot be undone.`)) return;
      const done = [], refused = [];
      for (const n of names) {
        try {
          await api('DELETE', `certificates/${enc(n)}`);
          done.push(n);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          refused.push(`${n}: ${e.message}`);
        }
      }
      await load();
      if (refused.length) say(box, 'error', (done.length ? `deleted ${done.join(', ')}; ` : '') + `not deleted: ${refused.join('; ')}`);
      else say(box, 'ok', `deleted ${done.join(', ')}`);
      return;
    }
    if (names.length !== 1) return say(box, 'error', 'this action takes one certificate: select only one');
    const name = names[0];
    if (act === 'default') return makeDefault(name);
    if (act === 'export') return exportPane(pane, `certificates/${enc(name)}/export`, name, box);
    if (act === 'replace') return replacePane(pane, `certificates/${enc(name)}/replace`, name, box, load);
    if (act === 'renew') {
      try {
        const doc = await api('POST', `certificates/${enc(name)}/renew`, {});
        say(box, 'ok', `renewed "${name}"` + (doc && doc.name ? `: the new certificate is "${doc.name}"` : ''));
        await load();
      } catch (e) { sayError(box, e); }
    }
  });

  await load();
}

// The export form of the reference ("Security :: Certificates :: Export"): a format, the
// key or not, the chain or not, a passphrase; the answer is the file's bytes.
function exportPane(pane, path, name, box) {
  const form = h('form', { class: 'panel', id: 'export-form', novalidate: true },
    h('h2', {}, `Export "${name}"`),
    field({ label: 'Format', name: 'format', value: 'pem', options: [['pem', 'PEM'], ['der', 'DER'],
      ['p7b', 'PKCS#7 (.p7b)'], ['p12', 'PKCS#12 (.p12)'], ['p8', 'PKCS#8 key (.p8)'], ['pkcs1', 'PKCS#1 key']] }),
    field({ label: 'Include the private key', name: 'with_key', type: 'checkbox' }),
    field({ label: 'Include the certificate chain', name: 'with_chain', type: 'checkbox' }),
    field({ label: 'Passphrase', name: 'passphrase', type: 'password', autocomplete: 'new-password',
      hint: 'Protects an exported private key (strongly recommended).' }),
    h('div', { class: 'bar' }, h('button', { type: 'submit' }, 'Export'), h('span', { id: 'export-link' })));
  pane.replaceChildren(form);
  form.elements.format.focus();
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearInvalid(form);
    const f = form.elements;
    const body = { format: f.format.value, with_key: f.with_key.checked, with_chain: f.with_chain.checked };
    if (f.passphrase.value) body.passphrase = f.passphrase.value;
    try {
      const res = await api('POST', path, body, { raw: true });
      const blob = await res.blob();
      const ext = { pem: 'pem', der: 'der', p7b: 'p7b', p12: 'p12', p8: 'p8', pkcs1: 'key' }[body.format];
      download(blob, `${name}.${ext}`, form.querySelector('#export-link')).click();
      say(box, 'ok', `exported "${name}" (${blob.size} bytes)`);
    } catch (e) {
      if (e.absent) say(box, 'error', missing('export'));
      else sayError(box, e, form);
    }
  });
}

function replacePane(pane, path, name, box, after) {
  const form = h('form', { class: 'panel', novalidate: true },
    h('h2', {}, `Replace "${name}"`),
    field({ label: 'Certificate file', name: 'file', type: 'file', required: true }),
    field({ label: 'Private key file (if not in the file)', name: 'key', type: 'file' }),
    field({ label: 'Password of the file', name: 'password', type: 'password', autocomplete: 'off' }),
    h('button', { type: 'submit' }, 'Replace'));
  pane.replaceChildren(form);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const fd = multipart(form);
    try {
      await api('POST', path, fd);
      say(box, 'ok', `replaced "${name}" (the old certificate is kept as "${name}_REPLACED")`);
      pane.replaceChildren();
      await after();
    } catch (e) {
      if (e.absent) say(box, 'error', missing('replace'));
      else sayError(box, e, form);
    }
  });
}

// A multipart body of a form's files and non-empty text members.
function multipart(form) {
  const fd = new FormData();
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === 'file') for (const f of el.files) fd.append(el.name, f, f.name);
    else if (el.type === 'checkbox') { if (el.checked) fd.append(el.name, 'true'); }
    else if (el.value) fd.append(el.name, el.value);
  }
  return fd;
}

function docList(pairs) {
  return h('dl', { class: 'doc' }, pairs.filter(p => p).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

async function viewCertificate(name, ca) {
  const box = msgBox();
  show(`${ca ? 'CA certificate' : 'Certificate'} "${name}"`, box);
  try {
    const d = await api('GET', `${ca ? 'ca' : 'certificates'}/${enc(name)}`);
    main.append(h('section', { class: 'panel' }, warnings(d.warnings) || '', docList([
      ['Friendly name', d.name], ['Subject', d.subject], ['Issuer', d.issuer],
      ['Expiration', expiry(d)], ['Valid from', date(d.not_before)],
      ['Alternative names', sans(d.alternative_names)], ['Key', d.key],
      ['Signature algorithm', d.signature_algorithm], ['Serial', d.serial], ['SHA-256', d.sha256],
      ['Private key', yesno(d.private_key) + (d.private_key ? (d.exportable ? ' (exportable)' : ' (not exportable)') : '')],
      ['Default', yesno(d.default)], ['Chain status', d.chain_status],
      ['Used by', d.used_by && d.used_by.length ? d.used_by.join(', ') : 'nothing'],
      d.request ? ['Request', h('a', { href: `#/requests/${enc(d.request)}` }, d.request)] : null,
      d.predecessor ? ['Predecessor', d.predecessor] : null,
      d.successor ? ['Successor', d.successor] : null,
    ])), h('h2', {}, 'Chain'), table('The chain built in the store, the certificate first', [
      { head: 'Subject', cell: l => l.subject }, { head: 'Issuer', cell: l => l.issuer },
      { head: 'Expires', cell: l => date(l.not_after) },
    ], d.chain || []), h('p', {}, h('a', { href: ca ? '#/ca' : '#/certificates' }, ca ? 'Back to CA Certificates' : 'Back to Certificates')));
  } catch (e) {
    sayError(box, e);
  }
}

// ---- installation: create self-signed, create request, import ----

function subjectFields() {
  return [
    field({ label: 'Certificate Friendly Name', name: 'name', required: true, hint: 'How the certificate is named on this appliance.' }),
    field({ label: 'Common Name', name: 'cn', hint: 'Usually the main DNS name, e.g. www.example.com' }),
    field({ label: 'Subject Alternative Names', name: 'san', type: 'textarea', rows: 3,
      hint: 'One per line: DNS:name, IP:address or email:address (a bare name is taken as DNS:).' }),
    field({ label: 'Key type', name: 'key', value: '', options: [['', 'The appliance default'],
      ['rsa:2048', 'RSA 2048'], ['rsa:3072', 'RSA 3072'], ['rsa:4096', 'RSA 4096'],
      ['ec:p256', 'EC P-256'], ['ec:p384', 'EC P-384']] }),
    h('details', {}, h('summary', {}, 'More subject fields'),
      field({ label: 'Organization', name: 'org' }), field({ label: 'Organizational unit', name: 'ou' }),
      field({ label: 'City or locality', name: 'locality' }), field({ label: 'State or province', name: 'state' }),
      field({ label: 'Country (two letters)', name: 'country' }), field({ label: 'Email', name: 'email' })),
  ];
}

function subjectBody(form) {
  const f = form.elements, body = { name: f.name.value };
  for (const k of ['cn', 'key', 'org', 'ou', 'locality', 'state', 'country', 'email']) {
    if (f[k].value.trim()) body[k] = f[k].value.trim();
  }
  const list = f.san.value.split(/[\n,]+/).map(s => s.trim()).filter(Boolean)
    .map(s => (/^[A-Za-z]+:/.test(s) && !/^[0-9a-fA-F:]+$/.test(s)) ? s : (/^[0-9.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`));
  if (list.length) body.san = list;
  return body;
}

async function viewInstall() {
  await probeFeatures();
  const box = msgBox();
  const create = h('form', { class: 'panel', id: 'create-form', novalidate: true, 'aria-labelledby': 'create-h' },
    h('h2', { id: 'create-h' }, 'Create a certificate or a certificate request'),
    subjectFields(),
    field({ label: 'Days of validity (self-signed only)', name: 'days', type: 'number', min: 1,
      hint: 'Empty: the appliance default.' }),
    field({ label: 'The private key may never leave the appliance (not exportable)', name: 'no_export', type: 'checkbox' }),
    field({ label: 'A signing (CA) certificate request', name: 'signing', type: 'checkbox' }),
    h('div', { class: 'bar' },
      h('button', { type: 'submit', value: 'self', id: 'create-self' }, 'Create Self-Signed Certificate'),
      h('button', { type: 'submit', value: 'request', id: 'create-request' }, 'Create Certificate Request')));
  create.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearInvalid(create);
    const kind = ev.submitter ? ev.submitter.value : 'self';
    const body = subjectBody(create);
    const f = create.elements;
    if (f.no_export.checked) body.no_export = true;
    try {
      if (kind === 'self') {
        if (f.days.value) body.days = Number(f.days.value);
        if (f.signing.checked) body.signing = true;
        const doc = await api('POST', 'certificates', body);
        say(box, 'ok', `created the self-signed certificate "${doc.name}"`);
        create.reset();
      } else {
        if (f.signing.checked) body.signing = true;
        const doc = await api('POST', 'requests', body);
        go(`#/requests/${enc(doc.name)}`);
        announce(`Created the request "${doc.name}".`);
      }
    } catch (e) {
      sayError(box, e, create);
    }
  });

  const imp = importForm('certificates/import', 'certImport', box, 'import-form',
    'Import a certificate', 'Certificate file(s)',
    'PEM, DER, PKCS#7 (.p7b) or PKCS#12 (.p12/.pfx); a chain may come in the same file or in more files.');
  show('Certificate Installation', box, create, imp);
}

// An import form (certificates or CA certificates), multipart. Whether the route exists
// is known once it answers (see api.js): absent, the button is disabled with the reason.
function importForm(path, feature, box, id, title, label, hint, onDone) {
  const form = h('form', { class: 'panel', id, novalidate: true, 'aria-labelledby': `${id}-h` },
    h('h2', { id: `${id}-h` }, title),
    field({ label, name: 'file', type: 'file', multiple: true, required: true, hint }),
    feature === 'certImport' && field({ label: 'Private key file (if not in the files)', name: 'key', type: 'file' }),
    field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'off',
      hint: 'Of a PKCS#12 file or an encrypted key.' }),
    field({ label: 'Friendly name (optional)', name: 'name' }),
    h('button', { type: 'submit', id: `${id}-submit` }, 'Import'));
  const button = form.querySelector('button');
  const mark = () => {
    button.disabled = true;
    button.title = missing(`import (POST /api/v1/${path})`);
    form.append(h('p', { class: 'hint', id: `${id}-absent` }, `${button.title} The command line imports: tlsgate ${feature === 'caImport' ? 'ca' : 'cert'} import FILE…`));
  };
  if (features[feature] === 'no') mark();
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearInvalid(form);
    if (!form.elements.file.files.length) {
      form.elements.file.setAttribute('aria-invalid', 'true');
      form.elements.file.focus();
      return say(box, 'error', 'choose a file to import');
    }
    try {
      const doc = await api('POST', path, multipart(form));
      const rows = (doc && (doc.imported || [doc])) || [];
      const warn = rows.flatMap(r => r.warnings || []);
      say(box, 'ok', `imported ${rows.map(r => `"${r.name}" (${r.action || 'imported'})`).join(', ')}` +
        (warn.length ? `; warnings: ${warn.join('; ')}` : ''));
      form.reset();
      if (onDone) await onDone(); // the list beside the form shows what came in
    } catch (e) {
      if (e.absent) {
        features[feature] = 'no';
        mark();
        say(box, 'error', button.title);
      } else sayError(box, e, form);
    }
  });
  return form;
}

// ---- requests ----

async function viewRequests() {
  const box = msgBox();
  show('Certificate Requests', box);
  try {
    const rows = await api('GET', 'requests');
    const list = Array.isArray(rows) ? rows : rows.items || [];
    const holder = h('div', {}, table('Security :: Certificate Requests', [
      { head: 'Select', cell: r => h('input', { type: 'checkbox', class: 'pick', value: r.name, 'aria-label': `Select ${r.name}` }) },
      { head: 'Subject', cell: r => [h('a', { href: `#/requests/${enc(r.name)}` }, r.subject), h('br'), h('span', { class: 'hint' }, `(${r.name})`)] },
      { head: 'Alternative Name(s)', cell: r => sans(r.alternative_names) },
      { head: 'Key', cell: r => r.key },
      { head: 'Status', cell: r => r.status + (r.certificate ? ` (certificate "${r.certificate}")` : '') },
      { head: 'Created', cell: r => date(r.created) },
    ], list, { empty: 'No certificate requests.' }));
    const del = h('button', { type: 'button', id: 'request-delete', class: 'secondary' }, 'Delete the selected requests');
    del.addEventListener('click', async () => {
      const names = [...holder.querySelectorAll('input.pick:checked')].map(i => i.value);
      if (!names.length) return say(box, 'error', 'select a request first');
      if (!confirm(`Delete ${names.join(', ')}? Their private keys go with them.`)) return;
      try {
        for (const n of names) await api('DELETE', `requests/${enc(n)}`);
        viewRequests();
        announce(`Deleted ${names.join(', ')}.`);
      } catch (e) { sayError(box, e); }
    });
    main.append(h('p', {}, h('a', { href: '#/install' }, 'Create a request in Certificate Installation')),
      holder, list.length ? h('div', { class: 'bar' }, del) : '');
  } catch (e) {
    sayError(box, e);
  }
}

async function viewRequest(name) {
  const box = msgBox();
  show(`Certificate request "${name}"`, box);
  try {
    const d = await api('GET', `requests/${enc(name)}`);
    const ta = h('textarea', { id: 'request-pem', class: 'pem', readonly: true, 'aria-describedby': 'request-pem-hint' }, d.pem);
    const copy = h('button', { type: 'button', id: 'request-copy' }, 'Copy');
    const got = h('span', { role: 'status', id: 'copy-status' });
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(d.pem);
      } catch (e) {
        ta.select(); // no clipboard permission: the selection, copied the old way
        document.execCommand('copy');
      }
      got.textContent = 'Copied to the clipboard.';
    });
    const link = h('span');
    download(new Blob([d.pem], { type: 'application/pkcs10' }), `${name}.csr`, link, 'Download the request (.csr)');
    main.append(h('section', { class: 'panel' }, docList([
      ['Name', d.name], ['Subject', d.subject], ['Alternative names', sans(d.alternative_names)],
      ['Key', d.key], ['Signing (CA) request', yesno(d.signing)], ['Status', d.status],
      ['Created', date(d.created)],
      ['Certificate', d.certificate ? h('a', { href: `#/certificates/${enc(d.certificate)}` }, d.certificate) : 'not yet'],
    ])), h('section', { class: 'panel' },
      h('h2', {}, h('label', { for: 'request-pem' }, 'Request data')),
      h('p', { class: 'hint', id: 'request-pem-hint' }, 'Send this to the certificate authority; import the certificate it returns in Certificate Installation.'),
      ta, h('div', { class: 'bar' }, copy, link, got)),
    h('p', {}, h('a', { href: '#/requests' }, 'Back to Certificate Requests')));
  } catch (e) {
    sayError(box, e);
  }
}

// ---- CA certificates ----

const caState = { stack: [null] };

async function viewCA() {
  await probeFeatures();
  const box = msgBox();
  const holder = h('div'), pager = h('div', { class: 'pager' }), pane = h('div');
  const refresh = h('button', { type: 'button', id: 'ca-refresh', class: 'secondary' }, 'Refresh chain status');
  refresh.addEventListener('click', async () => {
    try {
      const d = await api('POST', 'refresh');
      say(box, 'ok', `chain status recomputed: ${d.changed} changed`);
      await load();
    } catch (e) { sayError(box, e); }
  });
  const acts = [['', 'Select Action'], ['export', 'Export'], ['replace', 'Replace'], ['delete', 'Delete']];
  const feat = { export: 'caExport', replace: 'caReplace', delete: 'caDelete' };
  const action = h('select', { id: 'ca-action' }, acts.map(([v, t]) => {
    const absent = v && features[feat[v]] === 'no';
    return h('option', { value: v, disabled: absent, title: absent ? missing(`${t.toLowerCase()} of CA certificates`) : null }, absent ? `${t} (not available)` : t);
  }));
  const bar = h('form', { class: 'bar', 'aria-label': 'Actions on the selected CA certificates' },
    h('div', { class: 'field' }, h('label', { for: 'ca-action' }, 'Action on the selected CA certificates'), action),
    h('button', { type: 'submit' }, 'Apply'), refresh);
  const imp = importForm('ca/import', 'caImport', box, 'ca-import-form', 'Import CA certificates', 'CA certificate file(s)',
    'PEM, DER or PKCS#7 (.p7b): roots and intermediates.', () => load());
  show('CA Certificates', bar, box, pane, holder, pager, imp);
  const picked = () => [...holder.querySelectorAll('input.pick:checked')].map(i => i.value);

  async function load() {
    const after = caState.stack[caState.stack.length - 1];
    try {
      const doc = await api('GET', `ca?limit=${PAGE}` + (after ? `&after=${enc(after)}` : ''));
      holder.replaceChildren(certTable(doc.items, { caption: `Security :: CA Certificates (${doc.total})`, ca: true }));
      pager.replaceChildren(
        h('button', { type: 'button', class: 'secondary', disabled: caState.stack.length < 2, onclick: () => { caState.stack.pop(); load(); } }, 'Previous page'),
        h('button', { type: 'button', class: 'secondary', disabled: !doc.next, onclick: () => { caState.stack.push(doc.next); load(); } }, 'Next page'));
    } catch (e) { sayError(box, e); }
  }
  bar.addEventListener('submit', async ev => {
    ev.preventDefault();
    const names = picked(), act = action.value;
    pane.replaceChildren();
    if (!act) return say(box, 'error', 'choose an action first');
    if (!names.length) return say(box, 'error', 'select a CA certificate first');
    if (act === 'delete') {
      if (!confirm(`Delete ${names.join(', ')}?`)) return;
      for (const n of names) {
        try {
          await api('DELETE', `ca/${enc(n)}`);
          say(box, 'ok', `deleted "${n}"`);
        } catch (e) {
          if (e.absent) {
            features.caDelete = 'no';
            return say(box, 'error', missing('deletion of CA certificates') + ' The command line deletes: tlsgate ca delete NAME');
          }
          return sayError(box, e);
        }
      }
      return load();
    }
    if (names.length !== 1) return say(box, 'error', 'this action takes one CA certificate: select only one');
    if (act === 'export') return exportPane(pane, `ca/${enc(names[0])}/export`, names[0], box);
    if (act === 'replace') return replacePane(pane, `ca/${enc(names[0])}/replace`, names[0], box, load);
  });
  await load();
}

// ---- trust stores ----

async function viewTrustStores() {
  const box = msgBox();
  show('Trust Stores', box);
  try {
    const rows = await api('GET', 'truststores');
    const list = Array.isArray(rows) ? rows : rows.items || [];
    main.append(table('Trust stores', [
      { head: 'Name', cell: r => h('a', { href: `#/truststores/${enc(r.name)}` }, r.name) },
      { head: 'Description', cell: r => r.description || '—' },
      { head: 'System roots included', cell: r => yesno(r.include_defaults) },
      { head: 'CA certificates', cell: r => String(r.ca_count), class: 'num' },
      { head: 'Default roots', cell: r => String(r.default_ca_count), class: 'num' },
      { head: 'Created', cell: r => date(r.created) },
    ], list, { empty: 'No trust stores. The command line makes them: tlsgate truststore create NAME' }));
  } catch (e) { sayError(box, e); }
}

async function viewTrustStore(name) {
  const box = msgBox();
  show(`Trust store "${name}"`, box);
  try {
    const d = await api('GET', `truststores/${enc(name)}`);
    main.append(h('section', { class: 'panel' }, docList([
      ['Name', d.name], ['Description', d.description], ['System roots included', yesno(d.include_defaults)],
      ['CA certificates', String(d.ca_count)], ['Default roots', String(d.default_ca_count)], ['Created', date(d.created)],
    ])), table('CA certificates added', [
      { head: 'Name', cell: e => h('a', { href: `#/ca/${enc(e.name)}` }, e.name) },
      { head: 'Subject', cell: e => e.subject }, { head: 'Expires', cell: e => date(e.not_after) },
    ], d.entries || [], { empty: 'No CA certificates added.' }),
    h('p', {}, h('a', { href: '#/truststores' }, 'Back to Trust Stores')));
  } catch (e) { sayError(box, e); }
}

// ---- users and audit: routes added by later work; absent, the page says so ----

function absentPage(box, e, what, cli) {
  if (e.absent) say(box, 'note', `${missing(what)} The command line has it: ${cli}`);
  else sayError(box, e);
}

function generic(rows, preferred) {
  const keys = preferred.filter(k => rows.some(r => k in r));
  return keys.map(k => ({ head: k.replace(/_/g, ' '), cell: r => {
    const v = r[k];
    return v === null || v === undefined ? '—' : typeof v === 'boolean' ? yesno(v) : typeof v === 'object' ? JSON.stringify(v) : String(v);
  } }));
}

async function viewUsers() {
  const box = msgBox();
  const users = h('div'), mine = h('section', { class: 'panel', 'aria-labelledby': 'tokens-h' });
  show('Users', box, users, mine);
  const roles = ['Administrator', 'Certificate manager', 'Inspection manager', 'Auditor'];
  async function loadUsers() {
    const doc = await api('GET', 'users');
    const rows = Array.isArray(doc) ? doc : doc.items || [];
    const act = (label, fn) => h('button', { type: 'button', class: 'secondary', onclick: async () => {
      try { await fn(); await loadUsers(); } catch (e) { sayError(box, e); }
    } }, label);
    users.replaceChildren(table('Users of the appliance', [
      ...generic(rows, ['name', 'role', 'group', 'disabled', 'must_change', 'token_count', 'created']),
      { head: 'Actions', cell: r => {
        const sel = h('select', { 'aria-label': `Role of ${r.name}` },
          roles.map(x => h('option', { value: x, selected: x === r.role }, x)));
        return h('div', { class: 'bar' }, sel,
          act(`Set the role of ${r.name}`, async () => {
            await api('POST', `users/${enc(r.name)}/role`, { role: sel.value });
            say(box, 'ok', `${r.name} is now ${sel.value}`);
          }),
          act(`${r.disabled ? 'Enable' : 'Disable'} ${r.name}`, async () => {
            await api('POST', `users/${enc(r.name)}/${r.disabled ? 'enable' : 'disable'}`);
            say(box, 'ok', `${r.name} ${r.disabled ? 'enabled' : 'disabled'}`);
          }),
          act(`Delete ${r.name}`, async () => {
            if (!window.confirm(`Delete the user ${r.name} and its tokens?`)) return;
            await api('DELETE', `users/${enc(r.name)}`);
            say(box, 'ok', `${r.name} deleted`);
          }));
      } },
    ], rows, { empty: 'No users.' }));
    const add = h('form', { id: 'user-add-form', class: 'panel', novalidate: true, 'aria-labelledby': 'user-add-h' },
      h('h2', { id: 'user-add-h' }, 'Add a user'),
      field({ label: 'User name', name: 'name', required: true }),
      field({ label: 'Role', name: 'role', options: roles.map(x => [x, x]), value: 'Auditor' }),
      field({ label: 'Password', name: 'password', type: 'password', required: true,
        autocomplete: 'new-password', hint: 'At least 12 characters.' }),
      h('button', { type: 'submit' }, 'Add the user'));
    add.addEventListener('submit', async ev => {
      ev.preventDefault();
      clearInvalid(add);
      try {
        await api('POST', 'users', { name: add.elements.name.value, role: add.elements.role.value,
          password: add.elements.password.value });
        say(box, 'ok', `${add.elements.name.value} added`);
        await loadUsers();
      } catch (e) { sayError(box, e, add); }
    });
    users.append(add);
  }
  try {
    await loadUsers();
  } catch (e) {
    if (e.status === 403) say(box, 'note', `Only an Administrator sees the other users; your own tokens are below.`);
    else absentPage(box, e, 'list of users (GET /api/v1/users)', 'tlsgate user list');
  }
  await tokensPanel(mine);
}

// One's own API tokens: listed (never their text), made (the text shown once, to copy),
// revoked. Another user's tokens are the command line's (tlsgate user token NAME).
async function tokensPanel(sec) {
  const box = msgBox(), holder = h('div'), shown = h('div', { id: 'token-new' });
  const form = h('form', { id: 'token-form', class: 'bar', novalidate: true, 'aria-label': 'A new API token' },
    field({ label: 'Label of a new token', name: 'label' }),
    field({ label: 'Days until it expires (empty: never)', name: 'days', type: 'number', min: 1 }),
    h('button', { type: 'submit' }, 'Make a token'));
  sec.append(h('h2', { id: 'tokens-h' }, `Your API tokens (${session.user})`), box, holder, form, shown);
  const base = `users/${enc(session.user)}/tokens`;
  async function load() {
    const rows = await api('GET', base);
    holder.replaceChildren(table('Your API tokens', [
      { head: 'Id', cell: r => String(r.id), rowHeader: true },
      { head: 'Label', cell: r => r.label ?? '—' },
      { head: 'Created', cell: r => date(r.created) },
      { head: 'Last used', cell: r => (r.last_used ? date(r.last_used) : 'never') },
      { head: 'Expires', cell: r => (r.expires ? date(r.expires) : 'never') + (r.expired ? ' (expired)' : '') },
      { head: 'Action', cell: r => h('button', { type: 'button', class: 'secondary', onclick: async () => {
        try {
          await api('DELETE', `${base}/${r.id}`);
          say(box, 'ok', `token ${r.id} revoked`);
          await load();
        } catch (e) { sayError(box, e); }
      } }, `Revoke token ${r.id}`) },
    ], rows, { empty: 'No tokens.' }));
  }
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clearInvalid(form);
    const body = {};
    if (form.elements.label.value) body.label = form.elements.label.value;
    if (form.elements.days.value) body.days = Number(form.elements.days.value);
    try {
      const t = await api('POST', base, body);
      const out = h('input', { id: 'token-text', readonly: true, value: t.token, 'aria-describedby': 'token-hint', size: 50 });
      shown.replaceChildren(h('div', { class: 'field' },
        h('label', { for: 'token-text' }, `Token ${t.id}`),
        h('span', { class: 'hint', id: 'token-hint' }, 'Shown only now: copy it; the appliance keeps only its SHA-256. Send it as "Authorization: Bearer TOKEN".'),
        out));
      say(box, 'ok', `token ${t.id} made`);
      form.reset();
      await load();
    } catch (e) { sayError(box, e, form); }
  });
  try { await load(); } catch (e) { sayError(box, e); }
}

const auditState = { offset: 0 };
async function viewAudit() {
  const box = msgBox();
  const holder = h('div'), pager = h('div', { class: 'pager' });
  show('Audit', box, holder, pager);
  try {
    const doc = await api('GET', `audit?limit=${PAGE}&offset=${auditState.offset}`);
    const rows = Array.isArray(doc) ? doc : doc.items || [];
    holder.replaceChildren(table('The audit log, newest first', generic(rows, ['time', 'actor', 'source', 'action', 'object', 'outcome', 'detail']), rows, { empty: 'Nothing recorded.' }));
    pager.replaceChildren(
      h('button', { type: 'button', class: 'secondary', disabled: auditState.offset === 0, onclick: () => { auditState.offset = Math.max(0, auditState.offset - PAGE); viewAudit(); } }, 'Newer'),
      h('button', { type: 'button', class: 'secondary', disabled: rows.length < PAGE, onclick: () => { auditState.offset += PAGE; viewAudit(); } }, 'Older'));
  } catch (e) { absentPage(box, e, 'audit log resource (GET /api/v1/audit)', 'tlsgate audit'); }
}

// ---- the router ----

const routes = [
  [/^#\/status$/, viewStatus],
  [/^#\/certificates$/, viewCertificates],
  [/^#\/certificates\/(.+)$/, n => viewCertificate(n, false)],
  [/^#\/install$/, viewInstall],
  [/^#\/requests$/, viewRequests],
  [/^#\/requests\/(.+)$/, viewRequest],
  [/^#\/ca$/, viewCA],
  [/^#\/ca\/(.+)$/, n => viewCertificate(n, true)],
  [/^#\/truststores$/, viewTrustStores],
  [/^#\/truststores\/(.+)$/, viewTrustStore],
  [/^#\/users$/, viewUsers],
  [/^#\/audit$/, viewAudit],
  [/^#\/password$/, viewPassword],
];

let ready = false;
async function route() {
  const hash = location.hash || '#/status';
  if (!session.user) {
    // after a reload: the cookie may still name a session; its CSRF token comes again
    try {
      adopt(await api('GET', 'session', undefined, { quiet: true }));
    } catch (e) {
      if (hash !== '#/login') { history.replaceState(null, '', '#/login'); }
      return viewLogin();
    }
  }
  if (hash === '#/login') return go('#/status');
  if (session.mustChange && hash !== '#/password') return go('#/password');
  frame(true);
  for (const [re, fn] of routes) {
    const m = re.exec(hash);
    if (m) {
      await fn(...m.slice(1).map(decodeURIComponent));
      main.dataset.ready = String(++readyCount);
      return;
    }
  }
  show('Not found', h('p', {}, 'There is no such page. ', h('a', { href: '#/status' }, 'Status')));
}
let readyCount = 0;

window.addEventListener('hashchange', () => { route().catch(fatal); });
function fatal(e) {
  console.error(e);
  main.append(h('p', { class: 'msg error', role: 'alert' }, `Error: the console failed: ${e.message}`));
}
if (!ready) {
  ready = true;
  route().catch(fatal);
}
