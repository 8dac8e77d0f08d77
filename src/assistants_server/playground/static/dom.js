// Small DOM helpers shared by every view. API data only ever reaches the page as text
// (textContent / attribute values), never as HTML, so nothing the API returns can run.

/**
 * Build an element: h('button', {class: 'x', testid: 'save', onclick: fn}, 'Save').
 * `testid` becomes data-testid, `on<event>` a listener, `dataset` data-* attributes;
 * children may be strings (as text), nodes, arrays, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'testid') el.dataset.testid = value;
    else if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name in el && typeof value !== 'string') el[name] = value;
    else if (name === 'value' || name === 'checked' || name === 'disabled' || name === 'hidden') {
      el[name] = value;
    } else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form field: <label><span>text</span>control</label>. */
export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control,
    hint ? h('small', { class: 'hint' }, hint) : null);
}

/** A form whose submit (Enter or its submit button) calls `onsubmit` and never navigates:
 *  the page's CSP has form-action 'none', so a real submission would be refused anyway. */
export function form(props, ...children) {
  const { onsubmit, ...rest } = props;
  return h('form', {
    ...rest,
    onsubmit: (event) => { event.preventDefault(); onsubmit(event); },
  }, ...children);
}

// --- formatting -----------------------------------------------------------------------

export function when(seconds) {
  if (!seconds) return '';
  return new Date(seconds * 1000).toLocaleString();
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString();
}

export function bytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** JSON text as a human reads it: pretty-printed when it parses, as given otherwise. */
export function pretty(text) {
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

/** Spinner-free "busy" marking of a button while `work` runs; returns work's result. */
export async function busy(button, work) {
  const was = button.disabled;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try { return await work(); } finally {
    button.disabled = was;
    button.removeAttribute('aria-busy');
  }
}
