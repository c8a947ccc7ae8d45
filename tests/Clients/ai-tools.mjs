// Vercel AI SDK: generateText with a zod-typed tool under toolChoice 'required' through both providers,
// and streamText once; every call's input must validate and match the tool.
import { generateText, streamText, tool } from 'ai';
import { run, check, validates } from './harness.mjs';
import { chatModels } from './providers.mjs';
import { weatherInput } from './schemas.mjs';

const tools = { get_weather: tool({ description: 'Current weather in a city', inputSchema: weatherInput }) };
const settings = { prompt: 'What is the weather in Paris?', tools, toolChoice: 'required', temperature: 1.0, seed: 3, maxRetries: 0 };

function checkCalls(toolCalls, finishReason, text, what) {
  check(finishReason === 'tool-calls', `${what}: finishReason is not tool-calls`, finishReason);
  check(toolCalls.length > 0, `${what}: no tool calls under toolChoice required`);
  check(text === '', `${what}: text beside the calls`, text);
  return toolCalls.map(call => {
    check(!call.invalid, `${what}: the SDK rejected a call`, { call, error: String(call.error) });
    check(call.toolName === 'get_weather', `${what}: unknown tool`, call.toolName);
    return { toolName: call.toolName, input: validates(weatherInput, call.input, `${what} input`) };
  });
}

await run(import.meta.url, async (target) => {
  const calls = {};
  const models = chatModels(target);
  for (const [provider, model] of Object.entries(models)) {
    const result = await generateText({ model, ...settings });
    calls[provider] = checkCalls(result.toolCalls, result.finishReason, result.text, `${provider} generateText`);
  }

  let streamError;
  const streamed = streamText({ model: models['openai-compatible'], ...settings, onError: ({ error }) => { streamError = error; } });
  let text = '';
  for await (const part of streamed.textStream) {
    text += part;
  }
  if (streamError) {
    throw streamError;
  }
  calls.streamText = checkCalls(await streamed.toolCalls, await streamed.finishReason, text, 'openai-compatible streamText');
  return { calls };
});
