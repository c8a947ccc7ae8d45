// The one tool the chat page can offer a model, run in the browser. The definition is a contract: the bundled
// demo model is fine-tuned on exactly this name, description and schema, so change it only together with that.

export const calculatorTool = {
  type: 'function',
  function: {
    name: 'calculator',
    description: 'Evaluates an arithmetic expression and returns the result.',
    parameters: {
      type: 'object',
      properties: {
        expression: { type: 'string', description: 'An arithmetic expression such as 17 + 25' },
      },
      required: ['expression'],
    },
  },
};

export class CalculatorError extends Error {}

// Deeper nesting than any arithmetic a person writes; it keeps the recursive parser far from the stack's limit.
const MaxExpressionLength = 500;

/**
 * The value of an arithmetic expression: integers and decimals, + - * /, unary minus and parentheses.
 * A recursive-descent parser, never eval(): the expression comes from a model.
 */
export function evaluateExpression(expression) {
  const text = String(expression);
  if (text.length > MaxExpressionLength) throw new CalculatorError(`the expression is longer than ${MaxExpressionLength} characters`);
  const tokens = tokenize(text);
  let position = 0;
  const peek = () => tokens[position];
  const next = () => tokens[position++];

  function sum() {
    let value = product();
    while (peek() === '+' || peek() === '-') {
      value = next() === '+' ? value + product() : value - product();
    }
    return value;
  }
  function product() {
    let value = factor();
    while (peek() === '*' || peek() === '/') {
      if (next() === '*') {
        value *= factor();
      } else {
        const divisor = factor();
        if (divisor === 0) throw new CalculatorError('division by zero');
        value /= divisor;
      }
    }
    return value;
  }
  function factor() {
    const token = next();
    if (token === '-') return -factor();
    if (token === '+') return factor();
    if (token === '(') {
      const value = sum();
      if (next() !== ')') throw new CalculatorError('a parenthesis is not closed');
      return value;
    }
    if (typeof token === 'number') return token;
    throw new CalculatorError(token === undefined ? 'the expression ends too early' : `unexpected '${token}'`);
  }

  if (tokens.length === 0) throw new CalculatorError('the expression is empty');
  const value = sum();
  if (position < tokens.length) throw new CalculatorError(`unexpected '${tokens[position]}'`);
  if (!Number.isFinite(value)) throw new CalculatorError('the result is not a finite number');
  return value;
}

function tokenize(text) {
  const tokens = [];
  const pattern = /\s*(?:(\d+(?:\.\d+)?|\.\d+)|([-+*/()]))/y;
  let index = 0;
  while (index < text.length) {
    if (/^\s*$/.test(text.slice(index))) break;
    pattern.lastIndex = index;
    const match = pattern.exec(text);
    if (!match) throw new CalculatorError(`cannot read '${text.slice(index).trim().slice(0, 20)}'`);
    tokens.push(match[1] !== undefined ? Number(match[1]) : match[2]);
    index = pattern.lastIndex;
  }
  return tokens;
}

/**
 * A result as the demo model learnt to read it (src/Training/DemoCorpus/DemoCalculator.cs): no decimal point for
 * an integer, at most 12 decimals without trailing zeros: 42, 0.5, 0.3 rather than 0.30000000000000004.
 */
export function formatResult(value) {
  return String(Number.parseFloat(value.toFixed(12)));
}

/**
 * Runs one streamed tool call: {ok, content}, where content is what the tool message carries. An unknown
 * function, arguments that are not JSON or an expression the calculator cannot read still answer, saying so,
 * so that the model always gets a reply to its call.
 */
export function runToolCall(name, argumentsJson) {
  if (name !== calculatorTool.function.name) {
    return { ok: false, content: `Error: there is no tool named '${name}'; the only tool is '${calculatorTool.function.name}'.` };
  }
  let expression;
  try {
    expression = JSON.parse(argumentsJson).expression;
  } catch {
    return { ok: false, content: 'Error: the arguments are not a JSON object.' };
  }
  if (typeof expression !== 'string') {
    return { ok: false, content: 'Error: the arguments need an "expression" string.' };
  }
  try {
    return { ok: true, content: formatResult(evaluateExpression(expression)) };
  } catch (error) {
    if (!(error instanceof CalculatorError)) throw error;
    return { ok: false, content: `Error: cannot evaluate '${expression}': ${error.message}.` };
  }
}
