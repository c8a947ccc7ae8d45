import { ApiError, apiFetch, element, getJson, serverSentEvents, showNotice, storedSetting } from './api.js';
import { calculatorTool, runToolCall } from './calculator-tool.js';

/** Follow-up requests one message may trigger by calling tools: a model that keeps calling must not loop for ever. */
const MaxToolRounds = 3;

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
  maxTokens: document.getElementById('max-tokens'),
  maxTokensReset: document.getElementById('max-tokens-reset'),
  calculatorTool: document.getElementById('calculator-tool'),
  toolChoice: document.getElementById('tool-choice'),
  jsonReply: document.getElementById('json-reply'),
  apiKey: document.getElementById('api-key'),
};

/** The turns sent back to the model with each request, in OpenAI's message shape (tool calls and results included). */
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
  // The server says what a request that leaves a parameter out gets; without that, OpenAI's neutral values.
  const defaults = card?.default_sampling_params ?? {};
  temperature.showDefault(defaults.temperature ?? 1);
  topP.showDefault(defaults.top_p ?? 1);
  maxTokens.showDefault(defaults.max_tokens);
}

/**
 * A slider that stays on the model's default until the user moves it: only then does the request carry the
 * parameter, so the server applies the model's own recommendation (generation_config.json) otherwise.
 */
function rangeSetting(id) {
  const input = document.getElementById(id);
  const output = document.getElementById(`${id}-value`);
  const reset = document.getElementById(`${id}-reset`);
  let changed = false;
  let modelDefault = Number.parseFloat(input.value);
  const render = () => {
    if (!changed) input.value = String(modelDefault);
    output.textContent = changed ? Number.parseFloat(input.value).toFixed(2) : `${modelDefault.toFixed(2)} (model default)`;
    output.toggleAttribute('data-default', !changed);
    reset.hidden = !changed;
  };
  input.addEventListener('input', () => { changed = true; render(); });
  reset.addEventListener('click', () => { changed = false; render(); });
  render();
  return {
    showDefault(value) { modelDefault = value; render(); },
    /** The user's value, or undefined to leave it to the model. */
    value: () => (changed ? Number.parseFloat(input.value) : undefined),
  };
}

/** Maximum tokens: empty means the model's default, which the placeholder shows. */
function maxTokensSetting() {
  const render = () => { ui.maxTokensReset.hidden = ui.maxTokens.value === ''; };
  ui.maxTokens.addEventListener('input', render);
  ui.maxTokensReset.addEventListener('click', () => { ui.maxTokens.value = ''; render(); });
  return {
    showDefault(value) {
      ui.maxTokens.placeholder = value ? `${value} (model default)` : 'model default: up to the context window';
    },
    value() {
      const value = Number.parseInt(ui.maxTokens.value, 10);
      return Number.isFinite(value) && value > 0 ? value : undefined;
    },
  };
}

const temperature = rangeSetting('temperature');
const topP = rangeSetting('top-p');
const maxTokens = maxTokensSetting();

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

function chatRequest(model, firstRound) {
  const messages = [];
  const system = ui.systemPrompt.value.trim();
  if (system) messages.push({ role: 'system', content: system });
  messages.push(...conversation);
  const request = { model, messages, stream: true, stream_options: { include_usage: true } };
  const settings = { temperature: temperature.value(), top_p: topP.value(), max_tokens: maxTokens.value() };
  for (const [name, value] of Object.entries(settings)) {
    if (value !== undefined) request[name] = value;
  }
  if (ui.calculatorTool.checked) {
    request.tools = [calculatorTool];
    // "required" forces the first call only: the follow-up with the result must be free to answer in words.
    request.tool_choice = firstRound ? ui.toolChoice.value : 'auto';
  }
  if (ui.jsonReply.checked) request.response_format = { type: 'json_object' };
  return request;
}

/** A block for one streamed tool call: the function's name, then its arguments as they arrive. */
function appendToolCall(reply, index) {
  const block = element('div', 'tool-call');
  block.dataset.index = String(index);
  const name = element('div', 'tool-call-name', '');
  const args = element('pre', 'code tool-call-arguments', '');
  block.append(name, args);
  reply.message.insertBefore(block, reply.meta);
  return { id: '', name: '', arguments: '', block, nameView: name, argumentsView: args };
}

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return null;
  }
}

/**
 * Streams one reply into a new assistant message: its text, and each tool call as its own block.
 * Throws what the request throws, with what arrived so far kept in error.partial.
 */
async function streamReply(request, signal) {
  const reply = appendMessage('assistant', '');
  reply.message.classList.add('streaming');
  const result = { reply, text: '', toolCalls: [], finishReason: null, usage: null };
  const started = performance.now();
  try {
    const response = await apiFetch('/v1/chat/completions', { key: ui.apiKey.value.trim(), method: 'POST', body: request, signal });
    for await (const data of serverSentEvents(response)) {
      const chunk = JSON.parse(data);
      // The server reports a failure after the first byte as one more event in OpenAI's error shape.
      if (chunk.error) throw new ApiError(chunk.error.message ?? 'The server failed while generating.', 500, chunk.error.code);
      for (const choice of chunk.choices ?? []) {
        if (choice.delta?.content) {
          result.text += choice.delta.content;
          reply.body.textContent = result.text;
        }
        // OpenAI's streamed calls: the first delta of a call has its id and name, later ones add to its arguments.
        for (const delta of choice.delta?.tool_calls ?? []) {
          const call = result.toolCalls[delta.index] ??= appendToolCall(reply, delta.index);
          if (delta.id) call.id = delta.id;
          if (delta.function?.name) call.name += delta.function.name;
          if (delta.function?.arguments) call.arguments += delta.function.arguments;
          call.nameView.textContent = call.name;
          call.argumentsView.textContent = call.arguments;
        }
        if (choice.finish_reason) result.finishReason = choice.finish_reason;
        scrollToEnd();
      }
      if (chunk.usage) result.usage = chunk.usage;
    }
  } catch (error) {
    error.partial = result;
    throw error;
  } finally {
    reply.message.classList.remove('streaming');
  }
  result.toolCalls = result.toolCalls.filter(Boolean);
  for (const call of result.toolCalls) {
    const pretty = prettyJson(call.arguments);
    if (pretty !== null) call.argumentsView.textContent = pretty;
  }
  if (request.response_format && result.text) {
    // Raw text while it streams; once complete, a reply that parses is shown as the JSON it is.
    const pretty = prettyJson(result.text);
    if (pretty !== null) reply.body.replaceChildren(element('pre', 'code json', pretty));
  }
  reply.meta.textContent = describeFinish(result.finishReason, result.usage, (performance.now() - started) / 1000);
  reply.message.dataset.finishReason = result.finishReason ?? '';
  return result;
}

/** Runs a reply's tool calls, shows each result, and adds the call and its results to the conversation. */
function answerToolCalls(result) {
  conversation.push({
    role: 'assistant',
    content: result.text || null,
    tool_calls: result.toolCalls.map(call => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
  });
  for (const call of result.toolCalls) {
    const outcome = runToolCall(call.name, call.arguments);
    const view = appendMessage('tool', '');
    view.message.querySelector('.message-role').textContent = `Tool · ${call.name}`;
    view.message.dataset.ok = String(outcome.ok);
    view.message.dataset.toolCallId = call.id;
    view.body.replaceChildren(element('pre', 'code tool-result', outcome.content));
    conversation.push({ role: 'tool', tool_call_id: call.id, content: outcome.content });
  }
}

async function send() {
  const text = ui.prompt.value.trim();
  if (!text || inFlight) return;
  const model = ui.model.value;
  if (!model) {
    showNotice(ui.notice, 'Pick a model first (reload the list if it is empty).');
    return;
  }
  showNotice(ui.notice, null);
  ui.prompt.value = '';
  conversation.push({ role: 'user', content: text });
  appendMessage('user', text);

  const controller = new AbortController();
  inFlight = controller;
  setBusy(true);
  const started = performance.now();
  try {
    for (let round = 0; ; round++) {
      const result = await streamReply(chatRequest(model, round === 0), controller.signal);
      if (result.finishReason !== 'tool_calls' || result.toolCalls.length === 0) {
        conversation.push({ role: 'assistant', content: result.text });
        break;
      }
      answerToolCalls(result);
      if (round >= MaxToolRounds) {
        showNotice(ui.notice, `The model kept calling tools: after ${MaxToolRounds} follow-ups the playground stopped sending it the results. Send a message to go on.`, 'info');
        break;
      }
    }
  } catch (error) {
    const partial = error.partial;
    const reply = partial?.reply;
    if (error.name === 'AbortError') {
      // What arrived stays in the conversation, as it does in OpenAI's playground.
      conversation.push({ role: 'assistant', content: partial?.text ?? '' });
      reply?.message.classList.add('stopped');
      if (reply) reply.meta.textContent = `stopped after ${((performance.now() - started) / 1000).toFixed(1)} s`;
    } else {
      // A refused first request is not part of the conversation: the user can fix the settings and send again.
      const nothingArrived = !partial?.text && conversation.at(-1)?.role === 'user';
      if (nothingArrived) {
        conversation.pop();
        ui.prompt.value = text;
      } else if (partial?.text) {
        conversation.push({ role: 'assistant', content: partial.text });
      }
      if (reply) {
        reply.message.classList.add('failed');
        reply.meta.textContent = error.status ? `error ${error.status}` : 'error';
        reply.body.textContent = partial.text;
        reply.body.append(element('span', 'message-error', error.message));
      } else {
        showNotice(ui.notice, error.message);
      }
    }
  } finally {
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
ui.calculatorTool.addEventListener('change', () => { ui.toolChoice.disabled = !ui.calculatorTool.checked; });
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
