// A vector store's files, live: their ingestion status (in_progress / completed / failed,
// exactly as the API says) and errors, polled every second while any is still in progress.
// Shared by the assistant editor (file_search) and the vector store page.

import { del, fileInfo, listAll, post } from './api.js';
import { guard, report } from './alert.js';
import { bytes, h, fill } from './dom.js';
import { uploadList, uploadWithProgress } from './uploads.js';

/**
 * The panel of store `storeId`. `ctx` is the view's context (polling stops with it).
 * Returns { element, add(files), refresh() }: `add` uploads files (with progress) and
 * attaches them to the store.
 */
export function storeFilesPanel(ctx, storeId, { onChange } = {}) {
  const uploads = uploadList();
  const list = h('ul', { class: 'store-files', 'aria-label': 'Files in the vector store', 'aria-live': 'polite' });
  const empty = h('p', { class: 'muted' }, 'No files in this store yet.');
  const element = h('div', { class: 'store-panel' }, uploads, list, empty);
  let stopPolling = null;
  let closed = false;
  ctx.signal.addEventListener('abort', () => { closed = true; });

  async function refresh() {
    if (closed) return;
    const files = await listAll(`/vector_stores/${storeId}/files`, { limit: 100, order: 'asc' },
      { signal: ctx.signal });
    if (closed) return;
    fill(list, files.map(row));
    empty.hidden = files.length > 0;
    const busy = files.some((file) => file.status === 'in_progress');
    if (busy && !stopPolling) {
      stopPolling = ctx.every(1000, () => refresh().catch(stopOnError));
    } else if (!busy && stopPolling) {
      stopPolling();
      stopPolling = null;
      onChange?.(files);
    }
  }

  function stopOnError(error) {
    stopPolling?.();
    stopPolling = null;
    report(error);
  }

  function row(file) {
    const name = h('span', { class: 'file-name' }, file.id);
    fileInfo(file.id).then((info) => { name.textContent = info.filename; }, () => {});
    const remove = h('button', {
      type: 'button', class: 'quiet small', 'aria-label': `Remove ${file.id} from the store`,
      onclick: () => guard(async () => {
        remove.disabled = true;
        await del(`/vector_stores/${storeId}/files/${file.id}`);
        await refresh();
        onChange?.();
      }),
    }, 'Remove');
    return h('li', { testid: 'store-file', class: 'store-file' },
      name,
      h('span', { testid: 'store-file-status', class: `status status-${file.status}` }, file.status),
      h('span', { class: 'muted small' }, file.usage_bytes ? bytes(file.usage_bytes) : ''),
      remove,
      file.last_error ? h('span', { class: 'file-error' }, file.last_error.message) : null);
  }

  async function add(files) {
    // One after another: each upload's bar then means something, and the store sees them
    // in the order chosen.
    for (const file of files) {
      try {
        const uploaded = await uploadWithProgress(uploads, file, 'assistants');
        await post(`/vector_stores/${storeId}/files`, { file_id: uploaded.id });
        await refresh();
      } catch (error) {
        report(error);
      }
    }
  }

  refresh().catch(report);
  return { element, add, refresh };
}
