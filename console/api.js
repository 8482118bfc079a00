// api.js — the console's one way to the JSON API (docs/api.md): the session cookie goes by
// itself (HttpOnly: this script never sees it), every change carries the session's CSRF
// token, errors become ApiError with the API's sentence and field.

export const session = { user: null, role: null, mustChange: false, csrf: null };

export class ApiError extends Error {
  constructor(status, doc) {
    super((doc && doc.message) || `the appliance answered HTTP ${status}`);
    this.status = status;
    this.error = doc && doc.error;
    this.field = doc && doc.field;
  }
  // The route is not in this daemon: 404 "there is nothing at …" or 405 (the path is
  // another route's, taking other methods). A missing object is 404 too, but with
  // another sentence.
  get absent() {
    return this.status === 405 || (this.status === 404 && /^there is nothing at /.test(this.message));
  }
}

// Called when the session has ended (401) or must change its password first (403).
let onSessionLost = () => {};
let onMustChange = () => {};
export function setHandlers(lost, mustChange) {
  onSessionLost = lost;
  onMustChange = mustChange;
}

// body: an object (sent as JSON), a FormData (multipart), or undefined. raw: hand back
// the Response of a 2xx answer (a file) instead of parsing JSON.
export async function api(method, path, body, { raw = false, quiet = false } = {}) {
  const headers = {};
  let payload;
  if (method !== 'GET') headers['X-CSRF-Token'] = session.csrf || '';
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch('/api/v1/' + path, {
    method, headers, body: payload, credentials: 'same-origin', cache: 'no-store',
  });
  if (raw && res.ok) return res;
  let doc = null;
  if ((res.headers.get('Content-Type') || '').includes('json')) doc = await res.json().catch(() => null);
  if (!res.ok) {
    const e = new ApiError(res.status, doc);
    if (!quiet && res.status === 401 && path !== 'session') onSessionLost(e);
    if (!quiet && res.status === 403 && e.error === 'password_change_required') onMustChange(e);
    throw e;
  }
  return doc;
}

export const enc = encodeURIComponent;

// What this daemon offers beyond the core routes: some routes are added by later work
// (export, replace, renew, imports, users, audit, the password change). The OpenAPI
// document says it when there is one; else a GET on a POST-only route answers 405 when
// the route exists and 404 when not (no handler runs, nothing is logged). Imports and the
// CA deletion share their path with a GET route, so a GET cannot tell: they stay
// 'unknown' until used, and a 405/404-nothing answer then marks them absent.
export const features = {
  export: 'unknown', replace: 'unknown', renew: 'unknown', caExport: 'unknown',
  caReplace: 'unknown', caDelete: 'unknown', certImport: 'unknown', caImport: 'unknown',
  passwd: 'unknown',
};

const openapiPaths = {
  export: ['/certificates/{name}/export', 'post'],
  replace: ['/certificates/{name}/replace', 'post'],
  renew: ['/certificates/{name}/renew', 'post'],
  caExport: ['/ca/{name}/export', 'post'],
  caReplace: ['/ca/{name}/replace', 'post'],
  caDelete: ['/ca/{name}', 'delete'],
  certImport: ['/certificates/import', 'post'],
  caImport: ['/ca/import', 'post'],
  passwd: ['/users/{name}/password', 'post'],
};
const probes = {
  export: 'certificates/-/export', replace: 'certificates/-/replace',
  renew: 'certificates/-/renew', caExport: 'ca/-/export', caReplace: 'ca/-/replace',
  passwd: 'users/-/password',
};

let probed = null;
export function probeFeatures() {
  if (probed) return probed;
  probed = (async () => {
    try {
      const doc = await api('GET', 'openapi.json', undefined, { quiet: true });
      const paths = (doc && doc.paths) || {};
      for (const [k, [p, m]] of Object.entries(openapiPaths)) {
        const entry = paths[p] || paths['/api/v1' + p];
        features[k] = entry && entry[m] ? 'yes' : 'no';
      }
      return features;
    } catch (e) { /* no OpenAPI document yet: probe */ }
    await Promise.all(Object.entries(probes).map(async ([k, p]) => {
      try {
        await api('GET', p, undefined, { quiet: true });
        features[k] = 'yes';
      } catch (e) {
        if (e.status === 405) features[k] = 'yes';
        else if (e.absent) features[k] = 'no';
      }
    }));
    return features;
  })();
  return probed;
}
export function resetFeatures() { probed = null; }

// Why an action is not offered (the tooltip of a disabled control).
export function missing(route) {
  return `This appliance's API has no ${route} yet, so the console cannot offer it.`;
}
