using LlmServer.Commands;
using LlmServer.Hosting;

// llmserver [serve] --model DIR [flags]        serve a model (see serve --help)
// llmserver bench [suite|limits] ...           load-test a server, or measure every serving target
// llmserver random-model --shape 124M ...      write a random-weight GPT-2 checkpoint
string command = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "serve";
string[] rest = args.Length > 0 && !args[0].StartsWith('-') ? args[1..] : args;
return command switch
{
    "serve" => await ServeCommand.RunAsync(rest),
    "bench" => await BenchCommands.RunAsync(rest),
    "random-model" => RandomModelCommand.Run(rest),
    _ => Fail($"unknown command '{command}' (commands: serve, bench, random-model)"),
};

static int Fail(string message)
{
    Console.Error.WriteLine($"error: {message}");
    return 2;
}
