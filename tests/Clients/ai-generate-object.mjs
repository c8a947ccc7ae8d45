// Vercel AI SDK: generateObject with a zod schema through both providers; the object must validate.
import { generateObject } from 'ai';
import { run, check, validates } from './harness.mjs';
import { chatModels } from './providers.mjs';
import { person } from './schemas.mjs';

await run(import.meta.url, async (target) => {
  const objects = {};
  for (const [provider, model] of Object.entries(chatModels(target))) {
    const result = await generateObject({
      model,
      schema: person,
      schemaName: 'person',
      prompt: 'Describe a person.',
      temperature: 1.0,
      seed: 11,
      maxRetries: 0,
    });
    check(result.finishReason === 'stop', `${provider}: finishReason is not stop`, result.finishReason);
    objects[provider] = validates(person, result.object, `${provider} object`);
  }
  return { objects };
});
