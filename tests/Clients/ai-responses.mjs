// Vercel AI SDK's default provider, `createOpenAI({ baseURL })(model)`, which speaks the Responses API: generateText,
// streamText (the same text as generateText at temperature 0), generateObject against a zod schema, and a zod-typed
// tool under toolChoice 'required'.
import { generateObject, generateText, streamText, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { run, check, validates } from './harness.mjs';
import { person, weatherInput } from './schemas.mjs';

await run(import.meta.url, async ({ baseURL, model: modelName }) => {
  const model = createOpenAI({ baseURL, apiKey: 'unused' })(modelName);
  const settings = { model, temperature: 0, maxOutputTokens: 12, maxRetries: 0 };

  const generated = await generateText({ ...settings, system: 'Be brief.', prompt: 'Say hello.' });
  check(generated.text.length > 0, 'generateText gave no text');
  check(generated.response.id?.startsWith('resp_'), 'generateText: not a response id', generated.response.id);
  check(generated.usage.outputTokens === 12, 'generateText: output tokens', generated.usage);

  let streamError;
  const streamed = streamText({ ...settings, system: 'Be brief.', prompt: 'Say hello.', onError: ({ error }) => { streamError = error; } });
  let text = '';
  for await (const part of streamed.textStream) {
    text += part;
  }
  if (streamError) {
    throw streamError;
  }
  check(text === generated.text, 'streamText differs from generateText at temperature 0', { text, generated: generated.text });

  const object = await generateObject({ model, schema: person, prompt: 'Describe an engineer.', temperature: 0, maxRetries: 0 });
  validates(person, object.object, 'generateObject');

  const called = await generateText({
    ...settings,
    maxOutputTokens: 64,
    prompt: 'What is the weather in Paris?',
    tools: { get_weather: tool({ description: 'Current weather in a city', inputSchema: weatherInput }) },
    toolChoice: 'required',
  });
  check(called.finishReason === 'tool-calls', 'tools: finishReason is not tool-calls', called.finishReason);
  check(called.toolCalls.length > 0, 'tools: no call under toolChoice required');
  const calls = called.toolCalls.map(call => {
    check(!call.invalid && call.toolName === 'get_weather', 'tools: a call the SDK rejected', { call, error: String(call.error) });
    return validates(weatherInput, call.input, 'tool input');
  });
  return { text, object: object.object, calls };
});
