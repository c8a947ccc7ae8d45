// The two ways an AI SDK app reaches an OpenAI-compatible server: the openai-compatible provider and
// the openai provider's chat model (its default model speaks the Responses API: ai-responses.mjs).
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { createOpenAI } from '@ai-sdk/openai';

export function chatModels({ baseURL, model }) {
  const compatible = createOpenAICompatible({ baseURL, name: 'llmserver', apiKey: 'unused', supportsStructuredOutputs: true });
  const openai = createOpenAI({ baseURL, apiKey: 'unused' });
  return { 'openai-compatible': compatible.chatModel(model), 'openai-chat': openai.chat(model) };
}
