// A conversation through the OpenAI Node SDK that outlives the server: `... BASE_URL MODEL` starts it and prints the
// response id; `... BASE_URL MODEL resp_...` (after a restart on the same --data-dir) continues from that id and checks
// the stored response came back with the earlier turn in its prompt.
import OpenAI from 'openai';
import { run, check } from './harness.mjs';

await run(import.meta.url, async ({ baseURL, model }) => {
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  const previous = process.argv[4];
  if (!previous) {
    const first = await client.responses.create({ model, input: 'My name is Ada.', temperature: 0, max_output_tokens: 4 });
    return { id: first.id };
  }
  const stored = await client.responses.retrieve(previous);
  check(stored.id === previous && stored.output.length > 0, 'the stored response did not come back', stored);
  const next = await client.responses.create({ model, input: 'What is my name?', previous_response_id: previous, temperature: 0, max_output_tokens: 4 });
  const alone = await client.responses.create({ model, input: 'What is my name?', store: false, temperature: 0, max_output_tokens: 4 });
  check(next.previous_response_id === previous, 'previous_response_id not echoed', next);
  check(next.usage.input_tokens > alone.usage.input_tokens, 'the continued turn lacks the earlier one', { next: next.usage, alone: alone.usage });
  return { id: next.id, inputTokens: next.usage.input_tokens };
});
