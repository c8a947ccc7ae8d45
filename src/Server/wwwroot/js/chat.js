import { ApiError, apiFetch, element, getJson, serverSentEvents, showNotice, storedSetting } from './api.js';

const apiKeySetting = storedSetting('apiKey');
const modelSetting = storedSetting('chatModel');

const ui = {
  notice: document.getElementById('notice'),
  messages: document.getElementById('messages'),
  emptyState: document.getElementById('empty-state'),
  composer: document.getElementById('composer'),
  prompt: document.getElementById('prompt'),
  send: document.getElementById('send'),
  stop: document.getElementById('stop'),
  clear: document.getElementById('clear'),
  model: document.getElementById('model'),
  modelInfo: document.getElementById('model-info'),
  refreshModels: document.getElementById('refresh-models'),
  systemPrompt: document.getElementById('system-prompt'),
  temperature: document.getElementById('temperature'),
  temperatureValue: document.getElementById('temperature-value'),
  maxTokens: document.getElementById('max-tokens'),
  apiKey: document.getElementById('api-key'),
};

/** The turns sent back to the model with each request: {role, content}. */
let conversation = [];
/** Set while a reply streams; aborting it closes the connection, and the server then aborts the request. */
let inFlight = null;
let models = [];

function describeModel(card) {
  if (card.alias_of) return `alias of ${card.alias_of}`;
  if (card.parent) return `adapter on ${card.parent}`;
  if (card.id.startsWith('ft:')) return 'fine-tuned';
  return 'base model';
}

async function loadModels() {
  ui.refreshModels.disabled = true;
  try {
    const list = await getJson('/v1/models', { key: ui.apiKey.value.trim() });
    models = list.data ?? [];
    const wanted = ui.model.value || modelSetting.get();
    ui.model.replaceChildren(...models.map(card => {
      const option = element('option', null, card.alias_of ? `${card.id} → ${card.alias_of}` : card.id);
      option.value = card.id;
      return option;
    }));
    if (models.some(card => card.id === wanted)) ui.model.value = wanted;
    showModelInfo();
    showNotice(ui.notice, models.length === 0 ? 'The server serves no model yet.' : null, 'info');
  } catch (error) {
    showNotice(ui.notice, `Could not list the models: ${error.message}`);
  } finally {
    ui.refreshModels.disabled = false;
  }
}

function showModelInfo() {
  const card = models.find(m => m.id === ui.model.value);
  ui.modelInfo.textContent = card ? `${describeModel(card)} · context ${card.max_model_len} tokens` : '';
}

function appendMessage(role, text) {
  ui.emptyState.hidden = true;
  const message = element('article', `message ${role}`);
  message.append(element('div', 'message-role', role === 'user' ? 'You' : role === 'assistant' ? 'Assistant' : role));
  const body = element('div', 'message-text', text);
  message.append(body);
  const meta = element('div', 'message-meta');
  message.append(meta);
  ui.messages.append(message);
  scrollToEnd();
  return { message, body, meta };
}

function scrollToEnd() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.send.disabled = busy;
  ui.clear.disabled = busy;
}

function describeFinish(finishReason, usage, seconds) {
  const parts = [];
  if (finishReason) parts.push(`finish: ${finishReason}`);
  if (usage) parts.push(`${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens`);
  if (usage && seconds > 0 && usage.completion_tokens > 1) parts.push(`${(usage.completion_tokens / seconds).toFixed(1)} tokens/s`);
  return parts.join(' · ');
}

async function send() {
  const text = ui.prompt.value.trim();
  if (!text || inFlight) return;
  const model = ui.model.value;
  if (!model) {
    showNotice(ui.notice, 'Pick a model first (reload the list if it is empty).');
    return;
  }
  const maxTokens = Number.parseInt(ui.maxTokens.value, 10);
  showNotice(ui.notice, null);
  ui.prompt.value = '';
  conversation.push({ role: 'user', content: text });
  appendMessage('user', text);
  const reply = appendMessage('assistant', '');
  reply.message.classList.add('streaming');

  const messages = [];
  const system = ui.systemPrompt.value.trim();
  if (system) messages.push({ role: 'system', content: system });
  messages.push(...conversation);
  const request = {
    model,
    messages,
    temperature: Number.parseFloat(ui.temperature.value),
    stream: true,
    stream_options: { include_usage: true },
  };
  if (Number.isFinite(maxTokens) && maxTokens > 0) request.max_tokens = maxTokens;

  const controller = new AbortController();
  inFlight = controller;
  setBusy(true);
  let replyText = '';
  let finishReason = null;
  let usage = null;
  const started = performance.now();
  try {
    const response = await apiFetch('/v1/chat/completions', { key: ui.apiKey.value.trim(), method: 'POST', body: request, signal: controller.signal });
    for await (const data of serverSentEvents(response)) {
      const chunk = JSON.parse(data);
      // The server reports a failure after the first byte as one more event in OpenAI's error shape.
      if (chunk.error) throw new ApiError(chunk.error.message ?? 'The server failed while generating.', 500, chunk.error.code);
      for (const choice of chunk.choices ?? []) {
        if (choice.delta?.content) {
          replyText += choice.delta.content;
          reply.body.textContent = replyText;
          scrollToEnd();
        }
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    conversation.push({ role: 'assistant', content: replyText });
    reply.meta.textContent = describeFinish(finishReason, usage, (performance.now() - started) / 1000);
    reply.message.dataset.finishReason = finishReason ?? '';
  } catch (error) {
    if (error.name === 'AbortError') {
      // What arrived stays in the conversation, as it does in OpenAI's playground.
      conversation.push({ role: 'assistant', content: replyText });
      reply.message.classList.add('stopped');
      reply.meta.textContent = `stopped after ${((performance.now() - started) / 1000).toFixed(1)} s`;
    } else {
      // A refused request is not part of the conversation: the user can fix the settings and send again.
      if (!replyText) {
        conversation.pop();
        ui.prompt.value = text;
      } else {
        conversation.push({ role: 'assistant', content: replyText });
      }
      reply.message.classList.add('failed');
      reply.meta.textContent = error.status ? `error ${error.status}` : 'error';
      reply.body.textContent = replyText;
      reply.body.append(element('span', 'message-error', error.message));
    }
  } finally {
    reply.message.classList.remove('streaming');
    inFlight = null;
    setBusy(false);
    ui.prompt.focus();
  }
}

ui.apiKey.value = apiKeySetting.get();
ui.apiKey.addEventListener('change', () => {
  apiKeySetting.set(ui.apiKey.value.trim());
  loadModels();
});
ui.model.addEventListener('change', () => {
  modelSetting.set(ui.model.value);
  showModelInfo();
});
ui.refreshModels.addEventListener('click', loadModels);
ui.temperature.addEventListener('input', () => {
  ui.temperatureValue.textContent = Number.parseFloat(ui.temperature.value).toFixed(2);
});
ui.temperatureValue.textContent = Number.parseFloat(ui.temperature.value).toFixed(2);
ui.composer.addEventListener('submit', event => {
  event.preventDefault();
  send();
});
ui.prompt.addEventListener('keydown', event => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
ui.stop.addEventListener('click', () => inFlight?.abort());
ui.clear.addEventListener('click', () => {
  conversation = [];
  ui.messages.replaceChildren(ui.emptyState);
  ui.emptyState.hidden = false;
});

loadModels();
