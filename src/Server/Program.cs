using LlmServer.Bench;
using LlmServer.Commands;

// llmserver [serve] --model DIR [flags]        serve a model (see serve --help)
// llmserver bench [suite|limits] ...           load-test a server, or measure every serving target
// llmserver random-model --shape 124M ...      write a random-weight GPT-2 checkpoint
// llmserver train --data FILE --out DIR ...    pretrain a GPT-2 from scratch (see train --help)
// llmserver fine-tune --model DIR ...          fine-tune a model with the trainer jobs use
// llmserver demo-corpus --out DIR              write the demo model's generated data
// llmserver eval --model DIR --data FILE       exact-match accuracy on a held-out chat set
string command = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "serve";
string[] rest = args.Length > 0 && !args[0].StartsWith('-') ? args[1..] : args;
return command switch
{
    "serve" => await ServeCommand.RunAsync(rest),
    "bench" when rest is ["random-model", ..] => RandomModelCommand.Run(rest[1..]),
    "bench" => await BenchCommands.RunAsync(rest),
    "random-model" => RandomModelCommand.Run(rest),
    "train" => TrainCommand.Run(rest),
    "fine-tune" => FineTuneCommand.Run(rest),
    "demo-corpus" => DemoCorpusCommand.Run(rest),
    "eval" => await EvalCommand.RunAsync(rest),
    _ => Fail($"unknown command '{command}' (commands: serve, bench, random-model, train, fine-tune, demo-corpus, eval)"),
};

static int Fail(string message)
{
    Console.Error.WriteLine($"error: {message}");
    return 2;
}
