// The assistant editor: create (#/assistants/new) or modify (#/assistants/<id>), delete,
// and "Chat", which opens a new thread with this assistant chosen for its runs.

import { del, get, listAll, post } from './api.js';
import { clearError, guard, report, showError } from './alert.js';
import { busy, field, form, h, when } from './dom.js';
import { functionsEditor } from './functions-editor.js';
import { metadataEditor } from './metadata-editor.js';
import { codeInterpreterSection, fileSearchSection } from './tool-sections.js';
import { rememberAssistant } from './chat.js';

const FORMATS = ['auto', 'text', 'json_object', 'json_schema'];
const SCHEMA_EXAMPLE = { name: 'answer', schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false }, strict: true };

export async function renderAssistantEditor(main, ctx, id) {
  const [assistant, models] = await Promise.all([
    id ? get(`/assistants/${id}`, { signal: ctx.signal }) : null,
    listAll('/models', {}, { signal: ctx.signal }).catch((error) => { report(error); return []; }),
  ]);
  if (ctx.closed) return;

  // --- the basic fields ---
  const name = h('input', { testid: 'assistant-name', value: assistant?.name || '', maxlength: 256 });
  const modelIds = models.map((model) => model.id);
  if (assistant && !modelIds.includes(assistant.model)) modelIds.unshift(assistant.model);
  const model = h('select', { testid: 'assistant-model', required: true },
    modelIds.map((m) => h('option', { value: m }, m)));
  if (assistant) model.value = assistant.model;
  const description = h('input', { value: assistant?.description || '', maxlength: 512 });
  const instructions = h('textarea', { testid: 'assistant-instructions', rows: 8,
    value: assistant?.instructions || '' });
  const temperature = number('assistant-temperature', assistant?.temperature, 2);
  const topP = number('assistant-top-p', assistant?.top_p, 1);
  const format = responseFormat(assistant?.response_format);
  const metadata = metadataEditor(assistant?.metadata);

  // --- tools ---
  const code = codeInterpreterSection(assistant);
  const search = fileSearchSection(ctx, assistant);
  const functions = functionsEditor(assistant?.tools
    .filter((tool) => tool.type === 'function').map((tool) => tool.function) || []);

  const status = h('span', { class: 'muted', role: 'status' });
  const save = h('button', { type: 'submit', class: 'primary', testid: 'save-assistant',
    form: 'assistant-form' }, assistant ? 'Save' : 'Create');

  const editor = form({ id: 'assistant-form', class: 'stack', onsubmit: () => busy(save, submit) },
    field('Name', name),
    field('Model', model, models.length ? null : 'GET /v1/models listed no model.'),
    field('Description', description),
    field('Instructions', instructions),
    h('div', { class: 'inline' }, field('Temperature (0–2)', temperature), field('top_p (0–1)', topP)),
    format.element,
    metadata.element);

  const title = h('h1', {}, assistant ? assistant.name || 'Assistant' : 'New assistant');
  main.append(
    h('div', { class: 'page-head' },
      title,
      assistant ? h('span', { class: 'muted mono small' }, `${assistant.id} · ${when(assistant.created_at)}`) : null,
      h('div', { class: 'spacer' }),
      status,
      assistant ? h('button', { type: 'button', testid: 'chat', onclick: (e) => busy(e.currentTarget, chat) }, 'Chat') : null,
      assistant ? h('button', { type: 'button', class: 'danger', testid: 'delete-assistant', onclick: remove }, 'Delete') : null,
      save),
    h('div', { class: 'columns' },
      h('section', { class: 'card', 'aria-label': 'Settings' }, editor),
      h('section', { class: 'card stack', 'aria-label': 'Tools' },
        h('h2', {}, 'Tools'), code.element, search.element, functions.element)));

  /** The request body from the form, or null after saying what is wrong. */
  function body() {
    const fns = functions.read();
    const fmt = format.read();
    const meta = metadata.read();
    const problem = fns.problem || fmt.problem || meta.problem;
    if (problem) { showError(problem); return null; }
    const ci = code.read();
    const fs = search.read();
    const tools = [
      ...(ci.enabled ? [{ type: 'code_interpreter' }] : []),
      ...(fs.enabled ? [{ type: 'file_search' }] : []),
      ...fns.functions.map((fn) => ({ type: 'function', function: fn })),
    ];
    const data = {
      model: model.value,
      name: name.value.trim() || null,
      description: description.value.trim() || null,
      instructions: instructions.value || null,
      tools,
      tool_resources: {
        code_interpreter: { file_ids: ci.fileIds },
        file_search: { vector_store_ids: fs.storeIds },
      },
      metadata: meta.metadata,
      response_format: fmt.value,
      temperature: temperature.value === '' ? null : Number(temperature.value),
      top_p: topP.value === '' ? null : Number(topP.value),
    };
    if (!assistant) { // a create sends only what was set
      for (const key of Object.keys(data)) if (data[key] === null) delete data[key];
    }
    return data;
  }

  async function submit() {
    clearError();
    const data = body();
    if (!data) return;
    try {
      const saved = await post(assistant ? `/assistants/${assistant.id}` : '/assistants', data);
      status.textContent = `Saved ${new Date().toLocaleTimeString()}`;
      title.textContent = saved.name || 'Assistant';
      if (!assistant) location.hash = `#/assistants/${saved.id}`;
    } catch (error) { report(error); }
  }

  async function chat() {
    await guard(async () => {
      const thread = await post('/threads', {});
      rememberAssistant(thread.id, assistant.id);
      location.hash = `#/threads/${thread.id}`;
    });
  }

  function remove() {
    if (!confirm(`Delete the assistant "${assistant.name || assistant.id}"?`)) return;
    guard(async () => {
      await del(`/assistants/${assistant.id}`);
      location.hash = '#/assistants';
    });
  }
}

function number(testid, value, max) {
  return h('input', { testid, type: 'number', min: 0, max, step: 0.01,
    value: value === null || value === undefined ? '' : String(value), placeholder: 'default' });
}

/** response_format: auto / text / json_object / json_schema (its spec as JSON). */
function responseFormat(current) {
  const kind = typeof current === 'string' ? current : current?.type || 'auto';
  const select = h('select', { testid: 'assistant-response-format' },
    FORMATS.map((f) => h('option', { value: f }, f)));
  select.value = kind;
  const schema = h('textarea', { class: 'mono', rows: 8, spellcheck: false,
    'aria-label': 'JSON schema: {"name", "schema", "strict"}',
    value: JSON.stringify(current?.json_schema || SCHEMA_EXAMPLE, null, 2) });
  const schemaField = field('json_schema ({"name", "schema", "strict"})', schema);
  const sync = () => { schemaField.hidden = select.value !== 'json_schema'; };
  select.addEventListener('change', sync);
  sync();
  return {
    element: h('div', { class: 'stack' }, field('Response format', select), schemaField),
    read() {
      if (select.value === 'auto') return { value: 'auto' };
      if (select.value !== 'json_schema') return { value: { type: select.value } };
      try {
        const spec = JSON.parse(schema.value);
        if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error('expected an object');
        return { value: { type: 'json_schema', json_schema: spec } };
      } catch (error) {
        schema.focus();
        return { problem: `The json_schema response format is not a JSON object: ${error.message}` };
      }
    },
  };
}
