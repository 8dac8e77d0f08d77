// Uploads with a visible progress bar each: used by the files page, vector stores, the
// assistant editor and the chat's attachments.

import { upload } from './api.js';
import { h } from './dom.js';

/** A list element that holds one row per upload in flight. */
export function uploadList() {
  return h('ul', { class: 'uploads', 'aria-label': 'Uploads in progress' });
}

/**
 * Upload `file` with purpose `purpose`, showing its progress as a row of `list`. The row goes
 * once the upload ends; a failure is thrown (the caller reports it).
 */
export async function uploadWithProgress(list, file, purpose) {
  const bar = h('progress', { testid: 'upload-progress', max: 1, value: 0,
    'aria-label': `Uploading ${file.name}` });
  const row = h('li', { class: 'upload-row' }, h('span', { class: 'upload-name' }, file.name), bar);
  list.append(row);
  try {
    return await upload(file, purpose, (fraction) => { bar.value = fraction; });
  } finally {
    row.remove();
  }
}

/** Make `zone` accept dropped files, handing them to `onFiles` (an array of File). */
export function acceptDrops(zone, onFiles) {
  const over = (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  };
  zone.addEventListener('dragenter', over);
  zone.addEventListener('dragover', over);
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length) onFiles(files);
  });
}

/** A file input that hands its chosen files to `onFiles`, then clears itself so the same
 *  file can be chosen again. */
export function fileInput(props, onFiles) {
  const input = h('input', { type: 'file', multiple: true, ...props });
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    if (files.length) onFiles(files);
  });
  return input;
}
