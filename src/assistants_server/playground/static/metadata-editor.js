// Metadata as key/value rows, at most 16 (the API's limit: keys up to 64 characters, values
// up to 512). The server merges metadata on modify, so a removed row stays on the object.

import { h } from './dom.js';

const MAX = 16;

export function metadataEditor(initial = {}) {
  const rows = h('div', { class: 'meta-rows' });
  const addButton = h('button', { type: 'button', class: 'small', onclick: () => add('', '').focus() },
    'Add metadata');
  const element = h('fieldset', { class: 'group' },
    h('legend', {}, 'Metadata'),
    rows,
    addButton,
    h('small', { class: 'hint' }, 'Saving adds or changes pairs; the server keeps pairs removed here.'));

  function add(key, value) {
    const keyInput = h('input', { value: key, maxlength: 64, placeholder: 'key', 'aria-label': 'Metadata key' });
    const row = h('div', { class: 'inline meta-row' },
      keyInput,
      h('input', { value, maxlength: 512, placeholder: 'value', 'aria-label': 'Metadata value' }),
      h('button', { type: 'button', class: 'quiet small', 'aria-label': 'Remove this pair',
        onclick: () => { row.remove(); sync(); } }, '×'));
    rows.append(row);
    sync();
    return keyInput;
  }

  function sync() { addButton.disabled = rows.children.length >= MAX; }

  function read() {
    const metadata = {};
    for (const row of rows.children) {
      const [key, value] = [...row.querySelectorAll('input')].map((input) => input.value);
      if (!key.trim() && !value) continue;
      if (!key.trim()) return { problem: `Metadata value "${value}" has no key.` };
      metadata[key.trim()] = value;
    }
    return { metadata, problem: '' };
  }

  for (const [key, value] of Object.entries(initial || {})) add(key, value);
  sync();
  return { element, read };
}
