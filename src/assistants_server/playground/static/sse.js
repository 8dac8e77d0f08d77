// A run's event stream, read with fetch (EventSource cannot POST, nor send the key), and
// resumed after a drop: GET .../runs/<run>/events with `Last-Event-ID` gives what followed
// the last event seen, so the page renders the same run on without gaps or repeats.

import { stream } from './api.js';

export const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'expired', 'incomplete']);

/**
 * The events of an SSE response as {id, event, data}: frames end at a blank line, lines
 * starting with ':' are comments (the server's keep-alive pings), `data:` lines join.
 */
export async function* readEvents(response, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const stop = () => reader.cancel().catch(() => {});
  signal?.addEventListener('abort', stop, { once: true });
  let buffer = '';
  let frame = { id: null, event: '', data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, '');
        buffer = buffer.slice(end + 1);
        if (line === '') {
          if (frame.data.length || frame.event) {
            yield { id: frame.id, event: frame.event || 'message', data: frame.data.join('\n') };
          }
          frame = { id: null, event: '', data: [] };
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const name = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (name === 'id') frame.id = text;
          else if (name === 'event') frame.event = text;
          else if (name === 'data') frame.data.push(text);
        }
      }
    }
  } finally {
    signal?.removeEventListener('abort', stop);
    stop();
  }
}

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
});

const isRunEvent = (name) => name.startsWith('thread.run.') && !name.startsWith('thread.run.step.');

/**
 * Follow a run's events to their `done`: `open()` makes the first request (create a run,
 * submit tool outputs, or GET its events); `onEvent(name, data)` renders each (data parsed
 * from JSON). If the stream ends early (a dropped connection) while the run is not over,
 * it is resumed from the last `id:` seen. Resolves to { runId, status }.
 */
export async function followRun({ open, threadId, runId = null, onEvent, signal }) {
  let lastId = null;
  let status = null;
  let failures = 0;
  let response = await open();
  for (;;) {
    let done = false;
    try {
      for await (const { id, event, data } of readEvents(response, signal)) {
        if (id) lastId = id;
        if (event === 'done') { done = true; break; }
        let parsed = data;
        try { parsed = JSON.parse(data); } catch { /* kept as text */ }
        if (isRunEvent(event) && parsed?.id) ({ id: runId, status } = parsed);
        failures = 0;
        onEvent(event, parsed);
      }
    } catch (error) {
      if (signal?.aborted) throw error;
      // The connection broke mid-stream: resumed below.
    }
    if (done || TERMINAL.has(status)) return { runId, status };
    if (!runId) throw new Error('The event stream ended before the run was created.');
    response = await resume(threadId, runId, lastId, signal, () => ++failures);
  }
}

/** GET the rest of the run's events, retrying a few times while the server is unreachable. */
async function resume(threadId, runId, lastId, signal, failed) {
  for (;;) {
    const attempt = failed();
    if (attempt > 6) {
      throw new Error(`Lost the event stream of run ${runId} and could not resume it.`);
    }
    await sleep(Math.min(250 * 2 ** attempt, 4000), signal);
    try {
      return await stream('GET', `/threads/${threadId}/runs/${runId}/events`, undefined, {
        signal, headers: lastId ? { 'Last-Event-ID': lastId } : {},
      });
    } catch (error) {
      if (error.name === 'ApiError' || signal?.aborted) throw error;
    }
  }
}
