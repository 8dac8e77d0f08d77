// A run's steps as the run panel shows them: the message each message_creation step wrote,
// and every tool call (function name, arguments and output; code_interpreter's code, logs
// and images; file_search's results with their scores and text).

import { fileInfo } from './api.js';
import { h, pretty, when } from './dom.js';
import { fileImage } from './messages.js';

/**
 * Merge a `thread.run.step.delta` into the step it changes (kept from its created event):
 * each tool call by index, strings (arguments, code) appended, outputs added.
 */
export function mergeStepDelta(step, delta) {
  const calls = delta.step_details?.tool_calls;
  if (!calls) return;
  step.step_details.tool_calls ||= [];
  for (const piece of calls) {
    const call = step.step_details.tool_calls[piece.index] ||= { type: piece.type };
    if (piece.id) call.id = piece.id;
    if (piece.function) {
      const fn = call.function ||= { name: '', arguments: '', output: null };
      if (piece.function.name) fn.name = piece.function.name;
      fn.arguments = (fn.arguments || '') + (piece.function.arguments || '');
      if (piece.function.output != null) fn.output = piece.function.output;
    }
    if (piece.code_interpreter) {
      const ci = call.code_interpreter ||= { input: '', outputs: [] };
      ci.input = (ci.input || '') + (piece.code_interpreter.input || '');
      ci.outputs = [...(ci.outputs || []), ...(piece.code_interpreter.outputs || [])];
    }
    if (piece.file_search) call.file_search = { ...call.file_search, ...piece.file_search };
  }
}

export function renderStep(step) {
  const details = step.step_details || {};
  const usage = step.usage ? ` · ${step.usage.total_tokens} tokens` : '';
  return h('li', { testid: 'run-step', class: `step step-${step.status}` },
    h('div', { class: 'step-head' },
      h('strong', {}, details.type === 'tool_calls' ? 'Tool calls' : 'Message'),
      h('span', { class: `status status-${step.status}` }, step.status),
      h('span', { class: 'muted small mono' }, `${step.id}${usage}`)),
    details.type === 'message_creation'
      ? h('p', { class: 'small' }, 'Wrote message ', h('span', { class: 'mono' }, details.message_creation?.message_id))
      : h('ul', { class: 'calls' }, (details.tool_calls || []).map(renderCall)),
    step.last_error ? h('p', { class: 'field-error' }, step.last_error.message) : null,
    step.completed_at ? h('p', { class: 'muted small' }, `Completed ${when(step.completed_at)}`) : null);
}

function renderCall(call) {
  const body = call.type === 'function' ? functionCall(call.function || {})
    : call.type === 'code_interpreter' ? codeCall(call.code_interpreter || {})
      : call.type === 'file_search' ? searchCall(call.file_search || {})
        : h('pre', {}, JSON.stringify(call, null, 2));
  return h('li', { testid: 'tool-call', class: 'call' },
    h('div', { class: 'call-head' }, h('span', { class: 'pill' }, call.type),
      call.type === 'function' ? h('strong', { class: 'mono' }, call.function?.name) : null,
      h('span', { class: 'muted small mono' }, call.id || '')),
    body);
}

function functionCall(fn) {
  return [
    h('div', { class: 'label' }, 'Arguments'),
    h('pre', {}, pretty(fn.arguments || '')),
    h('div', { class: 'label' }, 'Output'),
    fn.output == null ? h('p', { class: 'muted small' }, 'Not submitted yet.') : h('pre', {}, fn.output),
  ];
}

function codeCall(ci) {
  return [
    h('div', { class: 'label' }, 'Code'),
    h('pre', { class: 'code' }, ci.input || ''),
    (ci.outputs || []).map((output) => output.type === 'logs'
      ? [h('div', { class: 'label' }, 'Logs'), h('pre', { testid: 'step-logs' }, output.logs)]
      : output.type === 'image'
        ? h('div', { class: 'step-image' }, fileImage(output.image.file_id, 'step-image'))
        : h('pre', {}, JSON.stringify(output, null, 2))),
  ];
}

function searchCall(search) {
  const results = search.results || [];
  return [
    search.ranking_options ? h('p', { class: 'muted small' },
      `Ranker ${search.ranking_options.ranker}, score threshold ${search.ranking_options.score_threshold}`) : null,
    results.length ? null : h('p', { class: 'muted small' }, 'No results (yet).'),
    h('ol', { class: 'hits' }, results.map((hit) => {
      const name = h('strong', {}, hit.file_name || hit.file_id);
      if (!hit.file_name && hit.file_id) fileInfo(hit.file_id).then((info) => { name.textContent = info.filename; }, () => {});
      return h('li', { testid: 'search-hit', class: 'hit' },
        h('div', { class: 'hit-head' }, name,
          h('span', { class: 'pill' }, `score ${Number(hit.score).toFixed(2)}`)),
        (hit.content || []).map((part) => h('p', { class: 'hit-text' }, part.text)));
    })),
  ];
}
