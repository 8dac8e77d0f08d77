// The run panel: one run at a time (the latest, or any picked from the thread's runs), with
// its status as it changes, a timeline, model, usage, error, every step, the form that
// answers `requires_action`, and Cancel while the run is active.

import { get, listAll, post, query } from './api.js';
import { guard } from './alert.js';
import { busy, clock, fill, form, h, pretty } from './dom.js';
import { TERMINAL } from './sse.js';
import { mergeStepDelta, renderStep } from './steps.js';

const INCLUDE = 'step_details.tool_calls[*].file_search.results[*].content';

export class RunPanel {
  /** `onSubmit(runId, toolOutputs)` streams the run's continuation (the chat does). */
  constructor(ctx, threadId, { onSubmit }) {
    this.ctx = ctx;
    this.threadId = threadId;
    this.onSubmit = onSubmit;
    this.run = null;
    this.timeline = [];
    this.steps = new Map();
    this.picker = h('select', { 'aria-label': 'Show a run of this thread' });
    this.picker.addEventListener('change', () => {
      if (this.picker.value) guard(() => this.open(this.picker.value));
    });
    this.status = h('span', { testid: 'run-status', class: 'status' });
    this.body = h('div', { class: 'run-body' });
    this.element = h('aside', { testid: 'run-panel', class: 'card run-panel', 'aria-label': 'Run' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Run'), this.status, h('div', { class: 'spacer' }),
        this.picker,
        h('button', { type: 'button', class: 'quiet small', 'aria-label': 'Reload the run',
          onclick: () => guard(() => this.refresh()) }, 'Reload')),
      this.body);
    this.draw();
  }

  /** The thread's runs in the picker, newest first; returns them. */
  async loadRuns() {
    const runs = await get(`/threads/${this.threadId}/runs${query({ limit: 50, order: 'desc' })}`,
      { signal: this.ctx.signal });
    fill(this.picker, h('option', { value: '' }, runs.data.length ? `${runs.data.length} run(s)…` : 'No runs yet'),
      runs.data.map((run) => h('option', { value: run.id }, `${run.id} · ${run.status} · ${clock(run.created_at * 1000)}`)));
    this.picker.value = this.run?.id || '';
    return runs.data;
  }

  /** Show a run opened later: its timeline from its timestamps, and its steps. */
  async open(runId) {
    const run = await get(`/threads/${this.threadId}/runs/${runId}`, { signal: this.ctx.signal });
    this.steps.clear();
    this.timeline = timelineOf(run);
    this.run = run;
    this.draw();
    await this.loadSteps();
  }

  /** An event of the run being streamed (run, step or step delta events). */
  onEvent(name, data) {
    if (name.startsWith('thread.run.step.')) {
      if (!this.run || data.run_id && data.run_id !== this.run.id) return;
      if (name === 'thread.run.step.delta') {
        const step = this.steps.get(data.id);
        if (step) mergeStepDelta(step, data.delta);
      } else {
        this.steps.set(data.id, data);
      }
      if (name === 'thread.run.step.completed') this.soon(); // results' content via include[]
      this.drawSteps();
      return;
    }
    if (name === 'thread.run.created' || this.run?.id !== data.id) {
      this.steps.clear();
      this.timeline = [];
      this.loadRuns().catch(() => {});
    }
    const label = name.slice('thread.run.'.length);
    if (this.timeline.at(-1)?.label !== label) this.timeline.push({ label, time: Date.now() });
    this.run = data;
    if (name === 'thread.run.requires_action') this.soon();
    this.draw();
  }

  /** Reload the steps a moment from now, once per burst of events. */
  soon() {
    if (this.pending) return;
    this.pending = true;
    this.ctx.later(150, () => { this.pending = false; guard(() => this.loadSteps()); });
  }

  /** The run and its steps again from the API (after a stream ends, or on demand). */
  async refresh() {
    if (!this.run) { await this.loadRuns(); return; }
    const run = await get(`/threads/${this.threadId}/runs/${this.run.id}`, { signal: this.ctx.signal });
    if (!this.timeline.some((entry) => entry.label === run.status)) {
      this.timeline.push({ label: run.status, time: Date.now() });
    }
    this.run = run;
    this.draw();
    await Promise.all([this.loadSteps(), this.loadRuns()]);
  }

  async loadSteps() {
    if (!this.run) return;
    const runId = this.run.id;
    const steps = await listAll(`/threads/${this.threadId}/runs/${runId}/steps`,
      { order: 'asc', limit: 100, 'include[]': INCLUDE }, { signal: this.ctx.signal });
    if (this.run?.id !== runId) return;
    this.steps = new Map(steps.map((step) => [step.id, step]));
    this.drawSteps();
  }

  draw() {
    const { run } = this;
    this.status.textContent = run?.status || '';
    this.status.className = `status status-${run?.status || 'none'}`;
    if (!run) {
      fill(this.body, h('p', { class: 'muted' }, 'No run yet: send a message to start one.'));
      return;
    }
    const usage = run.usage
      ? `${run.usage.prompt_tokens} prompt + ${run.usage.completion_tokens} completion = ${run.usage.total_tokens} tokens`
      : '—';
    this.stepList = h('ol', { class: 'steps', 'aria-label': 'Run steps' });
    fill(this.body,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Run'), h('dd', { class: 'mono' }, run.id),
        h('dt', {}, 'Model'), h('dd', {}, run.model),
        h('dt', {}, 'Assistant'), h('dd', { class: 'mono' }, run.assistant_id),
        h('dt', {}, 'Usage'), h('dd', {}, usage)),
      run.last_error ? h('p', { class: 'field-error' }, `${run.last_error.code ? `${run.last_error.code}: ` : ''}${run.last_error.message}`) : null,
      run.incomplete_details ? h('p', { class: 'field-error' }, `Incomplete: ${run.incomplete_details.reason}`) : null,
      h('ol', { class: 'timeline', 'aria-label': 'Status timeline' }, this.timeline.map((entry) =>
        h('li', {}, h('span', { class: `status status-${entry.label}` }, entry.label),
          h('time', { class: 'muted small' }, entry.time ? clock(entry.time) : '')))),
      TERMINAL.has(run.status) ? null : h('button', { type: 'button', class: 'danger small', testid: 'cancel-run',
        disabled: run.status === 'cancelling',
        onclick: (event) => busy(event.currentTarget, () => guard(() => this.cancel())) }, 'Cancel run'),
      run.status === 'requires_action' ? this.outputsForm(run) : null,
      h('h3', {}, 'Steps'),
      this.stepList);
    this.drawSteps();
  }

  drawSteps() {
    if (!this.stepList) return;
    const steps = [...this.steps.values()].sort((a, b) => a.created_at - b.created_at);
    fill(this.stepList, steps.length ? steps.map(renderStep) : h('li', { class: 'muted small' }, 'No steps yet.'));
  }

  async cancel() {
    const run = await post(`/threads/${this.threadId}/runs/${this.run.id}/cancel`, {});
    if (run.id === this.run?.id && !TERMINAL.has(this.run.status)) {
      this.onEvent(`thread.run.${run.status}`, run);
    }
  }

  /** One textarea per function call the run waits on; Submit streams the continuation.
   *  Kept across redraws of the panel, so what the user typed stays. */
  outputsForm(run) {
    const calls = run.required_action?.submit_tool_outputs?.tool_calls || [];
    const key = `${run.id}:${calls.map((call) => call.id).join(',')}`;
    if (this.form?.key !== key) this.form = { key, element: this.newOutputsForm(run, calls) };
    return this.form.element;
  }

  newOutputsForm(run, calls) {
    const boxes = calls.map((call) => h('textarea', { testid: 'tool-output', rows: 3,
      'aria-label': `Output of ${call.function.name} (${call.id})` }));
    const submit = h('button', { type: 'submit', class: 'primary', testid: 'submit-outputs' }, 'Submit outputs');
    return form({ testid: 'tool-output-form', class: 'outputs', onsubmit: () => {
      submit.disabled = true;
      const outputs = calls.map((call, i) => ({ tool_call_id: call.id, output: boxes[i].value }));
      this.onSubmit(run.id, outputs);
    } },
    h('h3', {}, 'The run needs tool outputs'),
    calls.map((call, i) => h('fieldset', { class: 'group' },
      h('legend', { class: 'mono' }, call.function.name),
      h('pre', {}, pretty(call.function.arguments)),
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Output'), boxes[i]))),
    submit);
  }
}

/** A run's timeline from its timestamps, for a run opened after the fact. */
function timelineOf(run) {
  const entries = [{ label: 'created', time: run.created_at * 1000 }];
  if (run.started_at) entries.push({ label: 'in_progress', time: run.started_at * 1000 });
  for (const [label, key] of [['completed', 'completed_at'], ['failed', 'failed_at'], ['cancelled', 'cancelled_at']]) {
    if (run[key]) entries.push({ label, time: run[key] * 1000 });
  }
  if (!entries.some((entry) => entry.label === run.status)) entries.push({ label: run.status, time: null });
  return entries;
}
