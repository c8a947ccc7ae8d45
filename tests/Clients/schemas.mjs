// The zod schemas the scenarios ask for: nested objects, an enum and arrays, as an app would write them.
import { z } from 'zod';

export const person = z.object({
  name: z.string(),
  role: z.enum(['engineer', 'designer', 'manager']),
  address: z.object({ city: z.string(), zip: z.number().int() }),
  skills: z.array(z.string()),
});

export const weatherInput = z.object({
  city: z.string(),
  unit: z.enum(['celsius', 'fahrenheit']),
});

export const timeInput = z.object({
  timezone: z.string(),
  hour24: z.boolean(),
});
