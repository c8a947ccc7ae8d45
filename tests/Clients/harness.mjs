// What every scenario shares: where the server is, how a check fails, and the one JSON line it prints.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** `node scenario.mjs BASE_URL MODEL`, or LLMSERVER_BASE_URL / LLMSERVER_MODEL; the base URL ends in /v1. */
export function target() {
  const baseURL = process.argv[2] ?? process.env.LLMSERVER_BASE_URL;
  const model = process.argv[3] ?? process.env.LLMSERVER_MODEL;
  if (!baseURL || !model) {
    throw new Error('usage: node <scenario>.mjs BASE_URL MODEL (or LLMSERVER_BASE_URL and LLMSERVER_MODEL)');
  }
  return { baseURL: baseURL.replace(/\/$/, ''), model };
}

export function check(condition, message, detail) {
  if (!condition) {
    throw new Error(detail === undefined ? message : `${message}: ${JSON.stringify(detail)}`);
  }
}

/** Validates with zod and fails naming the issues, so a broken reply says what is wrong with it. */
export function validates(schema, value, what) {
  const result = schema.safeParse(value);
  check(result.success, `${what} does not satisfy its zod schema`, { value, issues: result.error?.issues });
  return result.data;
}

/** Runs a scenario: one JSON line, `ok` true and its results, or `ok` false with the error; the exit code follows. */
export async function run(scenarioUrl, body) {
  const scenario = path.basename(fileURLToPath(scenarioUrl), '.mjs');
  try {
    const results = await body(target());
    console.log(JSON.stringify({ scenario, ok: true, ...results }));
  } catch (error) {
    const cause = error?.responseBody ?? error?.error ?? error?.cause?.message;
    console.log(JSON.stringify({ scenario, ok: false, error: String(error?.message ?? error), status: error?.status ?? error?.statusCode, cause }));
    process.exitCode = 1;
  }
}
