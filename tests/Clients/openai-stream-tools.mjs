// OpenAI Node SDK: tool_choice "required" with two tools, streamed; the reassembled deltas must be the
// non-streamed reply of the same seed exactly, with arguments that validate and no content.
import OpenAI from 'openai';
import { zodFunction } from 'openai/helpers/zod';
import { run, check, validates } from './harness.mjs';
import { weatherInput, timeInput } from './schemas.mjs';

const inputs = { get_weather: weatherInput, get_time: timeInput };

await run(import.meta.url, async ({ baseURL, model }) => {
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  const request = {
    model,
    messages: [{ role: 'user', content: 'What is the weather and the time in Paris?' }],
    tools: [
      zodFunction({ name: 'get_weather', parameters: weatherInput, description: 'Current weather in a city' }),
      zodFunction({ name: 'get_time', parameters: timeInput, description: 'Current time in a timezone' }),
    ],
    tool_choice: 'required',
    temperature: 1.0,
    seed: 5,
  };

  const whole = await client.chat.completions.create(request);
  const [choice] = whole.choices;
  check(choice.finish_reason === 'tool_calls', 'non-streamed finish_reason is not tool_calls', choice.finish_reason);
  check(!choice.message.content, 'non-streamed content is not empty', choice.message.content);
  const expected = choice.message.tool_calls.map(c => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
  check(expected.length > 0, 'no tool calls under tool_choice required');

  const stream = await client.chat.completions.create({ ...request, stream: true });
  const calls = [];
  let content = '';
  let finishReason = null;
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta;
    content += delta?.content ?? '';
    finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    for (const part of delta?.tool_calls ?? []) {
      if (calls[part.index] === undefined) {
        check(part.id && part.function?.name, 'first delta of a call lacks its id or name', part);
        calls[part.index] = { id: part.id, name: part.function.name, arguments: '' };
      } else {
        check(part.id === undefined && part.function?.name === undefined, 'a later delta repeats the id or name', part);
      }
      calls[part.index].arguments += part.function?.arguments ?? '';
    }
  }
  check(finishReason === 'tool_calls', 'streamed finish_reason is not tool_calls', finishReason);
  check(content === '', 'streamed content is not empty', content);
  check(!calls.includes(undefined), 'call indexes are not dense', calls);

  for (const call of calls) {
    check(call.name in inputs, 'unknown function name', call.name);
    validates(inputs[call.name], JSON.parse(call.arguments), `${call.name} arguments`);
  }
  const names = c => c.map(({ name, arguments: args }) => ({ name, arguments: args }));
  check(JSON.stringify(names(calls)) === JSON.stringify(names(expected)),
    'streamed calls differ from the non-streamed calls of the same seed', { streamed: calls, whole: expected });
  return { calls: names(calls) };
});
