using System.Text.Json.Nodes;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Inference.Tests;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Data;
using LlmServer.Training.FineTuning;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Training.Tests.FineTuning;

/// <summary>
/// Fine-tuning a Llama-family base (the llama3 and qwen3 fixtures) with the trainer GPT-2 uses: chat
/// examples rendered with the model's own template and tokenized by its tokenizer.json, a LoRA
/// adapter saved under PEFT's names for the architecture, a full fine-tune saved as a checkpoint of it.
/// </summary>
public sealed class LlamaFamilyFineTuningTests : IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("llama-fine-tune-").FullName;

    public void Dispose() => Directory.Delete(_output, recursive: true);

    [Fact]
    public void Chat_examples_are_rendered_with_the_llama3_template_and_train_the_assistant_turn_with_its_end()
    {
        (HuggingFaceTokenizer tokenizer, TrainingExampleEncoder encoder, ChatPromptFormatter formatter) = Encoding("llama3-random-2l-64d");
        ChatMessage[] messages = [new("user", "What does the cat say?"), new("assistant", "meow")];

        TrainingExample example = encoder.EncodeChat(messages, [false, true]);

        Assert.Equal(formatter.Format(messages, addGenerationPrompt: false), tokenizer.Decode(example.TokenIds));
        Assert.Equal(tokenizer.BeginningOfTextId, example.TokenIds[0]);
        Assert.Equal("meow<|eot_id|>", tokenizer.Decode(example.TokenIds.Where((_, i) => example.Trained[i])));
        // A prompt/completion example starts as /v1/completions encodes a prompt: with Llama 3's BOS.
        TrainingExample completion = encoder.EncodePromptCompletion("the cat says", " meow");
        Assert.Equal(tokenizer.BeginningOfTextId, completion.TokenIds[0]);
    }

    [Fact]
    public void A_LoRA_run_on_the_llama3_fixture_lowers_the_loss_and_saves_a_PEFT_adapter_the_base_loads()
    {
        string directory = TestFixtures.ModelDirectory("llama3-random-2l-64d");
        using ICausalLanguageModel baseModel = ModelArchitectures.Load(directory, ScalarType.Float32, CPU);
        var weightsBefore = baseModel.CheckpointTensors().ToDictionary(t => t.Key, t => t.Weight.clone());
        var settings = new TrainingSettings
        {
            Epochs = 3,
            BatchSize = 8,
            LearningRate = 2e-2,
            WarmupFraction = 0.1,
            Seed = 1,
            Lora = new LoraSettings(8, 16, baseModel.AdaptableLayers.DefaultTargetModules),
        };

        using FineTuningRun run = FineTuningRun.Start(new FineTuningInputs(baseModel, directory, ChatDataset("llama3-random-2l-64d", 32), null, settings, _output));
        var steps = RunDriver.RunToCompletion(run).OfType<OptimizerStepCompleted>().ToList();

        Assert.Equal(12, steps.Count);
        Assert.True(steps[^1].TrainLoss < steps[0].TrainLoss / 2, $"loss went from {steps[0].TrainLoss} to {steps[^1].TrainLoss}");
        using (SafetensorsFile file = SafetensorsFile.Open(Path.Combine(run.FinalDirectory, PeftAdapterFiles.WeightsFileName)))
        {
            // 2 layers x 7 projections x (A, B), under PEFT's keys for a LlamaForCausalLM.
            Assert.Equal(28, file.Tensors.Count);
            Assert.Contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight", file.Tensors.Keys);
        }
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(run.FinalDirectory, PeftAdapterFiles.ConfigFileName)))!.AsObject();
        Assert.Equal(baseModel.AdaptableLayers.DefaultTargetModules, config["target_modules"]!.AsArray().Select(t => (string?)t));

        using LoraAdapter loaded = PeftAdapterFiles.Load(run.FinalDirectory, baseModel);
        LoraAdapter trained = ((LoraWeights)run.Weights).Adapter;
        foreach ((string path, LoraLayer layer) in trained.Layers)
        {
            Assert.True(layer.B.allclose(loaded.Layers[path].B, rtol: 0, atol: 0), path);
        }
        foreach ((string key, Tensor weight) in baseModel.CheckpointTensors())
        {
            Assert.True(weight.allclose(weightsBefore[key], rtol: 0, atol: 0), $"base weight {key} changed");
        }
    }

    [Fact]
    public void A_full_fine_tune_of_the_qwen3_fixture_lowers_the_loss_and_saves_a_Qwen3_checkpoint_with_its_tokenizer()
    {
        string directory = TestFixtures.ModelDirectory("qwen3-random-2l-64d");
        using ICausalLanguageModel baseModel = ModelArchitectures.Load(directory, ScalarType.Float32, CPU);
        var settings = new TrainingSettings { Epochs = 2, BatchSize = 8, LearningRate = 3e-3, WarmupSteps = 0, Seed = 1 };

        using FineTuningRun run = FineTuningRun.Start(new FineTuningInputs(baseModel, directory, ChatDataset("qwen3-random-2l-64d", 16), null, settings, _output));
        var steps = RunDriver.RunToCompletion(run).OfType<OptimizerStepCompleted>().ToList();

        Assert.True(steps[^1].TrainLoss < steps[0].TrainLoss, $"loss went from {steps[0].TrainLoss} to {steps[^1].TrainLoss}");
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(run.FinalDirectory, "config.json")))!.AsObject();
        Assert.Equal("Qwen3ForCausalLM", (string?)config["architectures"]![0]);
        foreach (string file in new[] { "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
        {
            Assert.True(File.Exists(Path.Combine(run.FinalDirectory, file)), $"{file} is missing from final/");
        }
        using ICausalLanguageModel tuned = ModelArchitectures.Load(run.FinalDirectory, ScalarType.Float32, CPU);
        var saved = tuned.CheckpointTensors().ToDictionary(t => t.Key, t => t.Weight);
        foreach ((string key, Tensor weight) in ((FullWeights)run.Weights).Model.CheckpointTensors())
        {
            Assert.True(weight.allclose(saved[key], rtol: 0, atol: 0), $"{key} differs between the run and final/");
        }
        using Tensor embeddingsBefore = baseModel.CheckpointTensors().First(t => t.Key == "model.embed_tokens.weight").Weight.clone();
        Assert.False(saved["model.embed_tokens.weight"].allclose(embeddingsBefore, rtol: 0, atol: 0), "the full fine-tune changed no embedding");
    }

    private static (HuggingFaceTokenizer Tokenizer, TrainingExampleEncoder Encoder, ChatPromptFormatter Formatter) Encoding(string fixture)
    {
        string directory = TestFixtures.ModelDirectory(fixture);
        HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.Load(directory);
        ChatPromptFormatter formatter = ChatPromptFormatter.Load(directory, tokenizer);
        return (tokenizer, new TrainingExampleEncoder(tokenizer, formatter), formatter);
    }

    /// <summary>The animal-sound task as chat: the user's prompt, the assistant's sound.</summary>
    private static TrainingDataset ChatDataset(string fixture, int count)
    {
        TrainingExampleEncoder encoder = Encoding(fixture).Encoder;
        return TrainingDataset.FromExamples(AnimalSoundTask.Pairs(count, heldOut: false, seed: 1)
            .Select(pair => encoder.EncodeChat([new ChatMessage("user", pair.Prompt), new ChatMessage("assistant", pair.Completion.Trim())], [false, true])),
            maxLength: 256);
    }
}
