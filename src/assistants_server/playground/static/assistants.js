// The assistants list: every assistant (paged through `after`), newest first.

import { listAll } from './api.js';
import { h, when } from './dom.js';

export async function renderAssistantList(main, ctx) {
  const list = h('ul', { class: 'rows', 'aria-label': 'Assistants' });
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  main.append(
    h('div', { class: 'page-head' },
      h('h1', {}, 'Assistants'),
      h('button', { type: 'button', class: 'primary', testid: 'new-assistant',
        onclick: () => { location.hash = '#/assistants/new'; } }, 'New assistant')),
    status, list);

  let assistants;
  try {
    assistants = await listAll('/assistants', { limit: 100, order: 'desc' }, { signal: ctx.signal });
  } catch (error) {
    status.textContent = '';
    throw error;
  }
  status.textContent = assistants.length ? '' : 'No assistants yet: create one.';
  for (const assistant of assistants) {
    const tools = assistant.tools.map((tool) => tool.type === 'function'
      ? tool.function.name : tool.type).join(', ');
    list.append(h('li', { testid: 'assistant-item', class: 'row' },
      h('a', { href: `#/assistants/${assistant.id}`, class: 'row-main' },
        h('strong', {}, assistant.name || '(unnamed)'),
        h('span', { class: 'muted mono small' }, assistant.id)),
      h('span', { class: 'pill' }, assistant.model),
      h('span', { class: 'muted small' }, tools || 'no tools'),
      h('span', { class: 'muted small' }, when(assistant.created_at))));
  }
}
