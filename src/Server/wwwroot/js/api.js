// What both pages need from the server: authorised fetches, OpenAI-shaped errors, SSE parsing.

/** A failed call, with the message from the server's {"error":{"message":...}} body when it sent one. */
export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** A value kept in localStorage; storage can be off (private windows), and the page must still work. */
export function storedSetting(name) {
  const key = `llmserver.${name}`;
  return {
    get() {
      try { return localStorage.getItem(key) ?? ''; } catch { return ''; }
    },
    set(value) {
      try {
        if (value) localStorage.setItem(key, value); else localStorage.removeItem(key);
      } catch { /* not stored: the field still holds it for this page */ }
    },
  };
}

export function authorizationHeaders(key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** fetch that throws ApiError for any non-2xx answer. */
export async function apiFetch(path, { key, method = 'GET', body, signal } = {}) {
  const headers = authorizationHeaders(key);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(`Could not reach the server (${error.message}).`, 0);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function getJson(path, options) {
  return (await apiFetch(path, options)).json();
}

/** The ApiError for a failed response: OpenAI's error body when there is one, else the status line. */
export async function errorFrom(response) {
  const text = await response.text().catch(() => '');
  try {
    const error = JSON.parse(text).error;
    if (error && error.message) return new ApiError(error.message, response.status, error.code);
  } catch { /* not JSON */ }
  const detail = text.trim().slice(0, 300);
  return new ApiError(`${response.status} ${response.statusText}${detail ? `: ${detail}` : ''}`, response.status);
}

/**
 * Yields each server-sent event's data as it arrives, until "[DONE]" or the end of the body.
 * An event's data lines are joined with newlines, as the SSE spec says.
 */
export async function* serverSentEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value ?? new Uint8Array(), { stream: !done });
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          if (data.length > 0) {
            const event = data.join('\n');
            data = [];
            if (event === '[DONE]') return;
            yield event;
          }
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
        // Comments (":") and other fields (event:, id:) carry nothing the chat needs.
      }
      if (done) {
        if (data.length > 0 && data.join('\n') !== '[DONE]') yield data.join('\n');
        return;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** Shows or hides a page's notice line; text only, never markup. */
export function showNotice(element, message, kind = 'error') {
  element.hidden = !message;
  element.textContent = message ?? '';
  element.dataset.kind = kind;
}

/** Creates an element with a class and text content (text is never parsed as HTML). */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
