// Vector stores: the list (create by name, delete), and one store: its files with their
// ingestion status, uploads into it, and a search box showing what the store finds.

import { del, get, listAll, post } from './api.js';
import { guard, report } from './alert.js';
import { busy, bytes, field, fill, form, h, when } from './dom.js';
import { storeFilesPanel } from './store-files.js';
import { fileInput } from './uploads.js';

export async function renderVectorStores(main, ctx) {
  const name = h('input', { testid: 'vector-store-name', placeholder: 'Name of the new store',
    'aria-label': 'Name of the new vector store' });
  const creator = form({ class: 'inline', hidden: true, onsubmit: () => guard(create) },
    name, h('button', { type: 'submit', class: 'primary' }, 'Create'),
    h('button', { type: 'button', class: 'quiet', onclick: () => { creator.hidden = true; } }, 'Cancel'));
  const list = h('ul', { class: 'rows', 'aria-label': 'Vector stores' });
  const status = h('p', { class: 'muted', role: 'status' });

  main.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Vector stores'), h('div', { class: 'spacer' }),
      h('button', { type: 'button', class: 'primary', testid: 'new-vector-store',
        onclick: () => { creator.hidden = false; name.focus(); } }, 'New vector store')),
    creator, status, list);

  async function create() {
    await post('/vector_stores', { name: name.value.trim() || null });
    name.value = '';
    creator.hidden = true;
    await load();
  }

  async function load() {
    const stores = await listAll('/vector_stores', { limit: 100, order: 'desc' }, { signal: ctx.signal });
    fill(list, stores.map(row));
    status.textContent = stores.length ? '' : 'No vector stores yet.';
  }

  function row(store) {
    const open = () => { location.hash = `#/vector_stores/${store.id}`; };
    const counts = store.file_counts;
    // The whole row opens the store; its link is there for the keyboard.
    return h('li', { testid: 'vector-store-item', class: 'row clickable',
      onclick: (event) => { if (!event.target.closest('button, a')) open(); } },
    h('a', { href: `#/vector_stores/${store.id}`, class: 'row-main' },
      h('strong', {}, store.name || '(unnamed)'), h('span', { class: 'muted mono small' }, store.id)),
    h('span', { class: 'small' }, `${counts.completed}/${counts.total} files ready`
      + (counts.in_progress ? `, ${counts.in_progress} in progress` : '')
      + (counts.failed ? `, ${counts.failed} failed` : '')),
    h('span', { class: 'muted small' }, bytes(store.usage_bytes)),
    h('span', { class: 'muted small' }, when(store.created_at)),
    h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete ${store.name || store.id}`,
      onclick: () => {
        if (!confirm(`Delete the vector store "${store.name || store.id}"? Its files stay.`)) return;
        guard(async () => { await del(`/vector_stores/${store.id}`); await load(); });
      } }, 'Delete'));
  }

  await load();
}

export async function renderVectorStore(main, ctx, storeId) {
  const store = await get(`/vector_stores/${storeId}`, { signal: ctx.signal });
  if (ctx.closed) return;
  const panel = storeFilesPanel(ctx, storeId);
  const upload = fileInput({ testid: 'store-upload', 'aria-label': 'Upload files into this store' },
    (files) => panel.add(files));
  const searchBox = h('input', { testid: 'store-search', type: 'search', placeholder: 'What to look for',
    'aria-label': 'Search this store' });
  const go = h('button', { type: 'submit', testid: 'store-search-go' }, 'Search');
  const results = h('ol', { class: 'hits', 'aria-label': 'Search results' });
  const found = h('p', { class: 'muted', role: 'status' });

  main.append(
    h('div', { class: 'page-head' },
      h('a', { href: '#/vector_stores' }, '← Vector stores'),
      h('h1', {}, store.name || '(unnamed store)'),
      h('span', { class: 'mono muted small' }, `${store.id} · ${when(store.created_at)}`)),
    h('div', { class: 'columns' },
      h('section', { class: 'card stack', 'aria-label': 'Files' },
        h('h2', {}, 'Files'), field('Add files (uploaded, then indexed)', upload), panel.element),
      h('section', { class: 'card stack', 'aria-label': 'Search' },
        h('h2', {}, 'Search'),
        form({ class: 'inline', role: 'search', onsubmit: () => busy(go, search) }, searchBox, go),
        found, results)));

  async function search() {
    const text = searchBox.value.trim();
    if (!text) { searchBox.focus(); return; }
    try {
      const page = await post(`/vector_stores/${storeId}/search`, { query: text });
      found.textContent = `${page.data.length} result(s).`;
      fill(results, page.data.map((hit) => h('li', { testid: 'search-result', class: 'hit' },
        h('div', { class: 'hit-head' }, h('strong', {}, hit.filename),
          h('span', { class: 'pill' }, `score ${Number(hit.score).toFixed(2)}`)),
        (hit.content || []).map((part) => h('p', { class: 'hit-text' }, part.text)))));
    } catch (error) { report(error); }
  }
}
