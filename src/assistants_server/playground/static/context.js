// A view's lifetime. Its `signal` aborts when the view goes (the user navigated away), its
// timers stop then, and a child context (a part of the view that is replaced on its own,
// such as the panel of the vector store chosen in a select) ends with its parent or alone.

export function newContext(parent = null) {
  const controller = new AbortController();
  const timers = new Set();
  const ctx = {
    signal: controller.signal,
    get closed() { return controller.signal.aborted; },
    /** Run `fn` every `ms` until stopped (the returned function) or the context closes. */
    every(ms, fn) {
      const timer = setInterval(fn, ms);
      timers.add(timer);
      return () => { clearInterval(timer); timers.delete(timer); };
    },
    /** Run `fn` once after `ms`, unless the context closes first. */
    later(ms, fn) {
      const timer = setTimeout(() => { timers.delete(timer); fn(); }, ms);
      timers.add(timer);
    },
    child() { return newContext(ctx); },
    close() {
      controller.abort();
      for (const timer of timers) { clearInterval(timer); clearTimeout(timer); }
      timers.clear();
    },
  };
  parent?.signal.addEventListener('abort', () => ctx.close(), { once: true });
  return ctx;
}
