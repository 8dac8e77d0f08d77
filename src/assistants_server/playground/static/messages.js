// A thread's messages as the user reads them: text (never parsed as HTML) with its
// annotations turned into footnotes and download links, and images shown inline. A message
// being streamed is the same view, fed `thread.message.delta` parts as they come.

import { downloadFile, fileInfo, fileURL } from './api.js';
import { report } from './alert.js';
import { fill, h, when } from './dom.js';

/** An <img> of a file's content (a blob: URL), put in place once it has loaded, so that a
 *  visible image is always a complete one. */
export function fileImage(fileId, testid) {
  const slot = h('span', { class: 'image-slot' }, h('span', { class: 'muted small' }, 'Loading image…'));
  fileURL(fileId).then(async (url) => {
    const img = h('img', { src: url, testid, alt: `Image ${fileId}`, class: 'inline-image' });
    await img.decode();
    fill(slot, img);
  }).catch((error) => {
    fill(slot, h('span', { class: 'muted small' }, `Image ${fileId} could not be shown.`));
    report(error);
  });
  return slot;
}

function download(fileId, name) {
  downloadFile(fileId, name).catch(report);
}

/** The file name a sandbox path ends with (`sandbox:/mnt/data/x.csv` -> x.csv). */
const baseName = (text) => (text || '').split('/').pop() || 'file';

export class MessageView {
  constructor(message) {
    this.element = h('article', { testid: 'message', class: 'message' });
    this.images = new Map(); // file id -> its image, kept across renders (no reload per delta)
    this.set(message);
  }

  /** Show `message` as stored (or as a stream's created/completed event carries it). */
  set(message) {
    this.message = message;
    this.parts = (message.content || []).map((part) => structuredClone(part));
    this.render();
  }

  /** A delta's content parts merged in by index: text appended, annotations added. */
  applyDelta(delta) {
    for (const piece of delta.content || []) {
      const part = this.parts[piece.index];
      if (!part) {
        this.parts[piece.index] = piece.type === 'text'
          ? { type: 'text', text: { value: piece.text?.value || '', annotations: [...(piece.text?.annotations || [])] } }
          : structuredClone(piece);
        continue;
      }
      if (piece.type === 'text' && piece.text) {
        part.text.value += piece.text.value || '';
        part.text.annotations.push(...(piece.text.annotations || []));
      }
    }
    this.render();
  }

  image(fileId) {
    if (!this.images.has(fileId)) this.images.set(fileId, fileImage(fileId, 'message-image'));
    return this.images.get(fileId);
  }

  render() {
    const { message } = this;
    const el = this.element;
    el.dataset.role = message.role;
    el.className = `message ${message.role}`;
    const notes = { byFile: new Map(), list: [] }; // the message's footnotes, one per file
    const text = h('div', { testid: 'message-text', class: 'message-text' });
    const images = h('div', { class: 'message-images' });
    for (const part of this.parts) {
      if (!part) continue;
      if (part.type === 'text') text.append(h('p', { class: 'part' }, annotated(part.text, notes)));
      else if (part.type === 'image_file') images.append(this.image(part.image_file.file_id));
      else if (part.type === 'image_url') text.append(h('p', { class: 'muted' }, `[image: ${part.image_url.url.slice(0, 120)}]`));
      else if (part.type === 'refusal') text.append(h('p', { class: 'muted' }, part.refusal));
    }
    const status = message.status && message.status !== 'completed' ? ` · ${message.status}` : '';
    fill(el,
      h('header', { class: 'message-head' },
        h('strong', {}, message.role), h('span', { class: 'muted small' }, `${when(message.created_at)}${status}`)),
      text,
      images.children.length ? images : null,
      notes.list.length ? footnotes(notes.list) : null,
      message.attachments?.length ? attachments(message.attachments) : null,
      message.incomplete_details ? h('p', { class: 'muted small' }, `Incomplete: ${message.incomplete_details.reason}`) : null);
  }
}

/** Text with its annotations: citations become [n] markers, file paths download links. */
function annotated({ value, annotations = [] }, notes) {
  const nodes = [];
  let at = 0;
  const sorted = [...annotations].sort((a, b) => a.start_index - b.start_index);
  for (const note of sorted) {
    const { start_index: start, end_index: end } = note;
    // An annotation past the text (still streaming) or overlapping the last one waits.
    if (start < at || end > value.length || end <= start) continue;
    let before = value.slice(at, start);
    let after = end;
    if (note.type === 'file_citation') {
      nodes.push(before, citation(note.file_citation.file_id, notes));
    } else if (note.type === 'file_path') {
      // A Markdown link around the path, [label](sandbox:/...), becomes the link itself.
      const label = /\[([^\]\n]*)\]\($/.exec(before);
      const filename = baseName(note.text);
      let shown = filename;
      if (label && value[end] === ')') {
        before = before.slice(0, label.index);
        shown = label[1] || filename;
        after = end + 1;
      }
      nodes.push(before, fileLink(note.file_path.file_id, shown, filename));
    } else {
      nodes.push(before, value.slice(start, end));
    }
    at = after;
  }
  nodes.push(value.slice(at));
  return nodes;
}

function citation(fileId, notes) {
  if (!notes.byFile.has(fileId)) {
    notes.byFile.set(fileId, notes.list.length + 1);
    notes.list.push(fileId);
  }
  const n = notes.byFile.get(fileId);
  return h('sup', {}, h('button', { type: 'button', class: 'citation', testid: 'citation',
    'aria-label': `Source ${n}: open the cited file`, onclick: () => download(fileId) }, `[${n}]`));
}

function fileLink(fileId, label, filename) {
  return h('button', { type: 'button', class: 'linklike', testid: 'file-link',
    title: `Download ${filename}`, onclick: () => download(fileId, filename) }, label);
}

/** The footnote list: each cited file by name, a click opens (downloads) it. */
function footnotes(fileIds) {
  return h('ol', { class: 'footnotes', 'aria-label': 'Sources' }, fileIds.map((fileId) => {
    const name = h('span', {}, fileId);
    fileInfo(fileId).then((info) => { name.textContent = info.filename; }, () => {});
    return h('li', { testid: 'footnote' },
      h('button', { type: 'button', class: 'linklike', onclick: () => download(fileId) }, name));
  }));
}

function attachments(list) {
  return h('ul', { class: 'chips', 'aria-label': 'Attachments' }, list.map((attachment) => {
    const name = h('span', {}, attachment.file_id);
    fileInfo(attachment.file_id).then((info) => { name.textContent = info.filename; }, () => {});
    return h('li', { class: 'chip', title: 'Attached file' }, name);
  }));
}
