using LlmServer.Inference.Tests;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Data;
using LlmServer.Training.Pretraining;

namespace LlmServer.Training.Tests.Pretraining;

public sealed class PretrainingCorpusTests
{
    private const string SpaceBeforeReplyTemplate =
        "{% for message in messages %}" +
        "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}" +
        "{% else %}{{ 'Assistant: ' + message['content'] + eos_token + '\n' }}{% endif %}" +
        "{% endfor %}" +
        "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";

    [Fact]
    public void A_chat_document_is_tokenized_as_serving_cuts_it_even_where_whole_text_tokenization_differs()
    {
        string corpus = Path.GetTempFileName() + ".jsonl";
        File.WriteAllText(corpus, """
            {"messages":[{"role":"user","content":"What color is snow?"},{"role":"assistant","content":"Snow is white."}]}
            {"text":"Plain text is tokenized whole."}
            """);
        try
        {
            var tokenizer = Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory);
            var formatter = ChatPromptFormatter.FromTemplate(SpaceBeforeReplyTemplate, tokenizer.EndOfTextToken);
            List<PretrainingDocument> documents = PretrainingCorpus.ReadDocuments(corpus, formatter).ToList();

            PretrainingCorpus tokenized = PretrainingCorpus.Tokenize(documents, tokenizer, formatter);

            int[] chat = new TrainingExampleEncoder(tokenizer, formatter)
                .EncodeChat(documents[0].Chat!, [false, true]).TokenIds;
            int[] expected = [.. chat, tokenizer.EndOfTextId, .. tokenizer.Encode("Plain text is tokenized whole."), tokenizer.EndOfTextId];
            Assert.Equal(expected, tokenized.Tokens);
            Assert.Equal(2, tokenized.DocumentCount);
            // Whole-text tokenization would put the space inside "Snow": not what serving generates after "Assistant: ".
            Assert.NotEqual(chat, tokenizer.Encode(documents[0].Text));
            Assert.Equal("User: What color is snow?\nAssistant: Snow is white.<|endoftext|>\n", documents[0].Text);
        }
        finally
        {
            File.Delete(corpus);
        }
    }
}
