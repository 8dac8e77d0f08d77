// The page's one alert area: the API's error message, word for word. A 401 also points the
// user at the key field, since a key is what the server wants.

let bar;
let text;
let keyInput;
let keyHint;

export function initAlert(elements) {
  ({ bar, text, keyInput, keyHint } = elements);
}

export function showError(message) {
  text.textContent = message;
  bar.hidden = false;
}

export function clearError() {
  text.textContent = '';
  bar.hidden = true;
  keyHint.hidden = true;
  keyInput.removeAttribute('aria-invalid');
}

/** Show what went wrong; a request the page itself abandoned (navigation) is no error. */
export function report(error) {
  if (!error || error.name === 'AbortError') return;
  if (error.name === 'ApiError') {
    showError(error.message);
    if (error.status === 401) askForKey();
    return;
  }
  // Not the API's words: fetch could not reach the server, or a bug of the page.
  const message = error instanceof TypeError && /fetch/i.test(error.message)
    ? `The server could not be reached (${error.message}).`
    : String(error.message || error);
  showError(message);
}

function askForKey() {
  keyHint.hidden = false;
  keyInput.setAttribute('aria-invalid', 'true');
  keyInput.placeholder = 'API key required';
  if (document.activeElement === document.body) keyInput.focus();
}

/** Run `work`, reporting a failure instead of throwing (for event handlers). */
export async function guard(work) {
  try { return await work(); } catch (error) { report(error); return undefined; }
}
