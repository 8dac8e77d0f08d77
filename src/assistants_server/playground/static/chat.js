// A thread as a chat: its messages, a composer (Ctrl/Cmd+Enter sends, files attach for
// file_search), the assistant its runs use (remembered per thread for this tab), and the
// run panel. A run is streamed: the answer appears token by token, then the thread's
// messages are read again so the stored text and its annotations are what stays on screen.

import { del, get, listAll, post, stream } from './api.js';
import { clearError, guard, report, showError } from './alert.js';
import { busy, fill, form, h, when } from './dom.js';
import { MessageView } from './messages.js';
import { RunPanel } from './run-panel.js';
import { TERMINAL, followRun } from './sse.js';
import { fileInput, uploadList, uploadWithProgress } from './uploads.js';

const CHOICE = 'playground.chat-assistant.';

/** Remember which assistant the thread's runs use (sessionStorage: this tab only). */
export function rememberAssistant(threadId, assistantId) {
  sessionStorage.setItem(CHOICE + threadId, assistantId);
}

export async function renderChat(main, ctx, threadId) {
  const [thread, assistants] = await Promise.all([
    get(`/threads/${threadId}`, { signal: ctx.signal }),
    listAll('/assistants', { limit: 100, order: 'desc' }, { signal: ctx.signal }),
  ]);
  if (ctx.closed) return;

  const views = new Map(); // message id -> MessageView
  const list = h('div', { class: 'messages', role: 'log', 'aria-label': 'Messages' });
  const empty = h('p', { class: 'muted' }, 'No messages yet.');
  const picker = h('select', { testid: 'chat-assistant', 'aria-label': 'Assistant for runs' },
    h('option', { value: '' }, assistants.length ? 'Choose an assistant…' : 'No assistants: create one first'),
    assistants.map((a) => h('option', { value: a.id }, `${a.name || '(unnamed)'} · ${a.model}`)));
  picker.addEventListener('change', () => rememberAssistant(threadId, picker.value));
  const panel = new RunPanel(ctx, threadId, { onSubmit: submitOutputs });

  // --- composer ---
  const input = h('textarea', { testid: 'message-input', rows: 3, placeholder: 'Message (Ctrl+Enter to send)',
    'aria-label': 'Message' });
  const send = h('button', { type: 'submit', class: 'primary', testid: 'send' }, 'Send');
  const attached = []; // {file_id, name}
  const chips = h('ul', { class: 'chips', 'aria-label': 'Attached files' });
  const uploads = uploadList();
  const attach = fileInput({ testid: 'message-attach', 'aria-label': 'Attach files (for file_search)' },
    async (files) => {
      for (const file of files) {
        try {
          const uploaded = await uploadWithProgress(uploads, file, 'assistants');
          attached.push({ file_id: uploaded.id, name: file.name });
          drawChips();
        } catch (error) { report(error); }
      }
    });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  const composer = form({ class: 'composer', onsubmit: () => { if (!send.disabled) busy(send, sendMessage); } },
    input,
    h('div', { class: 'inline' },
      h('label', { class: 'attach' }, 'Attach files ', attach), uploads, chips,
      h('div', { class: 'spacer' }), send));

  function drawChips() {
    fill(chips, attached.map((file, i) => h('li', { class: 'chip', title: 'Attached file' }, file.name,
      h('button', { type: 'button', class: 'quiet small', 'aria-label': `Remove ${file.name}`,
        onclick: () => { attached.splice(i, 1); drawChips(); } }, '×'))));
  }

  main.append(
    h('div', { class: 'page-head' },
      h('h1', {}, 'Thread'), h('span', { class: 'mono muted small' }, `${thread.id} · ${when(thread.created_at)}`),
      h('div', { class: 'spacer' }),
      h('label', { class: 'inline' }, 'Assistant ', picker),
      h('button', { type: 'button', class: 'danger small', onclick: removeThread }, 'Delete thread')),
    h('div', { class: 'chat-layout' },
      h('section', { class: 'card chat', 'aria-label': 'Chat' }, list, empty, composer),
      panel.element));

  // --- messages ---
  function scrollDown() {
    list.scrollTop = list.scrollHeight;
  }

  function show(message) {
    let view = views.get(message.id);
    if (view) view.set(message);
    else {
      view = new MessageView(message);
      views.set(message.id, view);
      list.append(view.element);
    }
    empty.hidden = true;
    return view;
  }

  async function reload() {
    const messages = await listAll(`/threads/${threadId}/messages`, { order: 'asc', limit: 100 },
      { signal: ctx.signal });
    const ids = new Set(messages.map((message) => message.id));
    for (const [id, view] of views) if (!ids.has(id)) { view.element.remove(); views.delete(id); }
    for (const message of messages) show(message);
    list.append(...messages.map((message) => views.get(message.id).element)); // in order
    empty.hidden = messages.length > 0;
    scrollDown();
  }

  // --- runs ---
  function onEvent(name, data) {
    if (name === 'error') {
      showError(data?.error?.message || String(data));
      return;
    }
    if (name === 'thread.message.created' || name === 'thread.message.completed'
        || name === 'thread.message.incomplete') {
      show(data);
      scrollDown();
    } else if (name === 'thread.message.delta') {
      views.get(data.id)?.applyDelta(data.delta);
      scrollDown();
    } else if (name.startsWith('thread.run.')) {
      panel.onEvent(name, data);
    }
  }

  /** Stream a run (created, continued or rejoined by `open`), then read the thread again. */
  async function follow(open) {
    send.disabled = true;
    try {
      await followRun({ open, threadId, onEvent, signal: ctx.signal });
    } catch (error) {
      report(error);
    } finally {
      send.disabled = false;
    }
    if (ctx.closed) return;
    await Promise.all([reload(), panel.refresh()]).catch(report);
  }

  async function sendMessage() {
    const text = input.value.trim();
    if (!picker.value) { showError('Choose an assistant for the run first.'); picker.focus(); return; }
    if (!text) { input.focus(); return; }
    clearError();
    const body = { role: 'user', content: text };
    if (attached.length) {
      body.attachments = attached.map((file) => ({ file_id: file.file_id, tools: [{ type: 'file_search' }] }));
    }
    try {
      show(await post(`/threads/${threadId}/messages`, body));
    } catch (error) { report(error); return; }
    input.value = '';
    attached.length = 0;
    drawChips();
    scrollDown();
    const assistantId = picker.value;
    await follow(() => stream('POST', `/threads/${threadId}/runs`,
      { assistant_id: assistantId, stream: true }, { signal: ctx.signal }));
  }

  function submitOutputs(runId, outputs) {
    clearError();
    return follow(() => stream('POST', `/threads/${threadId}/runs/${runId}/submit_tool_outputs`,
      { tool_outputs: outputs, stream: true }, { signal: ctx.signal }));
  }

  function removeThread() {
    if (!confirm(`Delete the thread ${threadId} and its messages?`)) return;
    guard(async () => {
      await del(`/threads/${threadId}`);
      location.hash = '#/threads';
    });
  }

  // --- start: messages, runs, the assistant to use; rejoin a run still going ---
  await reload();
  const runs = await panel.loadRuns();
  const chosen = sessionStorage.getItem(CHOICE + threadId) || runs[0]?.assistant_id || assistants[0]?.id || '';
  if (chosen && !assistants.some((a) => a.id === chosen)) {
    picker.append(h('option', { value: chosen }, `${chosen} (not found)`));
  }
  picker.value = chosen;
  const latest = runs[0];
  if (!latest) { panel.draw(); return; }
  await panel.open(latest.id);
  if (!TERMINAL.has(latest.status) && latest.status !== 'requires_action') {
    follow(() => stream('GET', `/threads/${threadId}/runs/${latest.id}/events`, undefined, { signal: ctx.signal }));
  }
}
