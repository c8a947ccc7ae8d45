// The bundled demo model with its calculator tool under tool_choice "auto", as an app would wire it: the OpenAI
// Node SDK's runTools loop, and the Vercel AI SDK's multi-step generateText through both of its chat providers and
// its default provider (the Responses API). The model must call the tool by itself and answer with the result.
import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, tool, stepCountIs } from 'ai';
import { z } from 'zod';
import { run, check } from './harness.mjs';
import { chatModels } from './providers.mjs';

// A calculator for the expressions the tool is asked: integers, + - * and parentheses, never eval of other text.
function calculate(expression) {
  check(/^[0-9+\-*() ]+$/.test(expression), 'the model asked for something that is not arithmetic', expression);
  return String(Function(`"use strict"; return (${expression});`)());
}

const parameters = { type: 'object', properties: { expression: { type: 'string' } }, required: ['expression'] };
const questions = [
  { prompt: 'What is 17 + 25?', expression: '17 + 25', reply: '17 + 25 = 42' },
  { prompt: 'Multiply 89 by 92.', expression: '89 * 92', reply: '89 * 92 = 8188' },
];

await run(import.meta.url, async (target) => {
  const results = {};
  const client = new OpenAI({ baseURL: target.baseURL, apiKey: 'unused', maxRetries: 0 });
  for (const { prompt, expression, reply } of questions) {
    const asked = [];
    const runner = client.chat.completions.runTools({
      model: target.model,
      messages: [{ role: 'user', content: prompt }],
      tools: [{ type: 'function', function: { name: 'calculator', parameters, parse: JSON.parse, function: ({ expression }) => { asked.push(expression); return calculate(expression); } } }],
    });
    const text = await runner.finalContent();
    check(asked.length === 1 && asked[0] === expression, `runTools: the calls for "${prompt}"`, asked);
    check(text === reply, `runTools: the reply to "${prompt}"`, text);
    results[`runTools ${prompt}`] = text;
  }

  const calculator = tool({ inputSchema: z.object({ expression: z.string() }), execute: async ({ expression }) => calculate(expression) });
  const models = { ...chatModels(target), 'openai-responses': createOpenAI({ baseURL: target.baseURL, apiKey: 'unused' })(target.model) };
  for (const [provider, model] of Object.entries(models)) {
    const { prompt, expression, reply } = questions[1];
    const result = await generateText({ model, prompt, tools: { calculator }, stopWhen: stepCountIs(3), maxRetries: 0 });
    const calls = result.steps.flatMap(step => step.toolCalls.map(call => call.input.expression));
    check(calls.length === 1 && calls[0] === expression, `${provider}: the calls`, calls);
    check(result.text === reply, `${provider}: the reply`, result.text);
    results[provider] = result.text;
  }
  return results;
});
