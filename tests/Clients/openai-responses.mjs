// The official OpenAI Node SDK's Responses API: responses.create, the same request streamed (the deltas join to the
// same text at temperature 0), and a three-turn conversation through previous_response_id whose input grows each turn.
import OpenAI from 'openai';
import { run, check } from './harness.mjs';

await run(import.meta.url, async ({ baseURL, model }) => {
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  const request = { model, input: 'Say hello.', instructions: 'Be brief.', temperature: 0, max_output_tokens: 8 };

  const created = await client.responses.create(request);
  check(created.id.startsWith('resp_') && created.output_text.length > 0, 'responses.create', created);

  const stream = await client.responses.create({ ...request, stream: true });
  let text = '';
  const types = [];
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'response.output_text.delta') {
      text += event.delta;
    }
  }
  check(types[0] === 'response.created' && types.at(-1) === 'response.incomplete', 'stream events', types);
  check(text === created.output_text, 'streamed text differs', { text, created: created.output_text });

  const turns = [];
  let previous;
  for (const input of ['My name is Ada.', 'What is my name?', 'Thank you.']) {
    const turn = await client.responses.create({ model, input, previous_response_id: previous, temperature: 0, max_output_tokens: 4 });
    check(turn.previous_response_id === (previous ?? null), 'previous_response_id not echoed', turn.previous_response_id);
    turns.push(turn.usage.input_tokens);
    previous = turn.id;
  }
  check(turns[0] < turns[1] && turns[1] < turns[2], 'each turn carries the conversation before it', turns);
  const items = await client.responses.inputItems.list(previous);
  check(items.data.length === 1 && items.data[0].content[0].text === 'Thank you.', 'input items of the last turn', items.data);
  return { text, inputTokens: turns };
});
