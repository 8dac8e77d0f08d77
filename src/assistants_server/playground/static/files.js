// The files page: every file with its purpose, size and date; uploads by drag and drop or a
// file input, each with a progress bar; download (fetched with the key, saved from a blob)
// and delete.

import { del, downloadFile, get } from './api.js';
import { guard, report } from './alert.js';
import { bytes, field, fill, h, when } from './dom.js';
import { acceptDrops, fileInput, uploadList, uploadWithProgress } from './uploads.js';

const PURPOSES = ['assistants', 'vision', 'batch', 'user_data'];

export async function renderFiles(main, ctx) {
  const purpose = h('select', { testid: 'file-purpose' }, PURPOSES.map((p) => h('option', { value: p }, p)));
  const uploads = uploadList();
  const input = fileInput({ testid: 'file-upload', 'aria-label': 'Choose files to upload' }, uploadAll);
  const zone = h('div', { testid: 'file-drop', class: 'drop-zone' },
    h('p', {}, 'Drop files here, or ', h('label', { class: 'file-pick' }, 'choose files', input)),
    field('Purpose', purpose));
  acceptDrops(zone, uploadAll);
  const rows = h('tbody');
  const status = h('p', { class: 'muted', role: 'status' });

  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Files')),
    zone, uploads,
    h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Filename', 'Purpose', 'Bytes', 'Created', 'ID', ''].map((t) => h('th', { scope: 'col' }, t)))),
      rows),
    status);

  async function load() {
    const page = await get('/files', { signal: ctx.signal });
    const files = [...page.data].sort((a, b) => b.created_at - a.created_at);
    fill(rows, files.map(row));
    status.textContent = files.length ? `${files.length} file(s).` : 'No files yet.';
  }

  async function uploadAll(files) {
    const chosen = purpose.value;
    await Promise.all(files.map((file) => uploadWithProgress(uploads, file, chosen).catch(report)));
    if (!ctx.closed) await load().catch(report);
  }

  function row(file) {
    return h('tr', { testid: 'file-item' },
      h('td', {}, file.filename),
      h('td', {}, h('span', { class: 'pill' }, file.purpose)),
      h('td', { class: 'num' }, bytes(file.bytes)),
      h('td', { class: 'small' }, when(file.created_at)),
      h('td', { class: 'mono small muted' }, file.id),
      h('td', { class: 'row-actions' },
        h('button', { type: 'button', class: 'small', 'aria-label': `Download ${file.filename}`,
          onclick: () => guard(() => downloadFile(file.id, file.filename)) }, 'Download'),
        h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${file.filename}`,
          onclick: () => {
            if (!confirm(`Delete ${file.filename}? It also leaves every vector store it is in.`)) return;
            guard(async () => { await del(`/files/${file.id}`); await load(); });
          } }, 'Delete')));
  }

  await load();
}
