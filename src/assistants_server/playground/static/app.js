// The page's entry: theme, API key, and the hash router that shows one view at a time.
// Each view gets a fresh context (context.js) that closes when the user navigates away, so
// pollers stop and streams close with the view that started them.

import { getKey, setKey } from './api.js';
import { newContext } from './context.js';
import { initAlert, clearError, report } from './alert.js';
import { renderAssistantList } from './assistants.js';
import { renderAssistantEditor } from './assistant-editor.js';
import { renderThreadList } from './threads.js';
import { renderChat } from './chat.js';
import { renderFiles } from './files.js';
import { renderVectorStores, renderVectorStore } from './vector-stores.js';

const main = document.getElementById('main');
const keyInput = document.getElementById('api-key');

// --- theme: the system's unless the user chose (only the theme is kept in localStorage) ---

const THEME = 'playground.theme';
const systemDark = window.matchMedia('(prefers-color-scheme: dark)');
const toggle = document.getElementById('theme-toggle');

function applyTheme() {
  const chosen = localStorage.getItem(THEME);
  const theme = chosen || (systemDark.matches ? 'dark' : 'light');
  document.documentElement.dataset.theme = theme;
  const other = theme === 'dark' ? 'light' : 'dark';
  toggle.textContent = theme === 'dark' ? 'Light' : 'Dark';
  toggle.setAttribute('aria-label', `Switch to the ${other} theme`);
  toggle.setAttribute('aria-pressed', String(theme === 'dark'));
}

toggle.addEventListener('click', () => {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME, next);
  applyTheme();
});
systemDark.addEventListener('change', applyTheme);
applyTheme();

// --- the key ------------------------------------------------------------------------------

initAlert({
  bar: document.getElementById('alert-bar'),
  text: document.getElementById('error-text'),
  keyHint: document.getElementById('key-hint'),
  keyInput,
});
document.getElementById('alert-close').addEventListener('click', clearError);
keyInput.value = getKey();
document.getElementById('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  setKey(keyInput.value.trim());
  keyInput.placeholder = 'sk-… (if the server needs one)';
  render(); // the view again, with the new key
});

// --- routes -------------------------------------------------------------------------------

const ROUTES = [
  [/^assistants$/, renderAssistantList],
  [/^assistants\/new$/, (el, ctx) => renderAssistantEditor(el, ctx, null)],
  [/^assistants\/([\w-]+)$/, (el, ctx, id) => renderAssistantEditor(el, ctx, id)],
  [/^threads$/, renderThreadList],
  [/^threads\/([\w-]+)$/, (el, ctx, id) => renderChat(el, ctx, id)],
  [/^files$/, renderFiles],
  [/^vector_stores$/, renderVectorStores],
  [/^vector_stores\/([\w-]+)$/, (el, ctx, id) => renderVectorStore(el, ctx, id)],
];

let current = null;

function render() {
  const path = location.hash.replace(/^#\/?/, '');
  if (!path) {
    location.replace('#/assistants'); // triggers hashchange, which renders
    return;
  }
  current?.close();
  current = newContext();
  clearError();
  const section = path.split('/')[0];
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.replaceChildren();
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(path);
    if (match) {
      Promise.resolve(view(main, current, ...match.slice(1).map(decodeURIComponent)))
        .catch(report);
      return;
    }
  }
  main.append(Object.assign(document.createElement('p'), {
    textContent: `No page at #/${path}.`,
  }));
}

window.addEventListener('hashchange', render);
render();
