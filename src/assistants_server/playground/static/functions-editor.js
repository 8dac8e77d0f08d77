// Function tools as JSON, one textarea each, checked as the user types with the server's own
// rules (tools/definitions.py): a name matching ^[a-zA-Z0-9_-]{1,64}$, `parameters` a JSON
// object whose "type", when given, is "object", and no other fields than the four below.

import { h } from './dom.js';

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const FIELDS = ['name', 'description', 'parameters', 'strict'];

const EXAMPLES = {
  get_weather: {
    name: 'get_weather',
    description: 'The weather in a city now.',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', description: 'The city, e.g. Paris' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city'],
    },
    strict: false,
  },
  get_stock_price: {
    name: 'get_stock_price',
    description: 'The latest price of a stock.',
    parameters: {
      type: 'object',
      properties: { symbol: { type: 'string', description: 'The ticker, e.g. AAPL' } },
      required: ['symbol'],
    },
    strict: false,
  },
  send_email: {
    name: 'send_email',
    description: 'Send an email.',
    parameters: {
      type: 'object',
      properties: {
        to: { type: 'string' }, subject: { type: 'string' }, body: { type: 'string' },
      },
      required: ['to', 'subject', 'body'],
      additionalProperties: false,
    },
    strict: true,
  },
};

const BLANK = { name: '', description: '', parameters: { type: 'object', properties: {} } };

/** What is wrong with a function's JSON text, or '' when the server would take it. */
export function functionProblem(text) {
  let value;
  try { value = JSON.parse(text); } catch (error) {
    return `Not valid JSON: ${error.message}`;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    return 'A function is a JSON object: {"name", "description", "parameters", "strict"}.';
  }
  const unknown = Object.keys(value).filter((key) => !FIELDS.includes(key));
  if (unknown.length) {
    return `Unknown field "${unknown[0]}": a function has only name, description, parameters and strict.`;
  }
  if (typeof value.name !== 'string' || !NAME.test(value.name)) {
    const got = typeof value.name === 'string' ? `"${value.name}"` : JSON.stringify(value.name ?? null);
    return `"name" must match ^[a-zA-Z0-9_-]{1,64}$ (letters, digits, _ and -), got ${got}.`;
  }
  if (value.description != null && typeof value.description !== 'string') {
    return '"description" must be a string.';
  }
  if (value.parameters != null) {
    const p = value.parameters;
    if (typeof p !== 'object' || Array.isArray(p)) {
      return '"parameters" must be a JSON Schema object, e.g. {"type": "object", "properties": {}}.';
    }
    if ('type' in p && p.type !== 'object') {
      return `"parameters" must be a JSON Schema of "type": "object", got "type": ${JSON.stringify(p.type)}.`;
    }
  }
  if (value.strict != null && typeof value.strict !== 'boolean') {
    return '"strict" must be true or false.';
  }
  return '';
}

/**
 * The functions section. `initial`: the assistant's function definitions. Returns
 * { element, read() } where read() gives { functions, problem } (problem: the first one,
 * '' when every function is valid).
 */
export function functionsEditor(initial = []) {
  const list = h('div', { class: 'functions' });
  const examples = h('select', { 'aria-label': 'Insert an example function' },
    h('option', { value: '' }, 'Insert an example…'),
    Object.keys(EXAMPLES).map((name) => h('option', { value: name }, name)));
  examples.addEventListener('change', () => {
    if (!examples.value) return;
    add(EXAMPLES[examples.value]).focus();
    examples.value = '';
  });
  const element = h('fieldset', { class: 'group' },
    h('legend', {}, 'Functions'),
    list,
    h('div', { class: 'actions' },
      h('button', { type: 'button', testid: 'add-function', onclick: () => add(BLANK).focus() },
        'Add function'),
      examples));

  function add(definition) {
    const text = h('textarea', { testid: 'function-json', class: 'mono', rows: 8,
      spellcheck: false, 'aria-label': 'Function definition (JSON)',
      value: JSON.stringify(definition, null, 2) });
    const problem = h('p', { testid: 'function-error', class: 'field-error', 'aria-live': 'polite' });
    const item = h('div', { class: 'function' }, text, problem,
      h('button', { type: 'button', class: 'quiet small',
        onclick: () => { item.remove(); checkAll(); } }, 'Remove function'));
    text.addEventListener('input', checkAll);
    list.append(item);
    checkAll();
    return text;
  }

  /** Each function's problem under it; names used twice are flagged too (the model could
   *  not tell the two apart). */
  function checkAll() {
    const seen = new Map();
    for (const item of list.children) {
      const text = item.querySelector('textarea').value;
      let problem = functionProblem(text);
      if (!problem) {
        const { name } = JSON.parse(text);
        if (seen.has(name)) problem = `Another function is already named "${name}".`;
        seen.set(name, true);
      }
      item.querySelector('.field-error').textContent = problem;
      item.querySelector('textarea').setAttribute('aria-invalid', String(Boolean(problem)));
    }
  }

  function read() {
    checkAll();
    const functions = [];
    for (const item of list.children) {
      const problem = item.querySelector('.field-error').textContent;
      if (problem) {
        item.querySelector('textarea').focus();
        return { functions, problem: `Function ${functions.length + 1}: ${problem}` };
      }
      functions.push(JSON.parse(item.querySelector('textarea').value));
    }
    return { functions, problem: '' };
  }

  for (const definition of initial) add(definition);
  return { element, read };
}
