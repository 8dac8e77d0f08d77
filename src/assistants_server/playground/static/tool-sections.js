// The assistant editor's built-in tools: code_interpreter with its files, and file_search
// with its vector store (chosen, or made on the spot) filled by uploads whose ingestion is
// watched live.

import { fileInfo, listAll, post } from './api.js';
import { guard, report } from './alert.js';
import { field, fill, form, h } from './dom.js';
import { storeFilesPanel } from './store-files.js';
import { fileInput, uploadList, uploadWithProgress } from './uploads.js';

/** A tool's checkbox with the options that apply only while it is checked. */
function toolBox(label, testid, checked, about, body) {
  const box = h('input', { type: 'checkbox', testid, checked });
  const options = h('div', { class: 'tool-options' }, body);
  const sync = () => { options.hidden = !box.checked; };
  box.addEventListener('change', sync);
  sync();
  return { box, element: h('fieldset', { class: 'group' },
    h('legend', {}, h('label', { class: 'check' }, box, label)),
    h('p', { class: 'tool-about' }, about), options) };
}

/** code_interpreter: on/off, and the files its sandbox starts with (uploaded here). */
export function codeInterpreterSection(assistant) {
  const ids = [...(assistant?.tool_resources?.code_interpreter?.file_ids || [])];
  const list = h('ul', { class: 'chips', 'aria-label': 'Files for code_interpreter' });
  const uploads = uploadList();

  function draw() {
    fill(list, ids.map((id) => {
      const name = h('span', {}, id);
      fileInfo(id).then((info) => { name.textContent = info.filename; }, () => {});
      return h('li', { class: 'chip' }, name, h('button', {
        type: 'button', class: 'quiet small', 'aria-label': `Remove ${id}`,
        onclick: () => { ids.splice(ids.indexOf(id), 1); draw(); },
      }, '×'));
    }));
  }

  const input = fileInput({ testid: 'code-interpreter-upload', 'aria-label': 'Upload files for code_interpreter' },
    async (files) => {
      for (const file of files) {
        try {
          ids.push((await uploadWithProgress(uploads, file, 'assistants')).id);
          draw();
        } catch (error) { report(error); }
      }
    });
  const checked = Boolean(assistant?.tools.some((tool) => tool.type === 'code_interpreter'));
  const { box, element } = toolBox('Code interpreter', 'tool-code-interpreter', checked,
    'Runs Python in a sandbox; its files are in /mnt/data.', [
    field('Files (uploaded with purpose "assistants")', input), uploads, list]);
  draw();
  return {
    element,
    read: () => ({ enabled: box.checked, fileIds: box.checked ? [...ids] : [] }),
  };
}

/** file_search: on/off, its vector store (at most one), and that store's files. */
export function fileSearchSection(ctx, assistant) {
  let storeId = assistant?.tool_resources?.file_search?.vector_store_ids?.[0] || '';
  let panel = null;
  let panelCtx = null;
  const select = h('select', { testid: 'file-search-store' });
  const panelSlot = h('div');
  const name = h('input', { testid: 'new-store-name', placeholder: 'Store name', required: true,
    'aria-label': 'Name of the new vector store' });
  const creator = form({ class: 'inline', hidden: true, onsubmit: () => guard(createStore) },
    name, h('button', { type: 'submit', testid: 'create-store' }, 'Create store'),
    h('button', { type: 'button', class: 'quiet', onclick: () => { creator.hidden = true; } }, 'Cancel'));
  const upload = fileInput({ testid: 'file-search-upload', 'aria-label': 'Upload files into the store' },
    (files) => guard(async () => {
      if (creating) await creating.catch(() => {});
      if (!storeId) await makeStore(`${assistant?.name || 'Assistant'} files`);
      await panel.add(files);
    }));

  async function loadStores() {
    const stores = await listAll('/vector_stores', { limit: 100, order: 'desc' }, { signal: ctx.signal });
    if (storeId && !stores.some((store) => store.id === storeId)) {
      stores.unshift({ id: storeId, name: '(not found)' });
    }
    fill(select, h('option', { value: '' }, '— no store —'),
      stores.map((store) => h('option', { value: store.id },
        `${store.name || '(unnamed)'} · ${store.file_counts?.total ?? '?'} file(s) · ${store.id}`)));
    select.value = storeId;
  }

  function showStore() {
    panelCtx?.close();
    panel = null;
    upload.disabled = false;
    if (!storeId) {
      fill(panelSlot, h('p', { class: 'muted' }, 'Choose a vector store, create one, or upload files (a store is made for them).'));
      return;
    }
    panelCtx = ctx.child();
    panel = storeFilesPanel(panelCtx, storeId);
    fill(panelSlot, panel.element);
  }

  // A store being created; files chosen meanwhile wait for it rather than make another.
  let creating = null;

  async function makeStore(storeName) {
    creating = post('/vector_stores', { name: storeName }).then((store) => {
      storeId = store.id;
      showStore();
    });
    try { await creating; } finally { creating = null; }
    await loadStores();
  }

  async function createStore() {
    const storeName = name.value.trim();
    if (!storeName) { name.focus(); return; }
    await makeStore(storeName);
    creator.hidden = true;
    name.value = '';
    select.focus();
  }

  select.addEventListener('change', () => { storeId = select.value; showStore(); });
  const newStore = h('button', { type: 'button', testid: 'new-store', onclick: () => {
    creator.hidden = false;
    name.focus();
  } }, 'New store');
  const checked = Boolean(assistant?.tools.some((tool) => tool.type === 'file_search'));
  const { box, element } = toolBox('File search', 'tool-file-search', checked,
    'Searches one vector store; answers cite the files they used.', [
    h('div', { class: 'inline' }, field('Vector store', select), newStore),
    creator,
    field('Add files to the store', upload),
    panelSlot]);
  loadStores().catch(report);
  showStore();
  return {
    element,
    read: () => ({ enabled: box.checked, storeIds: box.checked && storeId ? [storeId] : [] }),
  };
}
