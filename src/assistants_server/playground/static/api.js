// The only way the page talks to the server: the public /v1 API of this origin, with the key
// the user typed. The key lives in sessionStorage (this tab only) and travels in the
// Authorization header, never in a URL, so file contents are fetched and handed to the page
// as blob: URLs rather than linked to.

const KEY = 'playground.api-key';
const BASE = '/v1';

export function getKey() { return sessionStorage.getItem(KEY) || ''; }

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const all = { 'OpenAI-Beta': 'assistants=v2', ...extra };
  const key = getKey();
  if (key) all.Authorization = `Bearer ${key}`;
  return all;
}

/** An error the API answered with: its `error` object's words, untouched. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.type = error.type ?? null;
    this.param = error.param ?? null;
    this.code = error.code ?? null;
  }
}

/** The ApiError of a failed response; a body that is not the error envelope (a proxy's
 *  page, say) is named by its status instead. */
function errorOf(status, statusText, text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === 'object' && body.error) return new ApiError(status, body.error);
  } catch { /* not JSON */ }
  return new ApiError(status, { message: `HTTP ${status} ${statusText || ''}`.trim() });
}

async function send(method, path, body, options = {}) {
  const init = { method, headers: headers(options.headers), signal: options.signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(BASE + path, init);
  if (!response.ok) throw errorOf(response.status, response.statusText, await response.text());
  return response;
}

/** One JSON call: the parsed body, or an ApiError thrown. */
export async function api(method, path, body, options) {
  const response = await send(method, path, body, options);
  return response.json();
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body = {}, options) => api('POST', path, body, options);
export const del = (path, options) => api('DELETE', path, undefined, options);

/** A response whose body is read as it comes (an event stream); errors thrown as for `api`. */
export function stream(method, path, body, options) {
  return send(method, path, body, options);
}

/** Query string from an object; arrays repeat their key (include[]=a&include[]=b). */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(name, item);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Every item of a cursor-paged list, following `after` while `has_more`. */
export async function listAll(path, params = {}, options) {
  const items = [];
  let after;
  for (let pages = 0; pages < 100; pages++) {
    const page = await get(path + query({ ...params, after }), options);
    items.push(...page.data);
    if (!page.has_more || !page.last_id) break;
    after = page.last_id;
  }
  return items;
}

/**
 * Upload a file (POST /v1/files, multipart) with progress: XMLHttpRequest, because fetch
 * reports no upload progress. `onProgress(fraction)` gets 0..1. Resolves to the File object.
 */
export function upload(file, purpose, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${BASE}/files`);
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(JSON.parse(xhr.responseText));
      } else reject(errorOf(xhr.status, xhr.statusText, xhr.responseText));
    };
    xhr.onerror = () => reject(new Error(`Uploading ${file.name} failed: the server could not be reached.`));
    const body = new FormData();
    body.append('purpose', purpose);
    body.append('file', file, file.name);
    xhr.send(body);
  });
}

// --- files' names and contents, cached: messages and steps name the same files often ----

const infos = new Map();
const blobs = new Map();

/** The File object of an id (its filename), fetched once. */
export function fileInfo(id) {
  if (!infos.has(id)) {
    const pending = get(`/files/${encodeURIComponent(id)}`);
    pending.catch(() => infos.delete(id)); // a later call may try again
    infos.set(id, pending);
  }
  return infos.get(id);
}

/** A blob: URL of a file's content, fetched with the key (an <img> or link cannot send it). */
export function fileURL(id) {
  if (!blobs.has(id)) {
    const pending = send('GET', `/files/${encodeURIComponent(id)}/content`)
      .then((response) => response.blob())
      .then((blob) => URL.createObjectURL(blob));
    pending.catch(() => blobs.delete(id));
    blobs.set(id, pending);
  }
  return blobs.get(id);
}

/** Save a file's content under its name (or `name`), through a blob: URL. */
export async function downloadFile(id, name) {
  const url = await fileURL(id);
  let filename = name;
  if (!filename) {
    try { filename = (await fileInfo(id)).filename; } catch { filename = id; }
  }
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
}
