// OpenAI Node SDK: chat.completions.parse with a zod-derived strict json_schema; the parsed object must validate.
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { run, check, validates } from './harness.mjs';
import { person } from './schemas.mjs';

await run(import.meta.url, async ({ baseURL, model }) => {
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });
  const completion = await client.chat.completions.parse({
    model,
    messages: [{ role: 'user', content: 'Describe a person.' }],
    response_format: zodResponseFormat(person, 'person'),
    temperature: 1.0,
    seed: 11,
  });
  const [choice] = completion.choices;
  check(choice.finish_reason === 'stop', 'finish_reason is not stop', choice.finish_reason);
  check(choice.message.parsed != null, 'message.parsed is empty', choice.message);
  const parsed = validates(person, choice.message.parsed, 'message.parsed');
  check(JSON.stringify(JSON.parse(choice.message.content)) === JSON.stringify(choice.message.parsed),
    'parsed differs from the content it was parsed from', choice.message.content);
  return { parsed };
});
