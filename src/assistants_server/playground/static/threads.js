// The threads list (GET /v1/threads is this server's extension), newest first, 20 at a time
// with "Load more", filtered by metadata `key=value` (several joined with &).

import { get, post, query } from './api.js';
import { clearError, guard, report, showError } from './alert.js';
import { busy, form, h, when } from './dom.js';

/** `a=1&b=2` as {"metadata[a]": "1", "metadata[b]": "2"}; null when a pair has no `=`. */
function parseFilter(text) {
  const params = {};
  for (const pair of text.split('&').map((p) => p.trim()).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at < 1) return null;
    params[`metadata[${pair.slice(0, at).trim()}]`] = pair.slice(at + 1).trim();
  }
  return params;
}

export function renderThreadList(main, ctx) {
  const filter = h('input', { testid: 'threads-filter', type: 'search', placeholder: 'metadata key=value',
    'aria-label': 'Filter threads by metadata (key=value, several joined with &)' });
  const list = h('ul', { class: 'rows', 'aria-label': 'Threads' });
  const status = h('p', { class: 'muted', role: 'status' });
  const more = h('button', { type: 'button', testid: 'threads-more', hidden: true,
    onclick: () => guard(() => load(false)) }, 'Load more');
  let after = null;
  let filterParams = {};

  main.append(
    h('div', { class: 'page-head' },
      h('h1', {}, 'Threads'),
      form({ class: 'inline', role: 'search', onsubmit: apply }, filter,
        h('button', { type: 'submit' }, 'Filter')),
      h('div', { class: 'spacer' }),
      h('button', { type: 'button', class: 'primary', testid: 'new-thread',
        onclick: (event) => busy(event.currentTarget, () => guard(async () => {
          const thread = await post('/threads', {});
          location.hash = `#/threads/${thread.id}`;
        })) }, 'New thread')),
    status, list, more);

  function apply() {
    const params = parseFilter(filter.value);
    if (params === null) {
      showError('Filter threads with key=value (several pairs joined with &).');
      return;
    }
    clearError();
    filterParams = params;
    guard(() => load(true));
  }

  async function load(fresh) {
    if (fresh) after = null;
    more.disabled = true;
    try {
      const page = await get('/threads' + query({ limit: 20, order: 'desc', after, ...filterParams }),
        { signal: ctx.signal });
      if (fresh) list.replaceChildren();
      for (const thread of page.data) list.append(row(thread));
      after = page.last_id;
      more.hidden = !page.has_more;
      status.textContent = list.children.length ? '' : 'No threads.';
    } finally {
      more.disabled = false;
    }
  }

  load(true).catch(report);
}

function row(thread) {
  const pairs = Object.entries(thread.metadata || {}).map(([k, v]) => h('span', { class: 'pill' }, `${k}=${v}`));
  return h('li', { testid: 'thread-item', class: 'row' },
    h('a', { href: `#/threads/${thread.id}`, class: 'row-main mono' }, thread.id),
    h('span', { class: 'pills' }, pairs),
    h('span', { class: 'muted small' }, when(thread.created_at)));
}
