// Writes cases.json: the ids and texts that Hugging Face's tokenizers.js (@huggingface/tokenizers 0.2.0,
// the tokenizer code of transformers.js) gives for this folder's tokenizer.json, and for the same file
// rewritten to the Metaspace form (see metaspaceVariant). Run from this folder:
//   npm pack @huggingface/tokenizers@0.2.0 && tar xzf huggingface-tokenizers-0.2.0.tgz
//   node make_cases.mjs package/dist/tokenizers.mjs
import fs from "fs";
import { pathToFileURL } from "url";

const { Tokenizer } = await import(pathToFileURL(process.argv[2]).href);
const tokenizerJson = JSON.parse(fs.readFileSync("tokenizer.json", "utf8"));
const tokenizerConfig = JSON.parse(fs.readFileSync("tokenizer_config.json", "utf8"));

// What transformers writes for a Llama/Mistral tokenizer converted with legacy=False (and what Mistral 7B v0.3
// ships): no normalizer, a Metaspace pre-tokenizer that prepends "▁" only at the start of the text.
// HuggingFaceTokenizerSentencePieceTests builds the same file.
function metaspaceVariant(json) {
  return {
    ...json,
    normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
  };
}

// The same file with its added tokens marked normalized, as some Llama-family files have them: tokenizers then
// looks for them in the normalized text, by their normalized content ("▁<s>" under the Prepend normalizer).
// HuggingFaceTokenizerSentencePieceTests builds the same file.
function normalizedAddedTokensVariant(json) {
  return { ...json, added_tokens: json.added_tokens.map((token) => ({ ...token, normalized: true })) };
}

// HF's split_special_tokens=True: the special added tokens are not matched in text (tokenizers.js has no such
// option, so they are left out of its added-token matcher; their ids stay in model.vocab).
function withoutSpecialAddedTokens(json) {
  return { ...json, added_tokens: json.added_tokens.filter((token) => !token.special) };
}

const chatText = "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> [INST] I'd like to show off how chat templating works! [/INST]";
// transformers.js' own test (tests/tokenizers.test.js, "should generate a chat template", Xenova/mistral-tokenizer-v1).
const chatIds = [1, 733, 16289, 28793, 22557, 28725, 910, 460, 368, 28804, 733, 28748, 16289, 28793, 28737, 28742, 28719, 2548, 1598, 28723, 1602, 541, 315, 1316, 368, 3154, 28804, 2, 28705, 733, 16289, 28793, 315, 28742, 28715, 737, 298, 1347, 805, 910, 10706, 5752, 1077, 3791, 28808, 733, 28748, 16289, 28793];

const cases = [
  ["simple", "How are you doing?"],
  ["contraction", "You should've done this"],
  ["numbers", "0123456789 0 1 2 3 4 5 6 7 8 9 10 100 1000"],
  ["punctuation", "A\n'll !!to?'d''d of, can't."],
  ["python_code", "def main():\n\tpass"],
  ["leading_space", "   leading space"],
  ["trailing_space", "trailing space   "],
  ["double_space", "Hi  Hello"],
  ["one_space", " "],
  ["newline_only", "\n"],
  ["newlines_crlf", "line one\r\nline two\n\n\nend"],
  ["tabs", "\ttabs\t\t\t\tout here"],
  ["spiece_underscore_in_text", "\u2581This \u2581is \u2581a \u2581test \u2581."],
  ["control_characters", "1\u00002\uFFFD3"],
  ["cjk", "生活的真谛是"],
  ["cjk_supplementary_plane", "𠮷野家 and 𩸽"],
  ["korean", "안녕하세요, 세계!"],
  ["arabic", "مرحبا بالعالم"],
  ["accents_combining", "e\u0301te\u0301 cafe\u0301"],
  ["accents_precomposed", "été café naïve"],
  ["emoji", "I love 🤗 and 👍🏽 and 👩‍❤️‍💋‍👨!"],
  ["fullwidth", "ｗｅｉｒｄ ～ ｅｄｇｅ"],
  ["long_word", "a".repeat(300) + "b".repeat(211)],
  ["special_tokens_in_text", "Hello <s> world </s> and <unk>"],
  ["special_token_first", "<s>Hello"],
  ["special_token_then_space", "</s> [INST]"],
  ["mistral_chat", chatText],
  ["empty", ""],
];

function run(json) {
  const tokenizer = new Tokenizer(json, tokenizerConfig);
  const splitting = new Tokenizer(withoutSpecialAddedTokens(json), tokenizerConfig);
  const bos = tokenizer.encode("", { add_special_tokens: true }).ids;
  const bosText = tokenizer.decode(bos);
  // tokenizers.js refuses to decode no ids; Hugging Face's decode([]) is "".
  const decode = (ids, options) => (ids.length === 0 ? "" : tokenizer.decode(ids, options));
  return (text) => {
    const encoded = tokenizer.encode(text, { add_special_tokens: false });
    const ids = encoded.ids;
    // What a stream after the prompt's BOS shows: decode(BOS + ids) less the BOS's own text. The decoder's
    // Strip takes only a leading space of the whole text, so the ids' own leading "▁" stays a space here.
    const afterBos = tokenizer.decode([...bos, ...ids]);
    if (!afterBos.startsWith(bosText)) throw new Error("decode(BOS + ids) does not start with BOS's text");
    return {
      ids,
      tokens: encoded.tokens,
      ids_with_special: tokenizer.encode(text, { add_special_tokens: true }).ids,
      ids_split_special: splitting.encode(text, { add_special_tokens: false }).ids,
      decoded: decode(ids),
      decoded_skip_special: decode(ids, { skip_special_tokens: true }),
      decoded_after_bos: afterBos.slice(bosText.length),
    };
  };
}

const legacy = run(tokenizerJson);
const metaspace = run(metaspaceVariant(tokenizerJson));
const normalizedAdded = run(normalizedAddedTokensVariant(tokenizerJson));
const out = cases.map(([name, text]) => ({
  name,
  text,
  legacy: legacy(text),
  metaspace: metaspace(text),
  normalized_added_tokens: normalizedAdded(text),
}));
const chat = out.find((item) => item.name === "mistral_chat");
if (JSON.stringify(chat.legacy.ids) !== JSON.stringify(chatIds)) throw new Error("tokenizers.js disagrees with transformers.js' Mistral chat test");

fs.writeFileSync("cases.json", JSON.stringify({
  source: "@huggingface/tokenizers 0.2.0 (tokenizers.js) on tokenizer.json (legacy), on its Metaspace rewrite (metaspace) and with its added tokens marked normalized (normalized_added_tokens), see make_cases.mjs",
  fields: {
    ids: "encode(text, add_special_tokens=false); special-token text in the input becomes the special token",
    tokens: "the vocabulary entries of ids",
    ids_with_special: "encode(text, add_special_tokens=true): the TemplateProcessing post-processor's <s> first",
    ids_split_special: "as ids with HF's split_special_tokens=True: special added tokens are encoded as plain text",
    decoded: "decode(ids): the decoder chain Replace, ByteFallback, Fuse, Strip(one leading space); clean_up_tokenization_spaces false",
    decoded_skip_special: "decode(ids, skip_special_tokens=true)",
    decoded_after_bos: "decode([<s>] + ids) less the leading '<s>': what a stream shows after the prompt's BOS",
  },
  cases: out,
}, null, 1) + "\n");
console.log(`wrote ${out.length} cases`);
